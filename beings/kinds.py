"""Being kinds (``genesis.type``) and the core beings with fixed souls."""

import uuid
from typing import Final

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
