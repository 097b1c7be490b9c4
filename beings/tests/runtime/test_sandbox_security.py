"""Hostile beings: every escape attempt ends contained, leaks no secret, and leaves the sandbox healthy.

The test process holds canaries (a SECRET_KEY in its environment, a root-only file) before the
zygote starts; no result, output or error may ever show them. The layers are also tested on their
own, in plain Python inside a confined child (``Sandbox.check``), and the worker's side of the
protocol against a fake child that writes whatever a compromised one could.
"""

from __future__ import annotations

import json
import mmap
import os
import signal
import socket
import subprocess
import sys
import time
import types
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from beings.runtime import facades, restricted
from beings.runtime.jobs import RunResult, RunStatus, SandboxCheck, SandboxLimits, job_encode
from beings.runtime.protocol import HEADER, OUTPUT_HEADER, frame_encode
from beings.runtime.run import Child, Run, Stillborn
from beings.runtime.sandbox import PROJECT_ROOT, Sandbox
from beings.runtime.zygote import output_memory

SECRET = f"canary-secret-{uuid.uuid4().hex}"
FILE_SECRET = f"canary-file-{uuid.uuid4().hex}"
LIMITS = SandboxLimits(cpu_seconds=1, wall_seconds=5, output_bytes=4096, calls=50, summons=10)
SNAPSHOT = {"name": "hello", "tags": ["a"], "attributes": {"colour": "red"}}
ALIVE = {"source": "def run():\n    return 'alive'\n"}
FAILED = {RunStatus.FAILED}


@dataclass(frozen=True)
class Armed:
    sandbox: Sandbox
    secret_file: Path
    check: SandboxCheck


@pytest.fixture(scope="module")
def armed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Armed]:
    """A sandbox whose zygote starts while this process holds the canaries."""
    secret_file = tmp_path_factory.mktemp("canary") / "secret.txt"
    secret_file.write_text(FILE_SECRET)
    secret_file.chmod(0o600)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SECRET_KEY", SECRET)
        patch.setenv("LUXOS_CANARY_TOKEN", SECRET)
        sandbox = Sandbox()
        try:
            check = sandbox.check(LIMITS, read_paths=[str(secret_file)])
            yield Armed(sandbox=sandbox, secret_file=secret_file, check=check)
        finally:
            sandbox.close()


def on_request(request: dict[str, Any]) -> Any:
    return {"echo": request["op"]}


def assert_contained(armed: Armed, result: RunResult) -> None:
    """No canary and no host path in anything the run returned, and the sandbox still runs beings."""
    shown = json.dumps(result.as_dict())
    for secret in (SECRET, FILE_SECRET, str(PROJECT_ROOT), sys.prefix):
        assert secret not in shown
    assert armed.sandbox.run(ALIVE, LIMITS).result == "alive"


@dataclass(frozen=True)
class Escape:
    name: str
    source: str
    statuses: set[RunStatus] = field(default_factory=lambda: FAILED)
    error: str | None = None
    message: str | None = None
    result: Callable[[Any], bool] | None = None

    def __str__(self) -> str:
        return self.name


def attempt(name: str, body: str, error: str | None = None, **expect: Any) -> Escape:
    """An escape written as the body of run()."""
    source = "def run():\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return Escape(name=name, source=source, error=error, **expect)


def module(name: str, source: str, error: str | None = None, **expect: Any) -> Escape:
    """An escape written as a whole module."""
    return Escape(name=name, source=source, error=error, **expect)


REFUSED_MODULES = (
    "os",
    "sys",
    "subprocess",
    "socket",
    "ctypes",
    "importlib",
    "gc",
    "inspect",
    "pickle",
    "io",
    "pathlib",
    "types",
    "code",
    "string",
    "operator",
    "functools",
    "signal",
    "threading",
    "posix",
    "shutil",
    "marshal",
    "urllib",
    "multiprocessing",
    "resource",
    "time",
)

ESCAPES = [
    # Dunder and subclass walks.
    attempt("subclasses_walk", "return ().__class__.__bases__[0].__subclasses__()", "SyntaxError"),
    attempt("getattr_builtin", "return getattr((), '__class__')", "NameError"),
    attempt("type_builtin", "return type(())", "NameError"),
    attempt("vars_builtin", "return vars()", "NameError"),
    attempt("dir_builtin", "return dir()", "NameError"),
    attempt("globals_builtin", "return globals()['__builtins__']", "NameError"),
    attempt("locals_builtin", "return locals()", "NameError"),
    attempt("super_builtin", "return super()", "NameError"),
    attempt("setattr_builtin", "setattr(self, 'name', 1)", "NameError"),
    attempt("object_subclasses", "return object.__subclasses__()", "SyntaxError"),
    attempt("builtins_name", "return __builtins__", "SyntaxError"),
    attempt("builtin_self", "return isinstance.__self__", "SyntaxError"),
    attempt("str_mro", "return [c for c in str.mro()]", "AttributeError", message='"mro" is not available'),
    module("class_mro", "class A:\n    pass\n\ndef run():\n    return A.mro()\n", "AttributeError"),
    module("class_dict_write", "class A:\n    pass\n\ndef run():\n    A().__dict__ = {}\n", "SyntaxError"),
    module("name_mangling", "class A:\n    def f(self):\n        return self.__x\n", "SyntaxError"),
    module("metaclass_keyword", "class A(metaclass=type):\n    pass\n", "SyntaxError"),
    attempt("builtin_type_write", "str.upper = None", "TypeError"),
    # Format strings.
    attempt(
        "str_format_walk",
        "return '{0.__class__.__bases__}'.format(1)",
        "AttributeError",
        message="str.format() is not available",
    ),
    attempt("str_format_map_walk", "return '{x.__class__}'.format_map({'x': 1})", "AttributeError"),
    attempt("unbound_str_format", "return str.format('{0.__globals__}', run)", "AttributeError"),
    module(
        "str_subclass_format",
        "class S(str):\n    pass\n\ndef run():\n    return S('{0.__class__}').format(1)\n",
        "AttributeError",
    ),
    attempt("format_builtin", "return format(run, '{0.__globals__}')", "NameError"),
    attempt("fstring_dunder", "return f'{(1).__class__}'", "SyntaxError"),
    attempt(
        "fstring_repr_of_capabilities",
        "return f'{execution!r} {summon!r} {BeingCallError!r}'",
        statuses={RunStatus.SUCCEEDED},
        result=lambda value: value.startswith("<function execution at 0x") and "restricted" not in value,
    ),
    attempt(
        "percent_format_mapping",
        "return '%(name)s' % self",
        statuses={RunStatus.SUCCEEDED},
        result=lambda value: value == "hello",
    ),
    # Frames and tracebacks.
    attempt("generator_frame", "g = (x for x in [1])\nreturn g.gi_frame.f_back.f_globals", "SyntaxError"),
    attempt("generator_code", "g = (x for x in [1])\nreturn g.gi_code.co_consts", "SyntaxError"),
    attempt(
        "traceback_frame",
        "try:\n    1 / 0\nexcept Exception as e:\n    return e.__traceback__.tb_frame.f_globals",
        "SyntaxError",
    ),
    attempt(
        "traceback_via_with_traceback",
        "try:\n    1 / 0\nexcept Exception as e:\n    return e.with_traceback(None).args",
        statuses={RunStatus.SUCCEEDED},
        result=lambda value: value == ["division by zero"],
    ),
    attempt("sys_getframe", "import sys\nreturn sys._getframe(1).f_globals", "SyntaxError"),
    attempt("function_globals", "return run.__globals__['__builtins__']", "SyntaxError"),
    attempt("function_code", "return run.__code__.co_consts", "SyntaxError"),
    attempt("execution_closure", "return execution.__closure__[0].cell_contents", "SyntaxError"),
    attempt("execution_globals", "return execution.__globals__['os']", "SyntaxError"),
    attempt("summon_defaults", "return summon.__kwdefaults__", "SyntaxError"),
    attempt("execution_public_attribute", "return execution.func", "AttributeError"),
    attempt("error_class_init_globals", "return BeingCallError.__init__.__globals__", "SyntaxError"),
    module(
        "generator_state_only",
        "def gen():\n    yield 1\n\ndef run():\n    g = gen()\n    next(g)\n"
        "    return [g.gi_running, g.gi_suspended]\n",
        statuses={RunStatus.SUCCEEDED},
        result=lambda value: value == [False, True],
    ),
    # Imports in every spelling.
    *[
        attempt(
            f"import_{name}",
            f"import {name}\nreturn 1",
            "ImportError",
            message=f"module {name!r} is not available in a being",
        )
        for name in REFUSED_MODULES
    ],
    attempt("from_os_import_system", "from os import system\nreturn system('id')", "ImportError"),
    attempt("dunder_import", "return __import__('os')", "SyntaxError"),
    attempt("import_builtins", "import builtins\nreturn 1", "SyntaxError", message='"builtins" is a reserved name'),
    attempt("from_builtins_import_open", "from builtins import open\nreturn open('/etc/passwd')", "ImportError"),
    attempt("import_private_module", "import _thread\nreturn 1", "SyntaxError"),
    attempt("import_dotted", "import os.path\nreturn 1", "ImportError"),
    attempt("import_relative", "from . import json\nreturn 1", "ImportError"),
    attempt("import_star", "from math import *", "SyntaxError"),
    attempt(
        "from_json_import_codecs",
        "from json import codecs\nreturn codecs.sys",
        "ImportError",
        message="cannot import name 'codecs' from 'json'",
    ),
    attempt("json_codecs_sys", "import json\nreturn json.codecs.sys.modules", "AttributeError"),
    attempt("json_decoder_module", "import json\nreturn json.decoder", "AttributeError"),
    attempt("json_dumps_globals", "import json\nreturn json.dumps.__globals__", "SyntaxError"),
    attempt("math_loader", "import math\nreturn math.__loader__", "SyntaxError"),
    attempt("random_method_self", "import random\nreturn random.seed.__self__", "SyntaxError"),
    attempt("random_class", "import random\nreturn random.Random", "AttributeError"),
    attempt("collections_namedtuple", "from collections import namedtuple\nreturn 1", "ImportError"),
    attempt(
        "counter_method_globals",
        "from collections import Counter\nreturn Counter.most_common.__globals__",
        "SyntaxError",
    ),
    attempt("datetime_sys", "import datetime\nreturn datetime.sys", "AttributeError"),
    attempt("re_internals", "import re\nreturn re.sre_compile", "AttributeError"),
    attempt("facade_write", "import math\nmath.pi = 3", "TypeError"),
    attempt("facade_listing", "import math\nreturn dir(math)", "NameError"),
    # Files and the environment.
    attempt("open_passwd", "return open('/etc/passwd').read()", "NameError"),
    attempt("open_canary", "return open('CANARY_PATH').read()", "NameError"),
    attempt("environ", "import os\nreturn dict(os.environ)", "ImportError"),
    attempt("environ_in_self", "return self['environ']", "KeyError"),
    # Resource bombs.
    attempt("string_bomb", "return len('x' * 10**10)", "MemoryError"),
    attempt("list_bomb", "return len([1] * 10**9)", "MemoryError"),
    attempt("bytes_bomb", "return len(bytes(10**10))", "MemoryError"),
    attempt("range_bomb", "return len(list(range(10**9)))", "MemoryError"),
    attempt("infinite_iterator", "import itertools\nreturn list(itertools.count())", "MemoryError"),
    module(
        "deep_recursion", "def down(n):\n    return down(n + 1)\n\ndef run():\n    return down(0)\n", "RecursionError"
    ),
    attempt("cpu_loop", "while True:\n    pass", statuses={RunStatus.TIMEOUT}),
    attempt("long_int_power", "return 10**10**10", statuses={RunStatus.TIMEOUT, RunStatus.FAILED}),
    attempt("huge_int_to_text", "return str(10**100000)", "ValueError"),
    attempt("print_flood", "while True:\n    print('x' * 10000)", statuses={RunStatus.TIMEOUT}),
    attempt("huge_result", "return 'x' * (2 * 2**20)", "ResultTooLarge"),
    attempt("nested_result", "x = []\nfor i in range(100000):\n    x = [x]\nreturn x", "ResultError"),
    attempt("self_referencing_result", "x = []\nx.append(x)\nreturn x", "ResultError"),
    module(
        "deeply_nested_source",
        "def run():\n    return " + "(" * 5000 + "1" + ")" * 5000 + "\n",
        statuses={RunStatus.FAILED, RunStatus.KILLED},
    ),
    module("null_byte_source", "def run():\n    return 1\x00\n", statuses={RunStatus.FAILED}),
    # Abuse of self.
    attempt("self_setitem", "self['name'] = 'evil'", "TypeError"),
    attempt("self_setattr", "self.name = 'evil'", "TypeError"),
    attempt("self_delitem", "del self['name']", "TypeError"),
    attempt("self_private_storage", "return self._items", "SyntaxError"),
    attempt("self_method_owner", "return self.keys.__self__", "SyntaxError"),
    attempt("self_nested_write", "self['attributes']['colour'] = 'blue'", "TypeError"),
    attempt("self_list_append", "self['tags'].append('x')", "AttributeError"),
    attempt(
        "self_copy_is_a_copy",
        "copy = dict(self)\ncopy['name'] = 'evil'\nreturn [self['name'], copy['name']]",
        statuses={RunStatus.SUCCEEDED},
        result=lambda value: value == ["hello", "evil"],
    ),
    # Augmented assignment: the read and the write each guarded as a plain read and assignment.
    module(
        "aug_dunder_attribute",
        "class A:\n    pass\n\ndef run():\n    a = A()\n    a.__class__ += 1\n",
        "SyntaxError",
        message='"__class__" is an invalid attribute name',
    ),
    module("aug_class_dict", "class A:\n    pass\n\ndef run():\n    A().__dict__ |= {'x': 1}\n", "SyntaxError"),
    attempt(
        "aug_private_attribute",
        "x = {}\nx._secret += 1",
        "SyntaxError",
        message='"_secret" is an invalid attribute name',
    ),
    attempt("aug_private_name", "_secret += 1", "SyntaxError", message='"_secret" is an invalid variable name'),
    attempt("aug_roles_attribute", "x = {}\nx.a__roles__ += 1", "SyntaxError"),
    attempt("aug_generator_frame", "g = (x for x in [1])\ng.gi_frame += 1", "SyntaxError"),
    attempt("aug_function_globals", "run.__globals__['x'] += 1", "SyntaxError"),
    attempt("aug_temporaries_unreadable", "x = {'a': 1}\nx['a'] += 1\nreturn _aug_object_", "SyntaxError"),
    attempt("aug_facade_attribute", "import math\nmath.pi += 1", "TypeError", message="attribute-less object"),
    attempt(
        "aug_facade_unchanged",
        "import math\ntry:\n    math.pi += 1\nexcept TypeError:\n    pass\nreturn math.pi",
        statuses={RunStatus.SUCCEEDED},
        result=lambda value: value == 3.141592653589793,
    ),
    attempt("aug_facade_item", "import math\nmath['pi'] += 1", "TypeError"),
    attempt("aug_builtin_instance_attribute", "x = 1\nx.real += 1", "TypeError", message="attribute-less object"),
    attempt("aug_builtin_type_attribute", "str.upper += str.lower", "TypeError"),
    attempt("aug_str_format", "s = 'a'\ns.format += 'b'", "AttributeError", message="str.format() is not available"),
    module(
        "aug_class_mro",
        "class A:\n    pass\n\ndef run():\n    A.mro += 1\n",
        "AttributeError",
        message='"mro" is not available',
    ),
    attempt("aug_capability_attribute", "execution.func += 1", "AttributeError"),
    attempt("aug_self_item", "self['name'] += '!'", "TypeError", message="object does not support item"),
    attempt("aug_self_nested_item", "self['attributes']['colour'] += '!'", "TypeError"),
    attempt(
        "aug_self_unchanged",
        "try:\n    self['tags'] += ('x',)\nexcept TypeError:\n    pass\nreturn self",
        statuses={RunStatus.SUCCEEDED},
        result=lambda value: value == SNAPSHOT,
    ),
    attempt("aug_self_attribute", "self.name += '!'", "AttributeError"),
    # Abuse of execution() and summon().
    attempt("huge_arguments", "return execution('x', 'a' * (2 * 2**20))", "BeingCallError", message="RequestTooLarge"),
    attempt("set_arguments", "return execution('x', {1, 2})", "TypeError", message="must be JSON"),
    attempt("nan_arguments", "return execution('x', float('nan'))", "TypeError"),
    attempt("circular_arguments", "x = []\nx.append(x)\nreturn execution('x', x)", "TypeError"),
    attempt("target_not_text", "return execution(self)", "TypeError"),
    attempt(
        "over_call_budget", "for i in range(60):\n    execution('x')", "BeingCallError", message="CallBudgetExceeded"
    ),
    attempt(
        "over_summon_quota",
        "for i in range(12):\n    summon(name='x')",
        "BeingCallError",
        message="SummonQuotaExceeded",
    ),
    attempt("summon_bad_tags", "return summon(name='x', tags=[1])", "TypeError"),
    # Syntax RestrictedPython does not let through.
    module(
        "match_class_pattern",
        "def run():\n    match 1:\n        case int(__class__=c):\n            return c\n",
        "SyntaxError",
    ),
    module("async_function", "async def run():\n    return 1\n", "SyntaxError"),
    module("nonlocal", "def run():\n    x = 1\n    def f():\n        nonlocal x\n    return x\n", "SyntaxError"),
    module("except_star", "def run():\n    try:\n        pass\n    except* ValueError:\n        pass\n", "SyntaxError"),
    attempt("exec_builtin", "exec('import os')", "SyntaxError", message="Exec calls are not allowed"),
    attempt("eval_builtin", "return eval('1')", "SyntaxError", message="Eval calls are not allowed"),
    attempt("compile_builtin", "return compile('1', 'x', 'eval')", "NameError"),
    attempt("breakpoint", "breakpoint()", "SyntaxError"),
    attempt("system_exit", "raise SystemExit(0)", "SystemExit"),
    attempt("keyboard_interrupt", "raise KeyboardInterrupt", "KeyboardInterrupt"),
]


def test_there_are_enough_escape_attempts() -> None:
    """The escape attempts stay many (45 or more), each under its own name so none hides another."""
    assert len(ESCAPES) >= 45
    assert len({escape.name for escape in ESCAPES}) == len(ESCAPES)


@pytest.mark.parametrize("escape", ESCAPES, ids=str)
def test_escape_attempt_is_contained(armed: Armed, escape: Escape) -> None:
    """The attempt ends as expected, shows no secret or host path, and the sandbox runs the next being."""
    job = {"source": escape.source.replace("CANARY_PATH", str(armed.secret_file)), "self": SNAPSHOT}
    result = armed.sandbox.run(job, LIMITS, on_request)
    assert result.status in escape.statuses, result
    if escape.error is not None:
        assert result.error is not None
        assert result.error["type"] == escape.error, result.error
    if escape.message is not None:
        assert result.error is not None
        assert escape.message in result.error["message"], result.error
    if escape.result is not None:
        assert escape.result(result.result), result.result
    assert len(result.output.encode()) <= LIMITS.output_bytes
    assert_contained(armed, result)


# The layers on their own, proven by a confined child trying in plain Python what they must refuse.

REFUSED_FACTS = [
    "socket_inet",
    "socket_unix",
    "fork",
    "thread",
    "exec",
    "kill_self",
    "kill_parent",
    "write_tmp",
    "prlimit_parent",
    "setpriority_parent",
    "affinity_parent",
]


def test_zygote_never_imported_django_and_holds_no_secret(armed: Armed) -> None:
    """The child (a fork of the zygote) has no Django module and an environment of PATH and LANG only."""
    facts = armed.check.facts
    assert facts["django_imported"] is False
    assert facts["modules"] == []
    assert set(facts["environ"]) <= {"PATH", "LANG"}
    assert SECRET not in json.dumps(facts)


@pytest.mark.parametrize("fact", REFUSED_FACTS)
def test_confined_child_is_refused(armed: Armed, fact: str) -> None:
    """Sockets, fork, threads, exec, signals and file writes all fail inside a confined child."""
    if not armed.check.layers["seccomp"]["in_force"]:
        pytest.skip("seccomp is not in force on this host")
    assert armed.check.facts[fact].startswith("refused"), armed.check.facts


def test_seccomp_answers_eperm_not_death(armed: Armed) -> None:
    """Refused syscalls fail with EPERM, so code sees a plain error and the child lives to report it."""
    if not armed.check.layers["seccomp"]["in_force"]:
        pytest.skip("seccomp is not in force on this host")
    assert armed.check.facts["socket_inet"] == "refused: PermissionError errno 1"
    assert armed.check.facts["exec"] == "refused: PermissionError errno 1"
    assert armed.check.facts["seccomp_mode"] == 2
    assert armed.check.facts["no_new_privs"] == 1


def test_confined_child_reads_no_file(armed: Armed) -> None:
    """Landlock refuses every open: neither a world-readable file nor the root-only canary can be read."""
    if not armed.check.layers["landlock"]["in_force"]:
        pytest.skip("Landlock is not in force on this host")
    reads = armed.check.facts["read"]
    assert reads["/etc/passwd"].startswith("refused")
    assert reads[str(armed.secret_file)].startswith("refused")


def test_confined_child_is_nobody_without_network(armed: Armed) -> None:
    """As root, the child drops to nobody with no groups, in a network namespace holding only lo."""
    if os.geteuid() != 0:
        pytest.skip("only root can drop to nobody and make a network namespace")
    assert (armed.check.facts["uid"], armed.check.facts["gid"], armed.check.facts["groups"]) == (65534, 65534, [])
    assert armed.check.layers["network"] == {"in_force": True, "detail": "own network namespace, interfaces: lo"}


def test_confined_child_has_its_rlimits(armed: Armed) -> None:
    """The confined child has its rlimits: its CPU and memory, no writes, processes or core dumps, 16 open files."""
    rlimits = armed.check.facts["rlimits"]
    assert rlimits["RLIMIT_CPU"] == [1, 2]
    assert rlimits["RLIMIT_AS"] == [LIMITS.memory_bytes] * 2
    assert rlimits["RLIMIT_FSIZE"] == rlimits["RLIMIT_NPROC"] == rlimits["RLIMIT_CORE"] == [0, 0]
    assert rlimits["RLIMIT_NOFILE"] == [16, 16]


def _generator() -> Iterator[int]:
    yield 1


@pytest.mark.parametrize(
    ("target", "name"),
    [
        (on_request, "__globals__"),
        (on_request, "__closure__"),
        (on_request, "__code__"),
        (restricted.BeingCallError, "__subclasses__"),
        (restricted.BeingCallError, "mro"),
        ("text", "format"),
        ("text", "format_map"),
        (str, "format"),
        (_generator(), "gi_frame"),
        (_generator(), "gi_code"),
        (_generator(), "gi_yieldfrom"),
        (sys._getframe(), "f_back"),
        (sys._getframe(), "f_lineno"),
        (types, "path"),
        ((lambda: 0).__code__, "co_consts"),
    ],
)
def test_attribute_guard_refuses_at_run_time(target: Any, name: str) -> None:
    """The _getattr_ guard refuses interpreter internals itself, behind RestrictedPython's compile-time check."""
    with pytest.raises(AttributeError):
        restricted.guarded_getattr(target, name)


def test_augmented_assignment_goes_through_the_read_and_write_guards() -> None:
    """a.b += x and a[k] += x call _getattr_ / _getitem_ to read and _write_ to store, once each, in Python's order."""
    calls: list[str] = []

    class Box:
        b = 1

    box, items = Box(), {"k": 1}

    def record(name: str, value: Any) -> Any:
        calls.append(name)
        return value

    namespace = {
        "__builtins__": {},
        "_getattr_": lambda obj, name: record(f"_getattr_ {name}", getattr(obj, name)),
        "_getitem_": lambda obj, key: record(f"_getitem_ {key}", obj[key]),
        "_write_": lambda obj: record(f"_write_ {type(obj).__name__}", obj),
        "_inplacevar_": lambda op, old, value: record(f"_inplacevar_ {op}", restricted.inplace_var(op, old, value)),
        "box": lambda: record("box", box),
        "items": lambda: record("items", items),
        "key": lambda: record("key", "k"),
        "value": lambda: record("value", 2),
    }
    exec(restricted.being_compile("box().b += value()\nitems()[key()] -= value()\n"), namespace)
    assert (box.b, items) == (3, {"k": -1})
    assert calls == [
        "box",
        "_getattr_ b",
        "value",
        "_inplacevar_ +=",
        "_write_ Box",
        "items",
        "key",
        "_getitem_ k",
        "value",
        "_inplacevar_ -=",
        "_write_ dict",
    ]


def test_facades_are_not_modules() -> None:
    """import gives objects holding chosen functions only; other names are an ImportError."""
    importer = facades.importer_build(facades.facades_build())
    json_facade = importer("json", None, None, ("dumps",), 0)
    assert isinstance(json_facade, facades.Facade)
    assert not isinstance(json_facade, types.ModuleType)
    assert dir(json_facade) == ["JSONDecodeError", "dumps", "loads"]
    with pytest.raises(ImportError):
        importer("json", None, None, ("codecs",), 0)
    with pytest.raises(AttributeError):
        json_facade.codecs  # noqa: B018
    with pytest.raises(AttributeError):
        json_facade.dumps = None


# The worker's side of the protocol against a fake child: a real process to kill, a socket to write.


@dataclass
class FakeChild:
    child: Child
    theirs: socket.socket
    printed: mmap.mmap  # the child's view of the output memory, writable
    process: subprocess.Popen[bytes]
    status_write: int

    def write(self, *frames: bytes) -> None:
        for frame in frames:
            self.theirs.sendall(frame)


@pytest.fixture
def fake() -> Iterator[FakeChild]:
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    ours, theirs = socket.socketpair()
    status_read, status_write = os.pipe()
    memory = output_memory(4096)
    printed, worker_view = mmap.mmap(memory, 0), mmap.mmap(memory, 0, prot=mmap.PROT_READ)
    os.close(memory)
    child = Child(
        pid=process.pid, pidfd=os.pidfd_open(process.pid), sock=ours, status_fd=status_read, output=worker_view
    )
    fake = FakeChild(child=child, theirs=theirs, printed=printed, process=process, status_write=status_write)
    try:
        yield fake
    finally:
        child.close()
        printed.close()
        theirs.close()
        os.close(status_write)
        process.wait(timeout=10)


# A child's first two frames: ready once confined, started once it holds its job.
READY = frame_encode({"op": "ready", "layers": {"rlimits": True, "seccomp": True}}) + frame_encode({"op": "started"})
PROTOCOL_LIMITS = SandboxLimits(wall_seconds=5, result_bytes=1000)


def raw(body: bytes) -> bytes:
    return HEADER.pack(len(body)) + body


def converse(fake: FakeChild, limits: SandboxLimits = PROTOCOL_LIMITS) -> RunResult:
    return Run(fake.child, limits, on_request, time.monotonic()).converse(job_encode(ALIVE))


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([READY, raw(b"nope!")], "a frame is not JSON"),
        ([READY, raw(b"\xff\xfe")], "a frame is not JSON"),
        ([READY, raw(b"[" * 100000)], "a frame is not JSON"),
        ([READY, HEADER.pack(PROTOCOL_LIMITS.frame_bytes + 1)], "exceeds the limit"),
        ([READY, frame_encode([1, 2])], "a frame holds a list"),
        ([READY, raw(b'{"op":"output","data":NaN}')], "NaN is not JSON"),
        ([READY, raw(b'{"op":"done","ok":true,"result":1e400}')], "1e400 is not a finite number"),
        ([READY, raw(b'{"op":"execution","target":"x","args":[-1e999],"kwargs":{}}')], "-1e999 is not a finite"),
        ([READY, frame_encode({"op": "shell", "command": "id"})], "unexpected frame 'shell'"),
        ([READY, frame_encode({"op": "output", "data": "x"})], "unexpected frame 'output'"),
        ([frame_encode({"op": "done", "ok": True, "result": 1})], "the first frame is not ready"),
        ([READY, frame_encode({"op": "done", "ok": True})], "a done frame without a result"),
        ([READY, frame_encode({"op": "done", "ok": False, "error": "x"})], "a done frame without a result"),
        ([READY, frame_encode({"op": "done", "ok": False, "error": {"type": 1}})], "field 'type' is not a str"),
        (
            [READY, frame_encode({"op": "execution", "target": "x", "args": [], "kwargs": {}, "fd": 3})],
            "unexpected fields",
        ),
        ([READY, frame_encode({"op": "execution", "target": 1, "args": [], "kwargs": {}})], "field 'target'"),
        (
            [
                READY,
                frame_encode(
                    {"op": "summon", "name": "x", "source": None, "type": None, "attributes": {}, "tags": [1]}
                ),
            ],
            "summon tags must be strings",
        ),
        ([READY, frame_encode({"op": "execution", "target": "x", "args": ["a" * 2000], "kwargs": {}})], "request of 2"),
    ],
)
def test_hostile_frames_fail_the_run_and_kill_the_child(fake: FakeChild, frames: list[bytes], message: str) -> None:
    """Anything but a well-formed frame of the protocol is a ProtocolError, and the child is killed."""
    fake.write(*frames)
    result = converse(fake)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "ProtocolError"
    assert message in result.error["message"]
    assert fake.process.wait(timeout=5) == -signal.SIGKILL


def test_silent_child_is_killed_at_the_wall_clock(fake: FakeChild) -> None:
    """A child that says it is ready and then nothing more is killed at the wall clock, and the run times out."""
    fake.write(READY)
    result = converse(fake, SandboxLimits(wall_seconds=0.3))
    assert result.status == RunStatus.TIMEOUT
    assert fake.process.wait(timeout=5) == -signal.SIGKILL


def test_oversized_result_from_a_child_fails(fake: FakeChild) -> None:
    """The worker measures a result again: a child that lies about its size does not get it through."""
    fake.write(READY, frame_encode({"op": "done", "ok": True, "result": "x" * 5000, "truncated": False}))
    result = converse(fake)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "ResultTooLarge"


def test_hostile_output_is_cleaned_and_capped(fake: FakeChild) -> None:
    """Output with NUL, bytes that are not UTF-8 and more than output_bytes, under a header that claims more
    than the memory holds, is read within the memory, cut and made storable."""
    flood = b"a\x00b\xed\xa0\x80" + b"z" * 5000
    OUTPUT_HEADER.pack_into(fake.printed, 0, 2**32 - 1, 0)
    fake.printed[OUTPUT_HEADER.size : OUTPUT_HEADER.size + 4096] = flood[:4096]
    fake.write(READY, frame_encode({"op": "done", "ok": True, "result": 1}))
    result = converse(fake, SandboxLimits(output_bytes=100))
    assert result.status == RunStatus.SUCCEEDED
    assert result.output.startswith("a\ufffdb\ufffd\ufffd\ufffdz")
    assert len(result.output.encode()) == 100
    assert result.output_truncated


def test_strict_run_is_rejected_when_the_child_lacks_a_layer(fake: FakeChild) -> None:
    """In strict mode, a child reporting a layer not in force never gets the job."""
    fake.write(frame_encode({"op": "ready", "layers": {"rlimits": True, "seccomp": False}}))
    result = converse(fake, SandboxLimits(strict=True))
    assert result.status == RunStatus.REJECTED
    assert result.error is not None
    assert result.error["message"] == "strict sandbox: refusing to run without these layers in force: seccomp"
    fake.theirs.setblocking(False)
    with pytest.raises(BlockingIOError):
        fake.theirs.recv(1)


@pytest.mark.parametrize("frames", [[], [READY[: len(READY) // 2]], [READY.split(frame_encode({"op": "started"}))[0]]])
def test_child_gone_before_it_holds_its_job_is_stillborn(fake: FakeChild, frames: list[bytes]) -> None:
    """Nothing of the being ran, so the run is not judged by it: Sandbox.run asks the zygote for another child."""
    fake.write(*frames)
    fake.theirs.close()
    with pytest.raises(Stillborn):
        converse(fake)


def test_child_that_skips_the_job_acknowledgement_breaks_protocol(fake: FakeChild) -> None:
    """A child that answers done without first acknowledging its job fails the run as a broken protocol."""
    fake.write(READY.split(frame_encode({"op": "started"}))[0], frame_encode({"op": "done", "ok": True, "result": 1}))
    result = converse(fake)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["message"] == "the sandbox child broke protocol: the child did not acknowledge its job"


@pytest.mark.parametrize(
    ("status", "outcome", "message"),
    [
        (signal.SIGXCPU, RunStatus.TIMEOUT, "CPU time limit of 5 s exceeded"),
        (signal.SIGSEGV, RunStatus.KILLED, "the sandbox process was killed by SIGSEGV"),
        (3 << 8, RunStatus.KILLED, "the sandbox process exited early (code 3)"),
        (None, RunStatus.KILLED, "the sandbox process vanished"),
    ],
)
def test_child_that_dies_is_reported_by_its_wait_status(
    fake: FakeChild, status: int | None, outcome: RunStatus, message: str
) -> None:
    """A child that closes its channel once it holds its job is judged by the wait status the zygote reports."""
    fake.write(READY)
    fake.theirs.shutdown(socket.SHUT_WR)  # the job still fits in the socket's buffer
    if status is not None:
        os.write(fake.status_write, HEADER.pack(status))
    result = converse(fake, SandboxLimits())
    assert (result.status, result.error and result.error["message"]) == (outcome, message)


# --- a host that lacks a layer -----------------------------------------------------------------------

# Root without CAP_SYS_ADMIN: the zygote cannot make a network namespace, every other layer still holds.
WITHOUT_SYS_ADMIN = ["setpriv", "--bounding-set=-sys_admin", "--inh-caps=-sys_admin"]
STRICT_AND_LAX = """
import json
from beings.runtime.sandbox import Sandbox, SandboxLimits
sandbox = Sandbox()
try:
    outcomes = [sandbox.run({"source": "def run():\\n    return 1\\n"}, SandboxLimits(strict=strict))
                for strict in (True, False)]
finally:
    sandbox.close()
print(json.dumps([outcome.as_dict() for outcome in outcomes]))
"""


def test_strict_sandbox_refuses_to_run_on_a_host_missing_a_layer() -> None:
    """LUXOS_SANDBOX_STRICT's promise: no being code runs with less; without strict it runs and says what is missing."""
    completed = subprocess.run(
        [*WITHOUT_SYS_ADMIN, sys.executable, "-c", STRICT_AND_LAX],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    strict, lax = json.loads(completed.stdout)
    assert strict["status"] == "rejected"
    assert strict["result"] is None
    assert strict["error"]["message"] == "strict sandbox: refusing to run without these layers in force: network"
    assert lax["status"] == "succeeded"
    assert lax["result"] == 1
    assert lax["layers"] == {"rlimits": True, "network": False, "user": True, "landlock": True, "seccomp": True}


# Root without any capability: the children cannot drop to nobody and keep the worker's uid, as they do
# when the worker is not root; only seccomp stands between them and the zygote's limits and priority.
WITHOUT_CAPABILITIES = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]
CHECK = """
import json
from beings.runtime.sandbox import Sandbox
sandbox = Sandbox()
try:
    check = sandbox.check()
finally:
    sandbox.close()
print(json.dumps({"facts": check.facts, "layers": check.layers}))
"""


def test_a_child_with_the_workers_uid_cannot_touch_other_processes() -> None:
    """With the worker's uid (no root to drop from), a child may not read or lower the zygote's limits,
    renice it or pin its CPUs (the kernel would let it; seccomp refuses), and still sets its own."""
    completed = subprocess.run(
        [*WITHOUT_CAPABILITIES, sys.executable, "-c", CHECK],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    check = json.loads(completed.stdout)
    facts = check["facts"]
    assert check["layers"]["user"]["in_force"] is False
    assert facts["uid"] == os.geteuid()
    assert check["layers"]["seccomp"]["in_force"] is True
    for fact in ("prlimit_parent", "setpriority_parent", "affinity_parent", "kill_parent"):
        assert facts[fact] == "refused: PermissionError errno 1", (fact, facts[fact])
    assert facts["prlimit_self"] == facts["setpriority_self"] == "allowed"


@pytest.mark.parametrize(("strict", "code"), [("true", 1), ("false", 0)])
def test_sandbox_check_command_names_the_missing_layer(strict: str, code: int) -> None:
    """``manage.py sandbox check`` reports the network layer MISSING and, when strict, exits 1 saying so."""
    environment = {**os.environ, "LUXOS_SANDBOX_STRICT": strict}
    completed = subprocess.run(
        [*WITHOUT_SYS_ADMIN, sys.executable, "manage.py", "sandbox", "check"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == code, completed.stderr
    assert [line.split()[:2] for line in completed.stdout.splitlines()] == [
        ["rlimits", "in"],
        ["network", "MISSING"],
        ["user", "in"],
        ["landlock", "in"],
        ["seccomp", "in"],
    ]
    if strict == "true":
        assert "LUXOS_SANDBOX_STRICT is on and layers are missing: network" in completed.stderr
