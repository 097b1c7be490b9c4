"""The being sandbox's behaviour: results, output, errors, limits, capabilities, class beings, the zygote."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from beings.runtime.jobs import InvalidJob, RequestRefused, RunResult, RunStatus, SandboxLimits, job_encode
from beings.runtime.sandbox import Sandbox
from beings.runtime.zygote import forked_call

FAST = SandboxLimits(cpu_seconds=1, wall_seconds=5)
LAYERS = {"rlimits", "network", "user", "landlock", "seccomp"}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox()
    yield sandbox
    sandbox.close()


def run(sandbox: Sandbox, source: str, limits: SandboxLimits = FAST, on_request: Any = None, **job: Any) -> RunResult:
    return sandbox.run({"source": source, **job}, limits, on_request)


def test_function_result_and_output(sandbox: Sandbox) -> None:
    """A function being's JSON result comes back with what it printed, and the layers in force."""
    source = "def run(a, b=2):\n    print('adding', a, b)\n    return {'sum': a + b, 'items': [a, b]}\n"
    result = run(sandbox, source, args=[1], kwargs={"b": 5})
    assert result.status == RunStatus.SUCCEEDED
    assert result.result == {"sum": 6, "items": [1, 5]}
    assert result.output == "adding 1 5\n"
    assert result.error is None
    assert set(result.layers) == LAYERS
    assert 0 < result.duration < 5


def test_print_output_from_every_scope(sandbox: Sandbox) -> None:
    """print() in the module body, functions and methods lands in one output; printed reads a scope's own."""
    source = (
        "print('module')\n"
        "class Shouter:\n"
        "    def shout(self):\n"
        "        print('method', end='!')\n"
        "        return printed\n"
        "def run():\n"
        "    print('function', 1, sep='-')\n"
        "    return Shouter().shout()\n"
    )
    result = run(sandbox, source)
    assert result.status == RunStatus.SUCCEEDED
    assert result.output == "module\nfunction-1\nmethod!"
    assert result.result == "method!"


def test_error_traceback_has_only_the_beings_frames(sandbox: Sandbox) -> None:
    """An exception reports type, message and a traceback of <being> frames with their source lines."""
    source = "def inner(x):\n    return 10 / x\n\ndef run():\n    return inner(0)\n"
    result = run(sandbox, source)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "ZeroDivisionError"
    assert result.error["message"] == "division by zero"
    assert result.error["traceback"] == (
        "Traceback (most recent call last):\n"
        '  File "<being>", line 5, in run\n'
        "    return inner(0)\n"
        '  File "<being>", line 2, in inner\n'
        "    return 10 / x\n"
        "ZeroDivisionError: division by zero"
    )


def test_error_inside_a_facade_shows_no_sandbox_path(sandbox: Sandbox) -> None:
    """An error raised in library code keeps only the being's frames: no path of the host."""
    result = run(sandbox, "import json\ndef run():\n    return json.loads('{nope')\n")
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "JSONDecodeError"
    assert "/" not in result.error["traceback"].replace("<being>", "")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("def run(:\n    pass\n", "SyntaxError"),
        ("def run():\n    return ().__class__\n", '"__class__" is an invalid attribute name'),
        ("def run():\n    _x = 1\n", '"_x" is an invalid variable name'),
    ],
)
def test_refused_source_is_a_syntax_error(sandbox: Sandbox, source: str, fragment: str) -> None:
    """Source that does not compile, or that RestrictedPython refuses, fails as a SyntaxError naming the line."""
    result = run(sandbox, source)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "SyntaxError"
    assert fragment in result.error["message"]
    assert "Line " in result.error["message"]


def test_cpu_bound_loop_times_out_by_the_cpu_limit(sandbox: Sandbox) -> None:
    """An infinite loop is stopped by RLIMIT_CPU well before the wall clock."""
    result = run(sandbox, "def run():\n    while True:\n        pass\n", SandboxLimits(cpu_seconds=1, wall_seconds=20))
    assert result.status == RunStatus.TIMEOUT
    assert result.error is not None
    assert result.error["message"] == "CPU time limit of 1 s exceeded"
    assert result.duration < 5


def test_blocked_run_times_out_by_the_wall_clock(sandbox: Sandbox) -> None:
    """A run waiting longer than the wall-clock limit (here on a slow capability) is killed."""
    released = threading.Event()

    def slow(request: dict[str, Any]) -> Any:
        released.wait(1.5)
        return None

    limits = SandboxLimits(cpu_seconds=5, wall_seconds=0.5)
    result = run(sandbox, "def run():\n    print('calling')\n    return execution('slow')\n", limits, slow)
    assert result.status == RunStatus.TIMEOUT
    assert result.error is not None
    assert result.error["message"] == "wall-clock limit of 0.5 s exceeded"
    assert result.output == "calling\n"


def test_output_printed_before_a_timeout_is_kept(sandbox: Sandbox) -> None:
    """What a being printed before it was killed is in the result."""
    result = run(sandbox, "def run():\n    print('started')\n    while True:\n        pass\n")
    assert result.status == RunStatus.TIMEOUT
    assert result.output == "started\n"


def test_memory_bomb_fails_with_memory_error(sandbox: Sandbox) -> None:
    """Allocating past the address-space limit fails cleanly, and the child still reports it."""
    source = "def run():\n    hoard = []\n    while True:\n        hoard.append('x' * 2**20)\n"
    result = run(sandbox, source)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "MemoryError"


def test_output_flood_is_capped(sandbox: Sandbox) -> None:
    """Output beyond output_bytes is cut and flagged; the run itself still succeeds."""
    limits = SandboxLimits(cpu_seconds=2, output_bytes=1000)
    source = "def run():\n    for i in range(100000):\n        print('é' * 50)\n    return 'done'\n"
    result = run(sandbox, source, limits)
    assert result.status == RunStatus.SUCCEEDED
    assert result.result == "done"
    assert result.output_truncated
    assert 900 < len(result.output.encode()) <= 1000


def test_result_too_large_fails(sandbox: Sandbox) -> None:
    """A result whose JSON exceeds result_bytes fails with ResultTooLarge."""
    result = run(sandbox, "def run():\n    return 'x' * 2000\n", SandboxLimits(result_bytes=1000))
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "ResultTooLarge"
    assert result.error["message"] == "result is 2002 bytes of JSON; the limit is 1000"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("{1, 2}", "Object of type set is not JSON serializable"),
        ("float('nan')", "Out of range float values are not JSON compliant"),
        ("run", "Object of type function is not JSON serializable"),
        ("{(1, 2): 3}", "keys must be str, int, float, bool or None, not tuple"),
    ],
)
def test_result_that_is_not_json_fails(sandbox: Sandbox, expression: str, reason: str) -> None:
    """A result that is not JSON fails with a message saying so."""
    result = run(sandbox, f"def run():\n    return {expression}\n")
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "ResultError"
    assert result.error["message"] == f"result is not JSON: {reason}"


def test_datetime_methods_that_import_in_c_work(sandbox: Sandbox) -> None:
    """strftime, timetuple and today import time from C through the being's __import__: they work all the same."""
    source = (
        "import datetime\n"
        "def run():\n"
        "    day = datetime.date(2024, 2, 3)\n"
        "    return [day.strftime('%d/%m/%Y'), datetime.datetime(2024, 2, 3, 4, 5).strftime('%H:%M'),\n"
        "            datetime.time(6, 7).strftime('%H.%M'), day.timetuple()[7], datetime.date.today().year > 2000]\n"
    )
    result = run(sandbox, source)
    assert result.error is None
    assert result.result == ["03/02/2024", "04:05", "06.07", 34, True]


def test_each_run_draws_its_own_random_numbers(sandbox: Sandbox) -> None:
    """Every run's generator is seeded afresh by the OS, and what a being's random.seed() does ends with its run."""
    source = (
        "import random\n"
        "def run(seed=None):\n"
        "    if seed is not None:\n"
        "        random.seed(seed)\n"
        "    return [random.getrandbits(64), random.randint(1, 6)]\n"
    )
    draws = [run(sandbox, source).result[0] for _ in range(4)]
    assert len(set(draws)) == 4
    seeded = run(sandbox, source, kwargs={"seed": 7}).result
    assert run(sandbox, source, kwargs={"seed": 7}).result == seeded
    assert run(sandbox, source).result[0] != seeded[0]


def test_self_snapshot_is_readable_and_returnable(sandbox: Sandbox) -> None:
    """self is the snapshot, read with [] and get(), frozen all the way down, and JSON when returned."""
    snapshot = {"name": "hello", "tags": ["a", "b"], "attributes": {"colour": "red"}}
    source = (
        "def run():\n"
        "    return {'name': self['name'], 'tags': list(self['tags']), 'colour': self.get('attributes')['colour'],"
        " 'whole': self, 'keys': sorted(self.keys())}\n"
    )
    result = run(sandbox, source, self=snapshot)
    assert result.status == RunStatus.SUCCEEDED
    assert result.result == {
        "name": "hello",
        "tags": ["a", "b"],
        "colour": "red",
        "whole": snapshot,
        "keys": ["attributes", "name", "tags"],
    }


def test_execution_and_summon_round_trip(sandbox: Sandbox) -> None:
    """Requests reach on_request as checked JSON and its return value comes back into the being."""
    seen: list[dict[str, Any]] = []

    def on_request(request: dict[str, Any]) -> Any:
        seen.append(request)
        if request["op"] == "execution":
            return {"double": request["args"][0] * 2}
        return "soul-of-" + request["name"]

    source = (
        "def run():\n"
        "    doubled = execution('math/double', 21, mode='fast')\n"
        "    soul = summon(name='child', source='def run():\\n    return 1\\n', type='function',"
        " attributes={'k': self['k']}, tags=['t'])\n"
        "    return [doubled, soul]\n"
    )
    result = run(sandbox, source, on_request=on_request, self={"k": [1]})
    assert result.status == RunStatus.SUCCEEDED
    assert result.result == [{"double": 42}, "soul-of-child"]
    assert (result.calls, result.summons) == (1, 1)
    assert seen == [
        {"op": "execution", "target": "math/double", "args": [21], "kwargs": {"mode": "fast"}},
        {
            "op": "summon",
            "name": "child",
            "source": "def run():\n    return 1\n",
            "type": "function",
            "attributes": {"k": [1]},
            "tags": ["t"],
        },
    ]


def test_refused_request_is_a_being_call_error(sandbox: Sandbox) -> None:
    """RequestRefused from on_request becomes a BeingCallError the being can catch or let fail the run."""

    def refuse(request: dict[str, Any]) -> Any:
        raise RequestRefused("PermissionDenied", f"you may not run {request['target']}")

    caught = (
        "def run():\n    try:\n        execution('secret')\n    except BeingCallError as error:\n"
        "        return [error.error_type, str(error)]\n"
    )
    result = run(sandbox, caught, on_request=refuse)
    assert result.result == ["PermissionDenied", "PermissionDenied: you may not run secret"]
    uncaught = run(sandbox, "def run():\n    return execution('secret')\n", on_request=refuse)
    assert uncaught.status == RunStatus.FAILED
    assert uncaught.error is not None
    assert uncaught.error["type"] == "BeingCallError"
    assert uncaught.error["message"] == "PermissionDenied: you may not run secret"


def test_capabilities_without_a_handler_are_unavailable(sandbox: Sandbox) -> None:
    """With no on_request, execution() raises in the being instead of hanging."""
    result = run(sandbox, "def run():\n    return execution('x')\n")
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["message"] == "Unavailable: execution() is not available here"


def test_callback_bug_aborts_the_run_and_propagates(sandbox: Sandbox) -> None:
    """An exception other than RequestRefused is the worker's bug: it propagates, and the sandbox stays usable."""

    def broken(request: dict[str, Any]) -> Any:
        raise KeyError("worker bug")

    with pytest.raises(KeyError, match="worker bug"):
        run(sandbox, "def run():\n    return execution('x')\n", on_request=broken)
    assert run(sandbox, "def run():\n    return 1\n").result == 1


def test_call_budget_is_enforced(sandbox: Sandbox) -> None:
    """Past the call budget, execution() raises CallBudgetExceeded without reaching on_request."""
    reached: list[str] = []

    def on_request(request: dict[str, Any]) -> Any:
        reached.append(request["target"])
        return len(reached)

    source = "def run():\n    for i in range(10):\n        execution('b' + str(i))\n"
    result = run(sandbox, source, SandboxLimits(calls=3), on_request)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["message"] == "CallBudgetExceeded: a run may make at most 3 execution() calls"
    assert reached == ["b0", "b1", "b2"]
    assert result.calls == 4


def test_summon_quota_is_enforced(sandbox: Sandbox) -> None:
    """Past the summon quota, summon() raises SummonQuotaExceeded; the being may carry on."""
    source = (
        "def run():\n"
        "    souls = []\n"
        "    for i in range(4):\n"
        "        try:\n"
        "            souls.append(summon(name='s' + str(i)))\n"
        "        except BeingCallError as error:\n"
        "            souls.append(error.error_type)\n"
        "    return souls\n"
    )
    result = run(sandbox, source, SandboxLimits(summons=2), lambda request: request["name"])
    assert result.result == ["s0", "s1", "SummonQuotaExceeded", "SummonQuotaExceeded"]
    assert result.summons == 4


COUNTER = """
class Counter:
    def __init__(self, attributes):
        self.start = attributes.get("start", 0)
        self.log = []

    def run(self, step=1, times=1):
        for i in range(times):
            self.start = self.start + step
            self.log.append(self.start)
        return self.log

class Other:
    def run(self):
        return "other"
"""


def test_class_being_gets_attributes_and_runs_its_entrypoint(sandbox: Sandbox) -> None:
    """A class being is built with Cls(attributes=...) and its entrypoint method called with the kwargs."""
    attributes = {"start": 10, "arguments": {"step": 5, "times": 2}}
    result = run(sandbox, COUNTER, kind="class", attributes=attributes, kwargs={"times": 3})
    assert result.status == RunStatus.SUCCEEDED
    assert result.result == [15, 20, 25]


def test_class_being_named_by_class_name(sandbox: Sandbox) -> None:
    """class_name picks one of several classes; a class without __init__ is built with Cls()."""
    result = run(sandbox, COUNTER, kind="class", class_name="Other")
    assert result.result == "other"


TALLY = """
class Tally:
    def __init__(self, attributes):
        self.count = attributes.get("start", 0)
        self.items = {"apple": 0, "pear": 0}
        self.words = ["a"]
        self.stats = Stats()

    def run(self, key="apple", times=1):
        for i in range(times):
            self.count += 1
            self.items[key] += 2
            self.stats.total += 10
        self.words += ["b"]
        self.count *= 10
        return {"count": self.count, "items": self.items, "words": self.words, "total": self.stats.total}

class Stats:
    def __init__(self):
        self.total = 0
"""


def test_class_being_keeps_state_with_augmented_assignment(sandbox: Sandbox) -> None:
    """self.count += 1, self.items[key] += 2 and the like update a class being's own objects."""
    result = run(sandbox, TALLY, kind="class", attributes={"start": 5}, kwargs={"key": "pear", "times": 3})
    assert result.error is None
    assert result.result == {"count": 80, "items": {"apple": 0, "pear": 6}, "words": ["a", "b"], "total": 30}


def test_augmented_assignment_of_items_and_slices(sandbox: Sandbox) -> None:
    """Items of dicts and lists (nested, sliced, at module level too) take every augmented operator."""
    source = (
        "counts = {'x': 1}\n"
        "counts['x'] += 1\n"
        "def run():\n"
        "    d = {'x': 'a', 'n': {'m': [1, 2]}}\n"
        "    d['x'] += 's'\n"
        "    d['n']['m'][1] **= 5\n"
        "    numbers = [1, 2, 3]\n"
        "    numbers[0:2] += [9]\n"
        "    numbers[-1] //= 2\n"
        "    flags = {'f': 0b1100}\n"
        "    flags['f'] &= 0b0110\n"
        "    flags['f'] |= 1\n"
        "    return [d, numbers, flags, counts]\n"
    )
    result = run(sandbox, source)
    assert result.error is None
    assert result.result == [{"x": "as", "n": {"m": [1, 32]}}, [1, 2, 9, 1], {"f": 5}, {"x": 2}]


def test_augmented_assignment_evaluates_its_target_once_in_pythons_order(sandbox: Sandbox) -> None:
    """The target's object and key are evaluated once, and the old value is read before the right side runs."""
    source = (
        "class Box:\n"
        "    def __init__(self):\n"
        "        self.value = 1\n"
        "        self.seen = []\n"
        "    def bump(self):\n"
        "        self.seen.append('value')\n"
        "        self.value = 100\n"
        "        return 1\n"
        "box = Box()\n"
        "store = {'k': 1}\n"
        "def target():\n"
        "    box.seen.append('target')\n"
        "    return box\n"
        "def key():\n"
        "    box.seen.append('key')\n"
        "    return 'k'\n"
        "def run():\n"
        "    target().value += box.bump()\n"
        "    store[key()] += 1\n"
        "    return [box.value, store, box.seen]\n"
    )
    result = run(sandbox, source)
    assert result.error is None
    assert result.result == [2, {"k": 2}, ["target", "value", "key"]]


@pytest.mark.parametrize(
    ("job", "message"),
    [
        ({"kind": "class", "class_name": "Missing"}, "the being defines no a class named 'Missing'"),
        ({"kind": "class", "entrypoint": "absent"}, "class Counter defines no function 'absent'"),
        ({"kind": "function"}, "the being defines no function 'run'"),
    ],
)
def test_missing_entrypoint_fails(sandbox: Sandbox, job: dict[str, Any], message: str) -> None:
    """A being without the class or function to call fails with EntrypointError."""
    result = run(sandbox, COUNTER, **job)
    assert result.status == RunStatus.FAILED
    assert result.error == {"type": "EntrypointError", "message": message, "traceback": f"EntrypointError: {message}"}


@pytest.mark.parametrize(
    ("arguments", "kwargs", "expected"),
    [
        ({}, {}, [1, 2]),
        ({"a": 10}, {}, [10, 2]),
        ({"a": 10, "b": 20}, {"b": 30}, [10, 30]),
        ({}, {"a": 7}, [7, 2]),
    ],
)
def test_argument_defaults_are_overridden_by_kwargs(
    sandbox: Sandbox, arguments: dict[str, Any], kwargs: dict[str, Any], expected: list[int]
) -> None:
    """attributes["arguments"] supplies keyword defaults; the call's kwargs win."""
    result = run(sandbox, "def run(a=1, b=2):\n    return [a, b]\n", attributes={"arguments": arguments}, kwargs=kwargs)
    assert result.result == expected


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "job",
    [
        {"source": 1},
        {"source": "x", "kind": "script"},
        {"source": "x", "entrypoint": "_private"},
        {"source": "x", "entrypoint": "not an identifier"},
        {"source": "x", "args": "nope"},
        {"source": "x", "attributes": {"arguments": [1]}},
        {"source": "x", "kwargs": {"k": object()}},
        {"source": "x", "kwargs": {"k": _nested(100000)}},
    ],
)
def test_malformed_job_is_refused_before_anything_runs(sandbox: Sandbox, job: dict[str, Any]) -> None:
    """A malformed job is the caller's bug: InvalidJob."""
    with pytest.raises(InvalidJob):
        sandbox.run(job)


def test_zygote_is_restarted_after_being_killed() -> None:
    """start() boots the zygote ahead of the first run; a killed zygote is replaced on the next run."""
    sandbox = Sandbox()
    try:
        assert sandbox.zygote_pid is None
        sandbox.start()
        first = sandbox.zygote_pid
        assert sandbox.run({"source": "def run():\n    return 1\n"}).result == 1
        assert sandbox.zygote_pid == first
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _alive(first) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sandbox.run({"source": "def run():\n    return 2\n"}).result == 2
        assert sandbox.zygote_pid not in (None, first)
    finally:
        sandbox.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_concurrent_runs_from_threads(sandbox: Sandbox) -> None:
    """Threads share one Sandbox: each run gets its own child and its own result."""
    results: dict[int, list[Any]] = {}

    def worker(number: int) -> None:
        results[number] = [
            run(sandbox, "def run(n):\n    print(n)\n    return n * n\n", args=[number * 10 + i]) for i in range(5)
        ]

    threads = [threading.Thread(target=worker, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for number in range(8):
        assert [r.result for r in results[number]] == [(number * 10 + i) ** 2 for i in range(5)]
        assert [r.output for r in results[number]] == [f"{number * 10 + i}\n" for i in range(5)]


def test_limits_from_settings_objects_and_environments() -> None:
    """LUXOS_SANDBOX_* come from a settings object or a mapping of strings; missing ones keep defaults."""
    settings = SimpleNamespace(LUXOS_SANDBOX_CPU_SECONDS=2, LUXOS_SANDBOX_STRICT=True, LUXOS_SANDBOX_CALLS=7)
    assert SandboxLimits.from_settings(settings) == SandboxLimits(cpu_seconds=2, strict=True, calls=7)
    environ = {
        "LUXOS_SANDBOX_WALL_SECONDS": "2.5",
        "LUXOS_SANDBOX_MEMORY_BYTES": str(128 * 2**20),
        "LUXOS_SANDBOX_STRICT": "false",
        "LUXOS_SANDBOX_SUMMONS": "",
    }
    assert SandboxLimits.from_settings(environ) == SandboxLimits(wall_seconds=2.5, memory_bytes=128 * 2**20)
    assert SandboxLimits.from_settings({}) == SandboxLimits()


@pytest.mark.parametrize("bad", [{"cpu_seconds": 0}, {"wall_seconds": -1}, {"calls": -1}, {"memory_bytes": 2**20}])
def test_limits_refuse_nonsense(bad: dict[str, Any]) -> None:
    """Limits that make no sense (no CPU time, negative wall time or calls, too little memory) are refused."""
    with pytest.raises(ValueError):
        SandboxLimits(**bad)


def test_layers_report_names_every_layer(sandbox: Sandbox) -> None:
    """layers_report() gives every layer with a detail; as root on a recent kernel all are in force."""
    report = sandbox.layers_report()
    assert set(report) == LAYERS
    assert all(isinstance(layer["detail"], str) and layer["detail"] for layer in report.values())
    if os.geteuid() == 0:
        assert all(layer["in_force"] for layer in report.values()), report


def test_strict_run_proceeds_when_every_layer_is_in_force(sandbox: Sandbox) -> None:
    """Strict mode runs normally where every layer holds."""
    if not all(layer["in_force"] for layer in sandbox.layers_report().values()):
        pytest.skip("a layer is missing on this host; see test_sandbox_security for the refusal")
    result = run(sandbox, "def run():\n    return 'strict'\n", SandboxLimits(strict=True))
    assert result.result == "strict"


def test_each_run_gets_the_limits_it_asked_for() -> None:
    """The zygote keeps a spare child confined for the last run's limits: a run with other limits gets its own."""
    sandbox = Sandbox()
    roomy = SandboxLimits(cpu_seconds=2, memory_bytes=768 * 2**20)
    tight = SandboxLimits(cpu_seconds=2, memory_bytes=160 * 2**20)
    source = "def run():\n    block = 'x' * (256 * 2**20)\n    return len(block)\n"
    try:
        outcomes = [sandbox.run({"source": source}, limits) for limits in (roomy, roomy, tight, tight, roomy)]
    finally:
        sandbox.close()
    assert [outcome.status for outcome in outcomes] == [
        RunStatus.SUCCEEDED,
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.FAILED,
        RunStatus.SUCCEEDED,
    ]
    assert {outcome.error["type"] for outcome in outcomes if outcome.error} == {"MemoryError"}


def test_a_spare_child_that_died_is_never_handed_out() -> None:
    """Kill the child the zygote holds ready for the next run: the next run still gets a live one."""
    sandbox = Sandbox()
    try:
        assert sandbox.run({"source": "def run():\n    return 1\n"}).result == 1
        zygote = sandbox.zygote_pid
        assert zygote is not None
        spares = _children_settled(zygote)
        assert len(spares) == 1, "one confined child waits for the next run"
        os.kill(spares[0], signal.SIGKILL)
        assert [sandbox.run({"source": "def run():\n    return 2\n"}).result for _ in range(3)] == [2, 2, 2]
        assert len(_children_settled(zygote)) == 1
    finally:
        sandbox.close()


def _children_settled(pid: int) -> list[int]:
    """The live children of ``pid`` once the last run's child has gone (or after 5 s, whatever is there)."""
    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{pid}/task/{pid}/children") as children:
            found = [int(child) for child in children.read().split() if _alive(int(child))]
        if len(found) == 1 or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


PRINTS_THEN = "def run():\n    print('first')\n    print('second', end='!')\n{rest}"


@pytest.mark.parametrize(
    ("limits", "rest", "status"),
    [
        (SandboxLimits(cpu_seconds=1, wall_seconds=20), "    while True:\n        pass\n", RunStatus.TIMEOUT),
        (SandboxLimits(cpu_seconds=5, wall_seconds=0.5), "    while True:\n        pass\n", RunStatus.TIMEOUT),
        (FAST, "    hoard = []\n    while True:\n        hoard.append('x' * 2**20)\n", RunStatus.FAILED),
    ],
    ids=["cpu", "wall-clock", "memory"],
)
def test_everything_printed_before_a_kill_is_kept(
    sandbox: Sandbox, limits: SandboxLimits, rest: str, status: RunStatus
) -> None:
    """Lines printed in quick succession just before the child is killed are all in the result, the last included."""
    result = run(sandbox, PRINTS_THEN.format(rest=rest), limits)
    assert result.status == status
    assert result.output == "first\nsecond!"


def test_a_job_larger_than_the_memory_limit_is_named_as_such(sandbox: Sandbox) -> None:
    """Inputs that cannot fit in the child's memory fail the run saying so, not as an unavailable sandbox."""
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=20, memory_bytes=64 * 2**20)
    job = {"source": "def run(blob):\n    return len(blob)\n", "kwargs": {"blob": "x" * 64 * 2**20}}
    result = sandbox.run(job, limits)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert result.error["type"] == "JobTooLarge"
    size = len(job_encode(job)) - 4
    assert result.error["message"] == (
        f"the job's inputs ({size} bytes of JSON) are larger than the sandbox memory limit of 64 MiB"
    )
    assert run(sandbox, "def run():\n    return 'alive'\n", limits).result == "alive"


def _zygote_children(zygote: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == zygote and fields[0] != "Z":
                found.add(int(entry))
    return found


def test_the_spare_is_forked_once_a_run_is_over_and_serves_the_next() -> None:
    """While a run goes on, its child is the zygote's only one (no spare takes a CPU from it); once it is
    over a spare waits, and the next run with the same limits is that spare."""
    sandbox = Sandbox()
    try:
        sandbox.start()
        zygote = sandbox.zygote_pid
        assert zygote is not None
        during: list[set[int]] = []

        def look(request: dict[str, Any]) -> Any:
            time.sleep(0.2)  # time for a spare to be forked, were it forked during the run
            during.append(_zygote_children(zygote))
            return None

        assert run(sandbox, "def run():\n    return execution('x')\n", FAST, look).status == RunStatus.SUCCEEDED
        assert len(during[0]) == 1
        deadline = time.monotonic() + 5
        while not (_zygote_children(zygote) - during[0]) and time.monotonic() < deadline:
            time.sleep(0.01)
        (spare,) = _zygote_children(zygote) - during[0]
        assert run(sandbox, "def run():\n    return execution('x')\n", FAST, look).status == RunStatus.SUCCEEDED
        assert during[1] == {spare}
    finally:
        sandbox.close()


# A module of the child's own, which nothing else in the test session imports.
PROBE_MODULE = f"luxos_forked_probe_{os.getpid()}"


def _probe_value() -> dict[str, Any]:
    import importlib
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        Path(directory, f"{PROBE_MODULE}.py").write_text("VALUE = 0.5\n")
        sys.path.insert(0, directory)
        module = importlib.import_module(PROBE_MODULE)
    return {"value": module.VALUE, "pid": os.getpid()}


def _broken() -> dict[str, Any]:
    raise RuntimeError("broken on purpose")


def test_a_forked_call_returns_its_result_and_keeps_its_imports() -> None:
    """What the zygote has a child compute (the seccomp filter) comes back as JSON; what the child imported
    to compute it is not loaded in the caller, and a child that fails says so."""
    result = forked_call(_probe_value)
    assert result["value"] == 0.5
    assert result["pid"] != os.getpid()
    assert PROBE_MODULE not in sys.modules
    failed = forked_call(_broken)
    assert list(failed) == ["error"]
    assert failed["error"].startswith("_broken failed in its process")
