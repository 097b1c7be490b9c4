"""Being kinds (``genesis.type``) and the core beings with fixed souls."""

import uuid
from typing import Any, Final

from beings import genotype

FUNCTION: Final = "function"
CLASS: Final = "class"
KERNEL: Final = "kernel"
RUNTIME: Final = "runtime"
DATA: Final = "data"
FACTORY: Final = "factory"
QUEUE: Final = "queue"

KINDS: Final = (FUNCTION, CLASS, KERNEL, RUNTIME, DATA, FACTORY, QUEUE)

# Every fixed soul is uuid5(LUXOS_NAMESPACE, name): the same on every machine, forever.
LUXOS_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "luxos:core")


def core_soul(name: str) -> uuid.UUID:
    """The fixed soul of a core being."""
    return uuid.uuid5(LUXOS_NAMESPACE, name)


# name -> kind of the core beings mirrored into base_beings by a data migration.
CORE_BEINGS: Final = {
    "Kernel": KERNEL,
    "Factory": FACTORY,
    "IOQueue": QUEUE,
    "CPUQueue": QUEUE,
}
CORE_SOULS: Final = frozenset(core_soul(name) for name in CORE_BEINGS)

CORE_DESCRIPTIONS: Final = {
    "Kernel": "The core of LuxOS: resolves souls, aliases and hashes.",
    "Factory": "Creates beings from genesis documents.",
    "IOQueue": "The io queue: beings with workload io run here, on threads.",
    "CPUQueue": "The cpu queue: beings with workload cpu run here, one process per core.",
}


def core_genesis(name: str, kind: str) -> dict[str, Any]:
    """The genesis of a core being: no source, version 1 forever, its hash stamped."""
    genesis: dict[str, Any] = {
        "name": name,
        "type": kind,
        "description": CORE_DESCRIPTIONS[name],
        "author": "luxos",
        "version": 1,
        "ancestors": [],
    }
    return {**genesis, "hash": genotype.genesis_hash(genesis)}


def core_beings_ensure(model: Any) -> int:
    """Create the core beings that are missing, with ``model`` (a migration's historical model too)."""
    created = 0
    for name, kind in CORE_BEINGS.items():
        _being, was_created = model.objects.get_or_create(
            soul=core_soul(name),
            defaults={
                "tags": ["core"],
                "energy_level": 100,
                "genesis": core_genesis(name, kind),
                "attributes": {"core": True},
                "memories": [],
                "self_awareness": {},
            },
        )
        created += was_created
    return created
