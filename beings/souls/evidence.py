"""Promotion gated by evidence: what a hash has shown against what an environment asks before it runs there.

``LUXOS_PROMOTION_EVIDENCE`` names, per environment, the rules: successful runs of the hash, failures among
its last runs, open lessons on the hash or the versions it came from, and the promotion's assessed risk. An
environment it does not name is not gated. The figures come from a couple of queries: one grouped query over
the hash's runs (``idx_executions_hash_finished``), one over open lessons; the board asks for many hashes at
once with the same two queries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from beings.exceptions import LineageBrokenError
from beings.models import BaseBeing, Execution
from beings.selectors import being_versions
from beings.souls.selectors import environment_clean
from chronos.models import Lesson
from chronos.risk.services import Target, risk_assess
from luxsite.permissions import User

RISK_LEVELS: Final = ("low", "medium", "high", "critical")
SUCCEEDED: Final = Execution.Status.SUCCEEDED.value
# A rejected run never ran the code (the queue was full, the sandbox missing): it is neither a success nor a failure.
FAILED: Final = (Execution.Status.FAILED.value, Execution.Status.TIMEOUT.value, Execution.Status.KILLED.value)
LAST_RUNS_DEFAULT: Final = 10
RULE_KEYS: Final = frozenset({"min_successes", "last_runs", "max_failures_in_last", "no_open_lessons", "max_risk"})
# Open lessons named in a refusal; the count says how many there are.
LESSONS_NAMED: Final = 5

RUNS_SQL: Final = """
SELECT hash,
       count(*) FILTER (WHERE status = %(succeeded)s),
       coalesce(array_agg(status ORDER BY rank) FILTER (WHERE rank <= %(last)s), '{}')
FROM (
    SELECT hash, status,
           row_number() OVER (PARTITION BY hash ORDER BY finished_at DESC NULLS LAST, queued_at DESC, id) AS rank
    FROM executions
    WHERE hash = ANY(%(hashes)s) AND status = ANY(%(statuses)s)
) AS runs
GROUP BY hash
"""


@dataclass(frozen=True)
class EvidenceRules:
    """What an environment asks of a hash before it is promoted there; every rule is optional."""

    min_successes: int = 0
    last_runs: int = LAST_RUNS_DEFAULT
    max_failures_in_last: int | None = None
    no_open_lessons: bool = False
    max_risk: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_successes": self.min_successes,
            "last_runs": self.last_runs,
            "max_failures_in_last": self.max_failures_in_last,
            "no_open_lessons": self.no_open_lessons,
            "max_risk": self.max_risk,
        }


@dataclass(frozen=True)
class Evidence:
    """A hash's evidence for one environment: whether it is met, what is missing (sentences), and the figures."""

    hash: str
    environment: str
    rules: EvidenceRules | None
    missing: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def gated(self) -> bool:
        """The environment asks for evidence at all."""
        return self.rules is not None

    @property
    def met(self) -> bool:
        return not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "met": self.met,
            "missing": self.missing,
            "figures": self.figures,
            "rules": self.rules.as_dict() if self.rules else None,
        }

    def refusal(self) -> str:
        """The sentence of a 409: what is missing, and the way past it."""
        return (
            f"{self.environment} asks for evidence that {self.hash[:12]} lacks: {'; '.join(self.missing)}. "
            "Run it until it has, resolve its lessons, or promote with an override reason "
            "(that needs beings.promote_soul_override)"
        )


def _count(environment: str, rules: Mapping[str, Any], key: str) -> int:
    value = rules[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ImproperlyConfigured(f"LUXOS_PROMOTION_EVIDENCE[{environment!r}][{key!r}] must be a whole number ≥ 0")
    return value


def evidence_rules(*, environment: str) -> EvidenceRules | None:
    """The rules ``LUXOS_PROMOTION_EVIDENCE`` sets for ``environment``; None when it asks for no evidence there."""
    configured = settings.LUXOS_PROMOTION_EVIDENCE
    if not isinstance(configured, dict):
        raise ImproperlyConfigured("LUXOS_PROMOTION_EVIDENCE must be a JSON object: {environment: {rule: value}}")
    rules = configured.get(environment)
    if rules is None:
        return None
    if not isinstance(rules, dict):
        raise ImproperlyConfigured(f"LUXOS_PROMOTION_EVIDENCE[{environment!r}] must be an object of rules")
    unknown = sorted(set(rules) - RULE_KEYS)
    if unknown:
        raise ImproperlyConfigured(
            f"LUXOS_PROMOTION_EVIDENCE[{environment!r}] has unknown rules {', '.join(unknown)}: "
            f"use {', '.join(sorted(RULE_KEYS))}"
        )
    max_risk = rules.get("max_risk")
    if max_risk is not None and max_risk not in RISK_LEVELS:
        raise ImproperlyConfigured(
            f"LUXOS_PROMOTION_EVIDENCE[{environment!r}]['max_risk'] must be one of {', '.join(RISK_LEVELS)}"
        )
    no_open_lessons = rules.get("no_open_lessons", False)
    if not isinstance(no_open_lessons, bool):
        raise ImproperlyConfigured(
            f"LUXOS_PROMOTION_EVIDENCE[{environment!r}]['no_open_lessons'] must be true or false"
        )
    return EvidenceRules(
        min_successes=_count(environment, rules, "min_successes") if "min_successes" in rules else 0,
        last_runs=_count(environment, rules, "last_runs") if "last_runs" in rules else LAST_RUNS_DEFAULT,
        max_failures_in_last=(
            _count(environment, rules, "max_failures_in_last") if "max_failures_in_last" in rules else None
        ),
        no_open_lessons=no_open_lessons,
        max_risk=max_risk,
    )


def _runs(*, hashes: Collection[str], last: int) -> dict[str, tuple[int, list[str]]]:
    """Per hash, in one query: its successful runs, ever, and the statuses of its last ``last`` runs, newest first."""
    if not hashes:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            RUNS_SQL,
            {"succeeded": SUCCEEDED, "last": last, "hashes": list(hashes), "statuses": [SUCCEEDED, *FAILED]},
        )
        return {hash: (successes, list(statuses)) for hash, successes, statuses in cursor.fetchall()}


def _open_lessons(*, hashes: Collection[str]) -> dict[str, list[int]]:
    """The open (unresolved) lessons on each of ``hashes``, oldest first, in one query."""
    lessons: dict[str, list[int]] = {}
    if not hashes:
        return lessons
    rows = Lesson.objects.filter(resolved_at__isnull=True, hash__in=list(hashes)).order_by("id")
    for hash, id in rows.values_list("hash", "id"):
        lessons.setdefault(hash, []).append(id)
    return lessons


def hash_lineage(*, hash: str, beings: Iterable[BaseBeing] | None = None) -> set[str]:
    """``hash`` and every version it came from: the entries before it in each lineage that holds it.

    A mutant's lineage continues its parent's, so a mutation's ancestors are its parent's versions too.
    ``beings`` are the holders when the caller has them already; otherwise they are read (one query).
    """
    holders = BaseBeing.objects.holding_hash(hash) if beings is None else beings
    lineage = {hash}
    for holder in holders:
        try:
            hashes = [version.hash for version in being_versions(holder)]
        except LineageBrokenError:
            continue
        if hash in hashes:
            lineage.update(hashes[: hashes.index(hash)])
    return lineage


def _weigh(
    *,
    hash: str,
    environment: str,
    rules: EvidenceRules,
    runs: tuple[int, list[str]],
    lessons: list[int],
    risk: str | None,
) -> Evidence:
    """The evidence of one hash from its figures: a sentence for every rule it does not meet."""
    successes, statuses = runs
    recent = statuses[: rules.last_runs]
    failures = sum(1 for status in recent if status != SUCCEEDED)
    figures: dict[str, Any] = {
        "successes": successes,
        "last_runs": len(recent),
        "failures_in_last": failures,
        "open_lessons": len(lessons),
        "open_lesson_ids": lessons[:LESSONS_NAMED],
        "risk": risk,
    }
    missing = []
    if successes < rules.min_successes:
        missing.append(f"{successes} successful run{'s' if successes != 1 else ''} of the {rules.min_successes} needed")
    if rules.max_failures_in_last is not None and failures > rules.max_failures_in_last:
        missing.append(
            f"{failures} of its last {len(recent)} runs failed, timed out or were killed "
            f"(at most {rules.max_failures_in_last} of the last {rules.last_runs} may)"
        )
    if rules.no_open_lessons and lessons:
        named = ", ".join(f"#{id}" for id in lessons[:LESSONS_NAMED])
        missing.append(
            f"{len(lessons)} open lesson{'s' if len(lessons) != 1 else ''} on it or a version it came from ({named})"
        )
    if rules.max_risk is not None and risk is not None and RISK_LEVELS.index(risk) > RISK_LEVELS.index(rules.max_risk):
        missing.append(f"its risk is {risk}, above the {rules.max_risk} allowed")
    return Evidence(hash=hash, environment=environment, rules=rules, missing=missing, figures=figures)


def _risk_level(*, being: BaseBeing | None, environment: str, actor: User | None) -> str | None:
    """The assessed risk of promoting a version of ``being`` to ``environment``; None when no being holds it."""
    if being is None:
        return None
    return risk_assess(operation="promote", target=Target(being=being, environment=environment), actor=actor).level


def promotion_evidence(
    *, hash: str, environment: str, actor: User | None = None, being: BaseBeing | None = None
) -> Evidence:
    """The evidence of the full ``hash`` for ``environment``: met, what is missing, and the figures.

    ``being`` is the one that holds the version (the one a promotion names), for the risk; by default the
    oldest being that holds it. An environment ``LUXOS_PROMOTION_EVIDENCE`` does not name asks for nothing:
    met, and nothing is read.
    """
    environment = environment_clean(environment)
    rules = evidence_rules(environment=environment)
    if rules is None:
        return Evidence(hash=hash, environment=environment, rules=None)
    runs = _runs(hashes=[hash], last=rules.last_runs).get(hash, (0, []))
    holders: list[BaseBeing] = []
    if rules.no_open_lessons or (rules.max_risk is not None and being is None):
        holders = list(BaseBeing.objects.holding_hash(hash).order_by("created_at", "soul"))
    lessons: list[int] = []
    if rules.no_open_lessons:
        lineage = hash_lineage(hash=hash, beings=holders)
        lessons = sorted(id for ids in _open_lessons(hashes=lineage).values() for id in ids)
    risk = None
    if rules.max_risk is not None:
        being = being or next((holder for holder in holders if holder.hash == hash), holders[0] if holders else None)
        risk = _risk_level(being=being, environment=environment, actor=actor)
    return _weigh(hash=hash, environment=environment, rules=rules, runs=runs, lessons=lessons, risk=risk)


def promotion_evidence_many(
    *, lineages: Mapping[str, Collection[str]], environments: Iterable[str]
) -> dict[tuple[str, str], Evidence]:
    """The evidence of many hashes for each gated environment, in two queries whatever their number: for the board.

    ``lineages`` maps each hash to itself and the versions it came from (see ``hash_lineage``). The risk is
    left out (it is weighed one promotion at a time, when promoting): ``figures["risk"]`` is None.
    """
    gated = {environment: rules for environment in environments if (rules := evidence_rules(environment=environment))}
    if not gated or not lineages:
        return {}
    runs = _runs(hashes=list(lineages), last=max(rules.last_runs for rules in gated.values()))
    lessons: dict[str, list[int]] = {}
    if any(rules.no_open_lessons for rules in gated.values()):
        lessons = _open_lessons(hashes={ancestor for lineage in lineages.values() for ancestor in lineage})
    return {
        (environment, hash): _weigh(
            hash=hash,
            environment=environment,
            rules=rules,
            runs=runs.get(hash, (0, [])),
            lessons=sorted(id for ancestor in lineage for id in lessons.get(ancestor, [])),
            risk=None,
        )
        for environment, rules in gated.items()
        for hash, lineage in lineages.items()
    }
