"""Seed a small demo graph of beings and relationships, through the services; running it again adds nothing."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Q

from beings import genotype, kinds, services
from beings.evolution import being_evolve
from beings.models import BaseBeing
from beings.selectors import being_versions
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
from chronos.context import change_context
from luxsite.errors import DomainError
from relations.models import Relationship
from relations.services import relationship_link

GREET = '''\
def run(name="world", language="en"):
    """Greet someone in one of the languages of the greetings being."""
    greetings = {"en": "Hello", "pl": "Cześć", "es": "Hola"}
    return f"{greetings.get(language, greetings['en'])}, {name}!"
'''

# The lineage of the demo being "greet": two evolutions that each add a language (lines added,
# none removed), then a mutation that changes the greeting line: a new being carrying the lineage.
GREET_V2 = '''\
def run(name="world", language="en"):
    """Greet someone in one of the languages of the greetings being."""
    greetings = {"en": "Hello", "pl": "Cześć", "es": "Hola"}
    greetings["de"] = "Hallo"
    return f"{greetings.get(language, greetings['en'])}, {name}!"
'''

GREET_V3 = '''\
def run(name="world", language="en"):
    """Greet someone in one of the languages of the greetings being."""
    greetings = {"en": "Hello", "pl": "Cześć", "es": "Hola"}
    greetings["de"] = "Hallo"
    greetings["fr"] = "Bonjour"
    return f"{greetings.get(language, greetings['en'])}, {name}!"
'''

GREET_MUTANT = '''\
def run(name="world", language="en"):
    """Greet someone in one of the languages of the greetings being."""
    greetings = {"en": "Hello", "pl": "Cześć", "es": "Hola"}
    greetings["de"] = "Hallo"
    greetings["fr"] = "Bonjour"
    return f"{greetings.get(language, greetings['en'])}, {name.strip().title()}!"
'''

ADD = '''\
def run(a, b):
    """The sum of two numbers."""
    return a + b
'''

FIBONACCI = '''\
def run(n=10):
    """The first n Fibonacci numbers."""
    numbers = []
    a, b = 0, 1
    for _ in range(n):
        numbers.append(a)
        a, b = b, a + b
    return numbers
'''

COUNTER = '''\
class Counter:
    """Counts up from a start value, one step at a time, and keeps every value it reached."""

    def __init__(self, attributes):
        self.value = attributes.get("start", 0)
        self.step = attributes.get("step", 1)
        self.reached = []

    def run(self, times=3):
        """Count up ``times`` steps; the values reached."""
        for _ in range(times):
            self.increment()
        return self.reached

    def increment(self):
        self.value += self.step
        self.reached += [self.value]
        return self.value

    def reset(self):
        self.value = 0
'''

# name -> the fields of the being (its genesis without the name).
DEMO_BEINGS: dict[str, dict[str, Any]] = {
    "greet": {
        "genesis": {
            "type": kinds.FUNCTION,
            "language": "python",
            "entrypoint": "run",
            "workload": "io",
            "source": GREET,
            "description": "Says hello in a few languages.",
        },
        "tags": ["demo", "text"],
        "energy_level": 60,
        "attributes": {"returns": "str"},
    },
    "add": {
        "genesis": {
            "type": kinds.FUNCTION,
            "language": "python",
            "entrypoint": "run",
            "workload": "cpu",
            "source": ADD,
            "description": "Adds two numbers.",
        },
        "tags": ["demo", "math"],
        "energy_level": 80,
        "attributes": {"returns": "number", "pure": True, "arguments": {"a": 2, "b": 3}},
    },
    "fibonacci": {
        "genesis": {
            "type": kinds.FUNCTION,
            "language": "python",
            "entrypoint": "run",
            "workload": "cpu",
            "source": FIBONACCI,
            "description": "The Fibonacci sequence, iteratively.",
        },
        "tags": ["demo", "math"],
        "energy_level": 70,
        "attributes": {"returns": "list[int]", "pure": True},
    },
    "Counter": {
        "genesis": {
            "type": kinds.CLASS,
            "language": "python",
            "entrypoint": "run",
            "workload": "cpu",
            "source": COUNTER,
            "description": "A counter with a configurable start and step that keeps its state between steps.",
        },
        "tags": ["demo", "state"],
        "energy_level": 40,
        "attributes": {"methods": ["run", "increment", "reset"], "start": 0, "step": 1, "arguments": {"times": 3}},
    },
    "greetings": {
        "genesis": {"type": kinds.DATA, "description": "Greetings by language code."},
        "tags": ["demo", "text", "data"],
        "energy_level": 20,
        "attributes": {"greetings": {"en": "Hello", "pl": "Cześć", "es": "Hola"}},
    },
    "math_constants": {
        "genesis": {"type": kinds.DATA, "description": "A few constants the math beings may use."},
        "tags": ["demo", "math", "data"],
        "energy_level": 20,
        "attributes": {"pi": 3.141592653589793, "e": 2.718281828459045, "golden_ratio": 1.618033988749895},
    },
}

# (source, target, tags) between the demo beings.
DEMO_RELATIONSHIPS: list[tuple[str, str, list[str]]] = [
    ("greet", "greetings", ["reads"]),
    ("fibonacci", "add", ["invokes"]),
    ("Counter", "add", ["invokes"]),
    ("fibonacci", "math_constants", ["reads"]),
    ("add", "math_constants", ["reads"]),
]


# (source, reason) applied in turn to "greet": what each step of its demo lineage brings.
GREET_LINEAGE: list[tuple[str, str]] = [
    (GREET_V2, "demo: greet in German too"),
    (GREET_V3, "demo: greet in French too"),
    (GREET_MUTANT, "demo: tidy the name before greeting"),
]


def demo_soul(name: str) -> uuid.UUID:
    """The fixed soul of a demo being: the same on every machine, so a second run finds it."""
    return uuid.uuid5(kinds.LUXOS_NAMESPACE, "demo:" + name)


class Command(BaseCommand):
    help = (
        "Create a small demo graph (six beings, five relationships, two evolutions and a mutation of greet, "
        "greet v2 promoted to production) through the services, as the admin user. What exists is left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user",
            default=settings.LUXOS_ADMIN_USER,
            help="Username the demo is created as (default: LUXOS_ADMIN_USER or admin).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username = options["user"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}: create it first (manage.py createadmin)")
        try:
            with change_context(door="command", reason="seed_demo"), transaction.atomic():
                created = self.seed(user)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from error
        if not created:
            self.stdout.write("demo already seeded: nothing to create")

    def seed(self, user: Any) -> list[str]:
        created: list[str] = []
        souls = {name: demo_soul(name) for name in DEMO_BEINGS}
        beings = {being.soul: being for being in BaseBeing.objects.filter(soul__in=souls.values())}
        for name, fields in DEMO_BEINGS.items():
            if souls[name] in beings:
                continue
            data = {
                **fields,
                "soul": souls[name],
                "genesis": {"name": name, "author": user.get_username(), **fields["genesis"]},
            }
            beings[souls[name]] = services.being_create(data=data, actor=user)
            created.append(f"being {name} ({souls[name]})")
            self.stdout.write(f"created {created[-1]}")
        for source_name, target_name, tags in DEMO_RELATIONSHIPS:
            source, target = beings[souls[source_name]], beings[souls[target_name]]
            if Relationship.objects.filter(source=source, target=target, tags__contains=tags).exists():
                continue
            relationship = relationship_link(source=source, target=target, actor=user, data={"tags": tags})
            created.append(f"relationship {source_name} -[{', '.join(tags)}]-> {target_name} ({relationship.pk})")
            self.stdout.write(f"created {created[-1]}")
        created.extend(self.lineage_seed(user, beings[souls["greet"]]))
        created.extend(self.promotion_seed(user, beings[souls["greet"]]))
        return created

    def lineage_seed(self, user: Any, greet: BaseBeing) -> list[str]:
        """Evolve and mutate "greet" along GREET_LINEAGE, skipping every step whose version already exists."""
        created: list[str] = []
        for source, reason in GREET_LINEAGE:
            greet.refresh_from_db()
            target = genotype.soul_hash(genotype.with_source(greet.genesis, source))
            if target in _family_hashes(greet):
                continue
            evolution = being_evolve(being=greet, source=source, reason=reason, actor=user)
            made = evolution.being
            created.append(f"{evolution.kind} of greet: {made.soul} v{made.version} ({made.hash[:12]})")
            self.stdout.write(f"created {created[-1]}")
        return created

    def promotion_seed(self, user: Any, greet: BaseBeing) -> list[str]:
        """Promote greet's v2 to production, unless greet was ever promoted there (even if demoted since)."""
        if soul_selectors.promotion_history(environment=soul_selectors.PRODUCTION, alias="greet").exists():
            return []
        greet.refresh_from_db()
        target = genotype.soul_hash(genotype.with_source(greet.genesis, GREET_V2))
        promotion = soul_services.soul_promote(
            hash=target,
            environment=soul_selectors.PRODUCTION,
            actor=user,
            alias="greet",
            note="demo: the version production runs while v3 and the mutant are tried out",
            # A fresh demo has no runs yet: the seeding user (a superuser) goes past the evidence, and says why.
            override_reason="demo data: promoted before any run so the board has something to show",
        )
        created = f"promotion of greet v{promotion.version} ({promotion.hash[:12]}) to {promotion.environment}"
        self.stdout.write(f"created {created}")
        return [created]


def _family_hashes(being: BaseBeing) -> set[str]:
    """Every hash held by the lineage of ``being`` and of the mutants made from it."""
    family = BaseBeing.objects.filter(Q(soul=being.soul) | Q(genesis__contains={"parent": {"soul": str(being.soul)}}))
    return {version.hash for member in family for version in being_versions(member)}
