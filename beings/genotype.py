"""The genotype of a being and its soul hash: what the code is, and the name of exactly that.

The genotype is the part of ``genesis`` that decides what runs: ``type``, ``language``,
``entrypoint``, ``source`` and ``workload``. Its hash is the SHA-256 of its canonical JSON
(sorted keys, compact separators, UTF-8), full length: never the alias, a timestamp or
anything that depends on the machine, so one genotype has one hash everywhere, forever.

The database computes the same hash (``luxos_soul_hash`` in migration 0003) and refuses a
row whose ``genesis.hash`` disagrees with its genotype.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Final

PYTHON: Final = "python"
IO: Final = "io"
CPU: Final = "cpu"
WORKLOADS: Final = (IO, CPU)
LANGUAGES: Final = (PYTHON,)

GENOTYPE_DEFAULTS: Final = {"language": PYTHON, "entrypoint": "run", "source": "", "workload": CPU}
GENOTYPE_KEYS: Final = ("type", "language", "entrypoint", "source", "workload")

HASH_LENGTH: Final = 64
MIN_PREFIX: Final = 12
HASH_PATTERN: Final = re.compile(r"[0-9a-f]{64}")
PREFIX_PATTERN: Final = re.compile(r"[0-9a-f]{12,64}")


def genotype_of(genesis: dict[str, Any]) -> dict[str, str]:
    """The genotype held in a genesis document, defaults filled in."""
    return {key: genesis.get(key, GENOTYPE_DEFAULTS.get(key, "")) for key in GENOTYPE_KEYS}


def canonical_json(value: Any) -> str:
    """The one JSON spelling of a value that hashes and digests are taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def soul_hash(genotype: dict[str, Any]) -> str:
    """The full SHA-256 hex digest of a genotype's canonical JSON."""
    return hashlib.sha256(canonical_json(genotype).encode("utf-8")).hexdigest()


def genesis_hash(genesis: dict[str, Any]) -> str:
    """The soul hash of the genotype held in ``genesis``."""
    return soul_hash(genotype_of(genesis))


def with_source(genesis: dict[str, Any], source: str) -> dict[str, str]:
    """The genotype of ``genesis`` with another source: every version of a being shares the rest."""
    return {**genotype_of(genesis), "source": source}
