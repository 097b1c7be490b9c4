"""The settings a checkpoint is taken under, as they travel in its archive: without their secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from django.conf import settings

_SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "KEY")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/?#@\s:]*):[^/?#\s]*@", re.IGNORECASE)


def env_config(settings_module: Any = settings) -> dict[str, Any]:
    """The LuxOS settings a checkpoint is taken under, safe to ship: secrets dropped, URL passwords masked."""
    return {
        name: _public(getattr(settings_module, name))
        for name in dir(settings_module)
        if (name.startswith(("LUXOS_", "CHRONOS_")) or name == "ENABLE_CHRONOS") and not _is_secret(name)
    }


def _is_secret(name: str) -> bool:
    return any(word in name.upper() for word in _SECRET_WORDS)


def _public(value: Any) -> Any:
    """A JSON value for a setting, with the passwords of URLs masked and secret-named keys dropped."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\g<head>:***@", value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return {str(key): _public(item) for key, item in value.items() if not _is_secret(str(key))}
    if isinstance(value, set | frozenset):
        return [_public(item) for item in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [_public(item) for item in value]
    return _public(str(value))
