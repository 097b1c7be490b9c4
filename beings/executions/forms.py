"""The run form of the being page: a field per parameter of the entrypoint, and a JSON box for the rest.

The parameters are read from the source's AST (``analysis.entrypoint_parameters``), never by running
it. A field is read as JSON when it parses (``42``, ``true``, ``[1, 2]``, ``"42"``) and as the text
typed otherwise; it shows a value the same way round (as JSON, unless it is a string that does not
read as JSON), so a value shown comes back unchanged. An empty field passes nothing, so the
entrypoint's default or the being's ``attributes.arguments`` applies. The JSON box (the advanced
mode) holds further keyword arguments, which win over the fields.
"""

from __future__ import annotations

import ast
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from beings import kinds
from beings import source_analysis as analysis
from beings.executions.selectors import execution_get
from beings.executions.visibility import execution_contents_visible
from beings.models import BaseBeing
from luxsite.errors import BadRequest, DomainError, NotFound, PermissionDenied, TooLarge
from luxsite.permissions import User, may

FIELD_PREFIX = "param-"
POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD = "positional_only", "positional_or_keyword"
VAR_POSITIONAL, KEYWORD_ONLY, VAR_KEYWORD = "var_positional", "keyword_only", "var_keyword"


@dataclass(frozen=True)
class RunField:
    """One parameter of the entrypoint as the form asks for it."""

    name: str
    kind: str
    text: str  # what the field holds
    default: str | None  # the default as written in the source
    annotation: str | None
    required: bool  # no default and none in attributes.arguments: the run fails without it

    @property
    def field_name(self) -> str:
        return f"{FIELD_PREFIX}{self.name}"

    @property
    def label(self) -> str:
        return f"*{self.name}" if self.kind == VAR_POSITIONAL else self.name


class _NotJson(ValueError):
    pass


def _constant_refuse(name: str) -> Any:
    raise _NotJson(name)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotJson(text)
    return value


def _json_read(text: str) -> Any:
    """Strict JSON (no NaN, no infinities); _NotJson when the text is not."""
    try:
        return json.loads(text, parse_constant=_constant_refuse, parse_float=_finite)
    except RecursionError:
        raise BadRequest("a value nests too deeply to read", code="bad_json") from None
    except ValueError as error:  # json.JSONDecodeError is one
        raise _NotJson(str(error)) from None


def value_read(text: str) -> Any:
    """What a field's text passes: its JSON value when it reads as JSON, else the text itself."""
    try:
        return _json_read(text)
    except _NotJson:
        return text


def value_show(value: Any) -> str:
    """A field's text for a value, such that ``value_read`` gives the value back."""
    if isinstance(value, str):
        try:
            _json_read(value)
        except _NotJson:
            return value
    return json.dumps(value, ensure_ascii=False)


def _default_value(default: str | None) -> tuple[bool, Any]:
    """The default as a JSON value when it is a literal JSON holds exactly (not a tuple, a set, a call)."""
    if default is None:
        return False, None
    try:
        value = ast.literal_eval(default)
        exact = json.loads(json.dumps(value, allow_nan=False)) == value and _same_types(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    return exact, value


def _same_types(value: Any) -> bool:
    if isinstance(value, tuple | set | frozenset | bytes | complex):
        return False
    if isinstance(value, list):
        return all(_same_types(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _same_types(item) for key, item in value.items())
    return True


def run_parameters(being: BaseBeing) -> list[dict[str, Any]] | None:
    """The entrypoint's parameters of the being's current source; None when it has none to read."""
    genesis = being.genesis or {}
    if genesis.get("type") not in (kinds.FUNCTION, kinds.CLASS) or not isinstance(genesis.get("source"), str):
        return None
    return analysis.entrypoint_parameters(
        genesis["source"], entrypoint=genesis.get("entrypoint") or "run", kind=genesis["type"]
    )


def run_fields(
    *,
    being: BaseBeing,
    parameters: list[dict[str, Any]],
    typed: Mapping[str, str] | None = None,
    args: list[Any] | None = None,
    kwargs: Mapping[str, Any] | None = None,
) -> list[RunField]:
    """The fields of the form: as typed (a refused submission), from a run's inputs (run again), or prefilled."""
    attributes = being.attributes if isinstance(being.attributes, dict) else {}
    found = attributes.get("arguments")
    arguments: dict[str, Any] = found if isinstance(found, dict) else {}
    positional = [p for p in parameters if p["kind"] in (POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD)]
    given: dict[str, Any] = {}
    if args is not None or kwargs is not None:
        args = list(args or [])
        for parameter, value in zip(positional, args, strict=False):
            given[parameter["name"]] = value
        if len(args) > len(positional):
            given["*"] = args[len(positional) :]
        for name, value in (kwargs or {}).items():
            if any(p["name"] == name and p["kind"] != POSITIONAL_ONLY for p in parameters):
                given[name] = value
    fields = []
    for parameter in parameters:
        name, kind = parameter["name"], parameter["kind"]
        if kind == VAR_KEYWORD:
            continue
        known, default = _default_value(parameter["default"])
        if typed is not None:
            text = typed.get(f"{FIELD_PREFIX}{name}", "")
        elif args is not None or kwargs is not None:
            key = "*" if kind == VAR_POSITIONAL else name
            text = value_show(given[key]) if key in given else ""
        elif name in arguments and kind != VAR_POSITIONAL:
            text = value_show(arguments[name])
        else:
            text = value_show(default) if known else ""
        fields.append(
            RunField(
                name=name,
                kind=kind,
                text=text,
                default=parameter["default"],
                annotation=parameter["annotation"],
                required=parameter["default"] is None and kind not in (VAR_POSITIONAL,) and name not in arguments,
            )
        )
    return fields


def kwargs_parse(text: str) -> Any:
    """The JSON typed into the run form's kwargs box (empty means none); the service checks it is an object."""
    if len(text.encode()) > settings.LUXOS_MAX_JSON_BYTES:
        raise TooLarge(f"the keyword arguments exceed {settings.LUXOS_MAX_JSON_BYTES} bytes", code="kwargs_too_large")
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"the keyword arguments are not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})",
            code="bad_json",
        ) from None
    except RecursionError:
        raise BadRequest("the keyword arguments nest too deeply to read", code="bad_json") from None


def run_inputs(*, being: BaseBeing, data: Mapping[str, str]) -> tuple[list[Any], Any]:
    """The args and kwargs a submitted run form asks for: its fields, then the JSON box's keyword arguments.

    Positional-only parameters go as positional arguments, and so do the others before ``*args``
    when that field is filled; the filled ones must come first, without a gap. The kwargs are
    returned as read (the service refuses what is not an object).
    """
    parameters = run_parameters(being) or []
    read: dict[str, Any] = {}
    for key, text in data.items():
        if not key.startswith(FIELD_PREFIX) or not text.strip():
            continue
        name = key[len(FIELD_PREFIX) :]
        if len(text.encode()) > settings.LUXOS_MAX_JSON_BYTES:
            limit = settings.LUXOS_MAX_JSON_BYTES
            raise TooLarge(f"the value of {name} exceeds {limit} bytes", code="kwargs_too_large")
        read[name] = value_read(text)
    kinds_of = {parameter["name"]: parameter["kind"] for parameter in parameters}
    rest = next((parameter["name"] for parameter in parameters if parameter["kind"] == VAR_POSITIONAL), None)
    extra: list[Any] = []
    if rest is not None and rest in read:
        extra = read.pop(rest)
        if not isinstance(extra, list):
            raise BadRequest(f"*{rest} takes a JSON list, such as [1, 2]", code="bad_arguments")
    by_position = [
        name for name, kind in kinds_of.items() if kind == POSITIONAL_ONLY or (kind == POSITIONAL_OR_KEYWORD and extra)
    ]
    args: list[Any] = []
    for index, name in enumerate(by_position):
        if name not in read:
            later = next((other for other in by_position[index + 1 :] if other in read), None)
            if later is not None or extra:
                raise BadRequest(
                    f"fill in {name} too: it comes before {later or '*' + str(rest)}", code="bad_arguments"
                )
            break
        args.append(read.pop(name))
    box = kwargs_parse(data.get("kwargs", ""))
    kwargs = {**read, **box} if isinstance(box, dict) else box
    return [*args, *extra], kwargs


def run_form_context(
    *,
    being: BaseBeing,
    user: User,
    again: str | None = None,
    data: Mapping[str, str] | None = None,
    error: DomainError | None = None,
) -> dict[str, Any]:
    """What the run form on the being page needs beside the being and its versions.

    ``again`` is a run of this being whose inputs and version fill the form ("Run again"); ``data``
    and ``error`` are a refused submission, shown again as typed with what was wrong.
    """
    context: dict[str, Any] = {"may_execute": may(user=user, action="execute_being", obj=being)}
    if not context["may_execute"]:
        return context
    parameters = run_parameters(being)
    kwargs_text, hash = "{}", None
    if data is not None:
        fields = run_fields(being=being, parameters=parameters or [], typed=data)
        kwargs_text, hash = data.get("kwargs", ""), data.get("hash", "").strip() or None
    else:
        run = _run_again(being=being, user=user, id=again)
        if run is None:
            fields = run_fields(being=being, parameters=parameters or [])
        else:
            fields = run_fields(being=being, parameters=parameters or [], args=run.args, kwargs=run.kwargs)
            covered = {field.name for field in fields if field.kind in (POSITIONAL_OR_KEYWORD, KEYWORD_ONLY)}
            others = {name: value for name, value in run.kwargs.items() if name not in covered}
            kwargs_text = json.dumps(others, ensure_ascii=False) if others else "{}"
            hash = run.hash if run.hash != being.hash else None
    context.update(
        run_fields=fields,
        run_signature=parameters is not None,
        run_more_keywords=next((p["name"] for p in parameters or [] if p["kind"] == VAR_KEYWORD), None),
        run_kwargs=kwargs_text,
        run_hash=hash,
        run_error=error,
        run_advanced_open=parameters is None or kwargs_text.strip() not in ("", "{}"),
    )
    return context


def _run_again(*, being: BaseBeing, user: User, id: str | None) -> Any:
    """The run of this being named by ``?again=``, when the user may see it; None otherwise (the form starts afresh)."""
    if not id:
        return None
    try:
        run = execution_get(id=uuid.UUID(id), user=user)
    except (ValueError, NotFound, PermissionDenied):
        return None
    if run.being_id != being.soul or not execution_contents_visible(execution=run, user=user):
        return None  # another user's inputs are theirs: the owner of the being does not get them
    return run
