"""Form fields the admin forms of beings and relationships share."""

from __future__ import annotations

import copy
import json
from typing import Any

from django import forms


class CodeTextarea(forms.Textarea):
    """A monospace textarea for source code and JSON documents."""

    def __init__(self, attrs: dict[str, Any] | None = None, *, rows: int = 12) -> None:
        super().__init__(attrs={"rows": rows, "class": "lux-code", "spellcheck": "false", **(attrs or {})})


class PrettyJSONField(forms.JSONField):
    """A JSON document shown indented in its textarea; empty input means ``empty``."""

    def __init__(self, *, empty: Any = None, rows: int = 8, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("initial", empty)
        kwargs.setdefault("widget", CodeTextarea(rows=rows))
        super().__init__(**kwargs)
        self.empty = empty

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)

    def clean(self, value: Any) -> Any:
        cleaned = super().clean(value)
        return copy.deepcopy(self.empty) if cleaned is None else cleaned


class TagsField(forms.CharField):
    """Tags typed as comma-separated text, cleaned to a list (the services validate each tag)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated, e.g. math, demo.")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        text = super().to_python(value) or ""
        return [tag.strip() for tag in text.split(",") if tag.strip()]

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(self.prepare_value(initial) or "") != self.to_python(data)
