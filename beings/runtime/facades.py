"""What a being may import and hold: facades of vetted modules, frozen snapshots, JSON that knows them."""

from __future__ import annotations

import collections
import datetime
import functools
import itertools
import json
import math
import random
import re
import statistics
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any


class FrozenDict(Mapping[str, Any]):
    """A read-only mapping whose values are frozen too (dicts become FrozenDicts, lists tuples)."""

    __slots__ = ("_items",)
    _items: dict[str, Any]

    def __init__(self, items: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_items", {key: freeze(value) for key, value in items.items()})

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return repr(self._items)

    def __setattr__(self, name: str, value: Any) -> None:
        raise TypeError("self is a read-only snapshot")

    def thaw(self) -> dict[str, Any]:
        """A plain dict copy, for JSON."""
        return dict(self._items)


def freeze(value: Any) -> Any:
    """A deep-frozen copy of a JSON value."""
    if isinstance(value, dict):
        return FrozenDict(value)
    if isinstance(value, list | tuple):
        return tuple(freeze(item) for item in value)
    return value


def json_default(value: Any) -> Any:
    """Let FrozenDicts (self and its parts) be returned or passed on as JSON objects."""
    if isinstance(value, FrozenDict):
        return value.thaw()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class Facade:
    """What ``import name`` gives a being: chosen members of a module, read-only, and nothing else."""

    __slots__ = ("_members", "_name")

    def __init__(self, name: str, members: Mapping[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", dict(members))

    def __getattr__(self, attribute: str) -> Any:
        try:
            return self._members[attribute]
        except KeyError:
            raise AttributeError(f"module {self._name!r} has no attribute {attribute!r} in a being") from None

    def __setattr__(self, attribute: str, value: Any) -> None:
        raise AttributeError(f"module {self._name!r} is read-only")

    def __delattr__(self, attribute: str) -> None:
        raise AttributeError(f"module {self._name!r} is read-only")

    def __contains__(self, attribute: str) -> bool:
        return attribute in self._members

    def __dir__(self) -> list[str]:
        return sorted(self._members)

    def __repr__(self) -> str:
        return f"<module {self._name!r} (being facade)>"


def _public(module: types.ModuleType, names: tuple[str, ...] = ()) -> dict[str, Any]:
    chosen = names or tuple(name for name in dir(module) if not name.startswith("_"))
    return {name: getattr(module, name) for name in chosen}


def _json_dumps(value: Any, **options: Any) -> str:
    options.setdefault("default", json_default)
    return json.dumps(value, **options)


@functools.cache
def facades_build() -> dict[str, Facade]:
    """The facades, built once per process: in the zygote, before it forks, so that a child holds its own copy
    without the cost of building one (a being cannot change a facade, and a child's copy ends with it).

    random is the module's generator, which the random module reseeds from the OS in every forked child.
    """
    members: dict[str, dict[str, Any]] = {
        "math": _public(math),
        "json": {"dumps": _json_dumps, "loads": json.loads, "JSONDecodeError": json.JSONDecodeError},
        "re": _public(
            re,
            (
                "compile",
                "escape",
                "findall",
                "finditer",
                "fullmatch",
                "match",
                "search",
                "split",
                "sub",
                "subn",
                "error",
                "A",
                "ASCII",
                "I",
                "IGNORECASE",
                "M",
                "MULTILINE",
                "S",
                "DOTALL",
                "X",
                "VERBOSE",
            ),
        ),
        "datetime": _public(datetime, ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR", "MAXYEAR")),
        "random": _public(
            random,
            (
                "random",
                "randint",
                "randrange",
                "choice",
                "choices",
                "shuffle",
                "sample",
                "uniform",
                "seed",
                "gauss",
                "getrandbits",
                "betavariate",
                "expovariate",
                "normalvariate",
                "triangular",
            ),
        ),
        "statistics": _public(
            statistics,
            (
                "mean",
                "fmean",
                "geometric_mean",
                "harmonic_mean",
                "median",
                "median_low",
                "median_high",
                "median_grouped",
                "mode",
                "multimode",
                "pstdev",
                "pvariance",
                "stdev",
                "variance",
                "quantiles",
                "correlation",
                "covariance",
                "linear_regression",
                "StatisticsError",
            ),
        ),
        "itertools": _public(itertools),
        "collections": _public(collections, ("Counter", "defaultdict", "OrderedDict", "deque")),
    }
    return {name: Facade(name, chosen) for name, chosen in members.items()}


def importer_build(facades: Mapping[str, Facade]) -> Callable[..., Facade | None]:
    """The ``__import__`` of a run: facades only, and only their members by name."""
    available = ", ".join(sorted(facades))

    def being_import(
        name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0
    ) -> Facade | None:
        if level:
            raise ImportError("relative imports are not available in a being")
        if type(fromlist) is list and not fromlist and name in sys.modules:
            # C code the being calls (date.strftime imports time) imports through the being's
            # __import__, with an empty list no import statement can give, and then reads
            # sys.modules itself: it gets a module already loaded, the being nothing.
            return None
        facade = facades.get(name)
        if facade is None:
            raise ImportError(f"module {name!r} is not available in a being; available: {available}")
        for member in fromlist or ():
            if not isinstance(member, str) or member not in facade:
                raise ImportError(f"cannot import name {member!r} from {name!r} in a being")
        return facade

    return being_import
