"""The world being code lives in: RestrictedPython, every guard, chosen builtins and module facades.

A being's source is compiled with ``compile_restricted_exec`` under ``policy.BeingPolicy`` (no name
or attribute starting with ``_``, no ``match``, ``async``, ``nonlocal`` or ``try*``; augmented
assignment of attributes and items through the guards of a plain read and assignment) and run with
globals of the run's own (see ``globals_build``): ``self`` (the being's JSON snapshot, deep-frozen), the
capabilities ``execution`` and ``summon``, ``BeingCallError``, the guards, and builtins holding no
``getattr``, ``type``, ``open``, ``eval``, ``globals`` and the like. ``import`` reaches only
FACADES: plain objects exposing chosen functions, never a module (a module's attributes lead to
every other module).

This runs inside the sandbox child; it is imported by the zygote and must not import Django.
"""

from __future__ import annotations

import base64
import builtins
import collections
import functools
import marshal
import mmap
import operator
import types
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from RestrictedPython import compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from beings.runtime.facades import facades_build, freeze, importer_build, json_default
from beings.runtime.policy import BeingPolicy
from beings.runtime.protocol import OUTPUT_HEADER, json_dumps

BEING_FILENAME = "<being>"
BEING_MODULE = "being"
TRACEBACK_FRAMES = 30
TYPE_CHARS = 200
MESSAGE_CHARS = 4000
TRACEBACK_CHARS = 16000

# Vetted additions to RestrictedPython's safe_builtins. Iterating in C (sorted, zip, ...) only
# bypasses _getiter_, which guards nothing here.
EXTRA_BUILTINS = (
    "all",
    "any",
    "ascii",
    "bin",
    "bytes",
    "dict",
    "enumerate",
    "filter",
    "frozenset",
    "iter",
    "list",
    "map",
    "max",
    "min",
    "next",
    "reversed",
    "set",
    "sorted",
    "sum",
    "tuple",
    "zip",
)
# In safe_builtins but not given to beings: guarded setattr/delattr write through a Wrapper that
# refuses everything a being owns, and _getattr_ is passed as a global of our own.
WITHHELD_BUILTINS = ("setattr", "delattr", "_getattr_")

_INPLACE = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}
# Objects whose every attribute leads into the interpreter: refused whatever the name.
_OPAQUE_TYPES = (
    types.FrameType,
    types.TracebackType,
    types.CodeType,
    types.ModuleType,
    types.CellType,
    types.CoroutineType,
    types.AsyncGeneratorType,
)
_GENERATOR_ATTRIBUTES = frozenset({"send", "throw", "close", "gi_running", "gi_suspended"})
_MUTABLE_TYPES = (dict, list, set, bytearray, collections.deque)


class BeingCallError(RuntimeError):
    """An execution() or summon() the worker refused or that failed; ``error_type`` names why."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type


# Its repr is all a being learns of where it lives.
BeingCallError.__module__ = "builtins"


class BeingError(Exception):
    """A run that failed before or around the being's own code (entrypoint, result)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def guarded_getattr(obj: Any, name: str) -> Any:
    """``obj.name`` in being code: no private names, no interpreter internals, no ``str.format``."""
    if type(name) is not str:
        raise TypeError("attribute names must be strings")
    if name.startswith("_"):
        raise AttributeError(f'"{name}" is a private attribute; beings may not read it')
    if name in INSPECT_ATTRIBUTES or isinstance(obj, _OPAQUE_TYPES):
        raise AttributeError(f'"{name}" leads into the interpreter; beings may not read it')
    if isinstance(obj, types.GeneratorType) and name not in _GENERATOR_ATTRIBUTES:
        raise AttributeError(f'"{name}" of a generator is not available in a being')
    if name in ("format", "format_map") and (isinstance(obj, str) or (isinstance(obj, type) and issubclass(obj, str))):
        raise AttributeError("str.format() is not available in a being: use f-strings or %")
    if name == "mro" and isinstance(obj, type):
        raise AttributeError('"mro" is not available in a being')
    return getattr(obj, name)


def guarded_getitem(obj: Any, key: Any) -> Any:
    return obj[key]


def inplace_var(op: str, target: Any, value: Any) -> Any:
    return _INPLACE[op](target, value)


def apply(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


class OutputSink:
    """Printed text of a run, written as UTF-8 straight into memory the worker shares with the child
    (``protocol.OUTPUT_HEADER``, then the bytes), up to what the buffer holds: nothing printed waits
    in the child, so a child killed at any instant (wall clock, CPU, cancel) loses none of it."""

    def __init__(self, buffer: bytearray | mmap.mmap) -> None:
        self.buffer = buffer
        self.limit = len(buffer) - OUTPUT_HEADER.size
        self.used = 0
        self.truncated = False

    def write(self, text: str) -> None:
        if not text or self.truncated:
            return
        data = text.encode("utf-8", "replace")  # a lone surrogate becomes "?"
        room = self.limit - self.used
        if len(data) > room:
            data = data[:room].decode("utf-8", "ignore").encode()  # cut at a character's boundary
            self.truncated = True
        start = OUTPUT_HEADER.size + self.used
        self.buffer[start : start + len(data)] = data
        self.used += len(data)
        # The length last: the worker never reads bytes that are not all written yet.
        OUTPUT_HEADER.pack_into(self.buffer, 0, self.used, self.truncated)


class Printer:
    """The ``_print_`` RestrictedPython instantiates in each scope that prints: writes go to the run's sink.

    One class for every run (a class made per run costs a child a tenth of a millisecond); the sink
    comes with each instance, from the ``_print_`` of the run's globals."""

    def __init__(self, sink: OutputSink, _getattr_: Any = None) -> None:
        self._sink = sink
        self._getattr_ = _getattr_
        self._text: list[str] = []
        self._chars = 0

    def write(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError("print() wrote something that is not text")
        sink = self._sink
        sink.write(text)
        if self._chars < sink.limit:
            self._text.append(text[: sink.limit - self._chars])
            self._chars += len(text)

    def __call__(self) -> str:
        return "".join(self._text)

    def _call_print(
        self, *objects: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
    ) -> None:
        if file is not None:
            guarded_getattr(file, "write")
            print(*objects, sep=sep, end=end, file=file)
            return
        sep = " " if sep is None else sep
        end = "\n" if end is None else end
        if not isinstance(sep, str) or not isinstance(end, str):
            raise TypeError("print() sep and end must be None or strings")
        # One write per call, so that a line is flushed whole.
        self.write(sep.join(str(item) for item in objects) + end)


class Capabilities(NamedTuple):
    """What being code can ask of the world; both send a request to the worker and wait for its reply."""

    execution: Callable[..., Any]
    summon: Callable[..., Any]


@functools.cache
def _builtins_build() -> dict[str, Any]:
    """The builtins of every run and the facades their ``__import__`` reaches, built once per process: in the
    zygote, before any being ran and before it forks, which saves each child building them (a tenth of its
    CPU). Each run gets a copy of the dict; no being can change what is in it."""
    being_builtins = {name: value for name, value in safe_builtins.items() if name not in WITHHELD_BUILTINS}
    being_builtins.update({name: getattr(builtins, name) for name in EXTRA_BUILTINS})
    being_builtins["__import__"] = importer_build(facades_build())
    return being_builtins


def globals_build(*, snapshot: Mapping[str, Any], capabilities: Capabilities, sink: OutputSink) -> dict[str, Any]:
    """The globals of one run, every object in them new but the builtins and facades (see ``_builtins_build``),
    which a child holds as its own copy since the fork."""
    classes: list[type] = []
    being_builtins = dict(_builtins_build())

    def being_class(name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
        cls = type(name, bases, namespace)
        classes.append(cls)
        return cls

    def write_guard(obj: Any) -> Any:
        # Identity, not ==: comparing would run a being's __eq__.
        if isinstance(obj, _MUTABLE_TYPES) or any(obj is cls or type(obj) is cls for cls in classes):
            return obj
        return full_write_guard(obj)

    return {
        "__builtins__": being_builtins,
        "__name__": BEING_MODULE,
        "__metaclass__": being_class,
        "__being_classes__": classes,
        "_getattr_": guarded_getattr,
        "_getitem_": guarded_getitem,
        "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": write_guard,
        "_inplacevar_": inplace_var,
        "_apply_": apply,
        "_print_": functools.partial(Printer, sink),
        "self": freeze(dict(snapshot)),
        "execution": capabilities.execution,
        "summon": capabilities.summon,
        "BeingCallError": BeingCallError,
    }


def being_compile(source: str) -> types.CodeType:
    """Compile under RestrictedPython; every refusal is a SyntaxError naming its line."""
    result = compile_restricted_exec(source, filename=BEING_FILENAME, policy=BeingPolicy)
    if result.errors or result.code is None:
        raise SyntaxError("; ".join(result.errors) or "the source does not compile")
    return result.code


@functools.lru_cache(maxsize=256)
def being_bytecode(source: str) -> str | None:
    """``being_compile(source)`` marshalled (base64): the worker compiles each source once, and its children load
    the code instead of compiling it at every run (half a millisecond of a trivial run's CPU). Compiling runs
    nothing of the being, as the web's validation parsing it runs nothing. None when it does not compile: the
    child compiles the source again and reports why, as ever."""
    try:
        code = being_compile(source)
    except Exception:  # SyntaxError, ValueError (a NUL byte), RecursionError, MemoryError...
        return None
    return base64.b64encode(marshal.dumps(code)).decode("ascii")


def being_run(job: Mapping[str, Any], *, capabilities: Capabilities, sink: OutputSink) -> Any:
    """Compile and run the module body, then call the entrypoint; returns what the being returned.

    Function beings: ``entrypoint(*args, **kwargs)``, kwargs being ``attributes["arguments"]``
    overridden by the call's kwargs. Class beings: the class named ``class_name``, else the first
    class the module defines, is instantiated with ``Cls(attributes=attributes)`` when its
    ``__init__`` takes an ``attributes`` parameter (or ``**kwargs``) and ``Cls()`` otherwise; then
    ``instance.entrypoint(*args, **kwargs)`` is called the same way.
    """
    bytecode = job.get("code")
    code = marshal.loads(base64.b64decode(bytecode)) if bytecode else being_compile(job["source"])
    namespace = globals_build(snapshot=job.get("self") or {}, capabilities=capabilities, sink=sink)
    exec(code, namespace)
    attributes = dict(job.get("attributes") or {})
    kwargs = {**(attributes.get("arguments") or {}), **(job.get("kwargs") or {})}
    args = job.get("args") or []
    entrypoint = job.get("entrypoint") or "run"
    if job.get("kind") == "class":
        cls = _being_class(namespace, job.get("class_name"))
        target = getattr(_instantiate(cls, attributes), entrypoint, None)
        where = f"class {cls.__name__}"
    else:
        target = namespace.get(entrypoint)
        where = "the being"
    if not callable(target):
        raise BeingError("EntrypointError", f"{where} defines no function {entrypoint!r}")
    return target(*args, **kwargs)


def _being_class(namespace: dict[str, Any], class_name: str | None) -> type:
    classes: list[type] = namespace["__being_classes__"]
    for candidate in classes:
        if namespace.get(candidate.__name__) is candidate and class_name in (None, candidate.__name__):
            return candidate
    wanted = f"a class named {class_name!r}" if class_name else "a class"
    raise BeingError("EntrypointError", f"the being defines no {wanted}")


def _instantiate(cls: type, attributes: dict[str, Any]) -> Any:
    init = cls.__init__  # type: ignore[misc]
    code = getattr(init, "__code__", None)
    if code is None:
        return cls()
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    takes_keywords = bool(code.co_flags & 0x08)  # CO_VARKEYWORDS
    return cls(attributes=attributes) if "attributes" in names or takes_keywords else cls()


def result_encode(value: Any, *, limit: int) -> str:
    """The result as compact JSON, or a BeingError saying why it cannot be one."""
    try:
        text = json_dumps(value, default=json_default)
    except RecursionError:
        raise BeingError("ResultError", "result is not JSON: it is nested too deeply") from None
    except Exception as error:  # a being's own classes may raise anything
        raise BeingError("ResultError", f"result is not JSON: {_text(error)}") from None
    if len(text) > limit:
        raise BeingError("ResultTooLarge", f"result is {len(text)} bytes of JSON; the limit is {limit}")
    return text


def error_describe(error: BaseException, source: str) -> dict[str, str]:
    """type, message and a traceback cut to the being's own frames: no path or line of the sandbox."""
    error_type = getattr(error, "error_type", None) if isinstance(error, BeingError) else None
    kind = (error_type or type(error).__name__)[:TYPE_CHARS]
    message = _text(error)[:MESSAGE_CHARS]
    lines = source.splitlines()
    frames = []
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename == BEING_FILENAME:
            frames.append((tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    omitted = max(0, len(frames) - TRACEBACK_FRAMES)
    shown = frames[:10] + frames[10 + omitted :] if omitted else frames
    parts = ["Traceback (most recent call last):\n"] if frames else []
    for index, (lineno, name) in enumerate(shown):
        if omitted and index == 10:
            parts.append(f"  [... {omitted} more frames ...]\n")
        parts.append(f'  File "{BEING_FILENAME}", line {lineno}, in {name}\n')
        if 0 < lineno <= len(lines) and lines[lineno - 1].strip():
            parts.append(f"    {lines[lineno - 1].strip()[:200]}\n")
    parts.append(f"{kind}: {message}" if message else kind)
    return {"type": kind, "message": message, "traceback": "".join(parts)[-TRACEBACK_CHARS:]}


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # str() of a being's exception runs its code
        return f"<{type(error).__name__} that cannot be shown>"
