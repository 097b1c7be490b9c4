"""``manage.py beings import FILE | list | show SOUL | execute REF | replay ID``: beings from the command line."""

from __future__ import annotations

import json
import sys
import time
from argparse import SUPPRESS, ArgumentParser
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from beings import selectors, services
from beings.executions.queue import execution_wait
from beings.executions.replay import execution_replay, replay_compare
from beings.executions.selectors import execution_get, target_resolve
from beings.executions.services import execution_call
from beings.models import Execution
from beings.schemas import BeingOut
from chronos.context import change_context
from luxsite.errors import DomainError

# Seconds `beings execute` waits for a run to finish, and its exit status when it has not.
EXECUTE_WAIT = 30.0
EXIT_UNFINISHED = 3
JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def json_argument(text: str, *, name: str, kind: type) -> Any:
    """A --args or --kwargs value parsed as JSON of the expected kind, or a CommandError saying what is wrong."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(
            f"--{name} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(value, kind):
        raise CommandError(f"--{name} must be a JSON {JSON_TYPES[kind]}, not {JSON_TYPES[type(value)]}: {text}")
    return value


def execution_document(execution: Execution) -> dict[str, Any]:
    """A run as the command prints it in JSON."""
    return {
        "id": str(execution.id),
        "status": execution.status,
        "soul": str(execution.being_id),
        "alias": execution.alias,
        "hash": execution.hash,
        "version": execution.version,
        "environment": execution.environment,
        "result": execution.result,
        "error": execution.error,
        "output": execution.output,
        "duration_ms": execution.duration_ms,
        "worker": execution.worker,
        "queue": execution.queue,
        "replay_of": None if execution.replay_of_id is None else str(execution.replay_of_id),
    }


class Command(BaseCommand):
    help = "Import, list, show and execute beings."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--user",
            default=settings.LUXOS_ADMIN_USER,
            help="Act as this user: owner of imported beings, whose view list/show respect. "
            "Default: LUXOS_ADMIN_USER or admin.",
        )
        sub = parser.add_subparsers(dest="action", required=True)
        importer = sub.add_parser("import", help="Import beings from a JSON Lines file (- for stdin), all or nothing.")
        importer.add_argument("file")
        lister = sub.add_parser("list", help="List beings as JSON Lines.")
        lister.add_argument("--tag", action="append", default=[], help="Only beings with this tag (repeatable).")
        lister.add_argument("--type", dest="kind")
        lister.add_argument("--name")
        lister.add_argument("--limit", type=int, default=50)
        shower = sub.add_parser("show", help="Show one being as JSON.")
        shower.add_argument("soul")
        executor = sub.add_parser(
            "execute",
            help="Run a being on a worker and print how it ended. Exit 0 when it succeeded (or --wait 0 only "
            "queued it), 1 when it failed, timed out, was killed or rejected, or the input is bad, 3 when it has "
            "not finished within --wait.",
        )
        executor.add_argument("ref", metavar="ALIAS_OR_SOUL_OR_HASH", help="A soul, an alias or a hash (prefix ≥ 12).")
        # Not dest "args": Django takes that name for a command's positional arguments.
        executor.add_argument("--args", dest="positional", default="[]", help="Positional arguments: a JSON array.")
        executor.add_argument("--kwargs", default="{}", help="Keyword arguments: a JSON object.")
        executor.add_argument("--env", default=None, help="Run the hash promoted to this environment for the alias.")
        executor.add_argument("--hash", default=None, help="Run this version of the being (hash or prefix ≥ 12).")
        _run_options(executor, ends="the end", queued="the run", json_help="Print the execution as one JSON document.")
        replayer = sub.add_parser(
            "replay",
            help="Run a finished run again (same hash, inputs and self) and say whether it came out the same. "
            "Exit 0 when the replay finished (deterministic or not: the output says), 1 when it cannot be "
            "replayed, 3 when the replay has not finished within --wait.",
        )
        replayer.add_argument("id", metavar="EXECUTION_ID", help="The run to replay (you must have started it).")
        _run_options(
            replayer, ends="the replay to finish", queued="it", json_help="Print both runs and the comparison as JSON."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"no user named {options['user']!r}; pass --user or create it (manage.py createadmin)")
        try:
            with change_context(door="command"):
                getattr(self, f"handle_{options['action']}")(user, options)
        except DomainError as error:
            raise CommandError(f"{error.code}: {error.detail}") from None

    def handle_import(self, user: Any, options: dict[str, Any]) -> None:
        path = options["file"]
        try:
            stream = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error.strerror}") from None
        started = time.perf_counter()
        with stream:
            report = services.beings_import(lines=stream, actor=user)
        elapsed = time.perf_counter() - started
        rate = report.created / elapsed if elapsed else 0
        self.stdout.write(f"imported {report.created} beings in {elapsed:.2f} s ({rate:,.0f}/s)")

    def handle_list(self, user: Any, options: dict[str, Any]) -> None:
        filters = selectors.BeingFilters(tags_all=options["tag"], kind=options["kind"], name=options["name"])
        page = selectors.being_list(user=user, filters=filters, limit=options["limit"])
        for being in page.items:
            self.stdout.write(BeingOut.from_orm(being).model_dump_json())

    def handle_show(self, user: Any, options: dict[str, Any]) -> None:
        being = selectors.being_get(soul=options["soul"], user=user)
        self.stdout.write(json.dumps(json.loads(BeingOut.from_orm(being).model_dump_json()), indent=2))

    def handle_execute(self, user: Any, options: dict[str, Any]) -> None:
        args = json_argument(options["positional"], name="args", kind=list)
        kwargs = json_argument(options["kwargs"], name="kwargs", kind=dict)
        wait = options["wait"]
        if not 0 <= wait <= 3600:
            raise CommandError("--wait must be between 0 and 3600 seconds")
        target = target_resolve(ref=options["ref"], user=user, environment=options["env"], hash=options["hash"])
        execution = execution_call(target=target, args=args, kwargs=kwargs, actor=user, wait=wait)
        self.execution_print(execution, as_json=options["json"])
        if execution.status in (Execution.Status.QUEUED, Execution.Status.RUNNING):
            if wait:
                raise CommandError(
                    f"execution {execution.id} is still {execution.status} after {wait:g} s; "
                    f"follow it at /executions/{execution.id}/",
                    returncode=EXIT_UNFINISHED,
                )
        elif execution.status != Execution.Status.SUCCEEDED:
            error = execution.error or {}
            raise CommandError(
                f"execution {execution.id} {execution.status}: {error.get('type', '')}: {error.get('message', '')}"
            )

    def handle_replay(self, user: Any, options: dict[str, Any]) -> None:
        wait = options["wait"]
        if not 0 <= wait <= 3600:
            raise CommandError("--wait must be between 0 and 3600 seconds")
        original = execution_get(id=options["id"], user=user)
        replay = execution_replay(execution=original, actor=user)
        if wait:
            replay = execution_wait(execution=replay, timeout=wait)
        comparison = replay_compare(replay=replay, original=original)
        if options["json"]:
            document = {
                "original": execution_document(original),
                "replay": execution_document(replay),
                "deterministic": None if comparison is None else comparison.deterministic,
                "same_status": None if comparison is None else comparison.same_status,
                "same_result": None if comparison is None else comparison.same_result,
                "same_output": None if comparison is None else comparison.same_output,
            }
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(f"replay {replay.id} of {original.id}: {replay.status}")
            for label, run in (("original", original), ("replay", replay)):
                self.stdout.write(f"{label + ':':<10}{run.status}")
                self.stdout.write(f"  result: {json.dumps(run.result, ensure_ascii=False)}")
                self.stdout.write(f"  output: {json.dumps(run.output, ensure_ascii=False)}")
            if comparison is None:
                self.stdout.write("deterministic: not known yet (the replay has not finished)")
            else:
                differs = [
                    name
                    for name, same in (
                        ("status", comparison.same_status),
                        ("result", comparison.same_result),
                        ("output", comparison.same_output),
                    )
                    if not same
                ]
                verdict = "yes" if comparison.deterministic else f"no ({', '.join(differs)} differ)"
                self.stdout.write(f"deterministic: {verdict}")
        if not replay.finished and wait:
            raise CommandError(
                f"replay {replay.id} is still {replay.status} after {wait:g} s; follow it at /executions/{replay.id}/",
                returncode=EXIT_UNFINISHED,
            )

    def execution_print(self, execution: Execution, *, as_json: bool) -> None:
        document = execution_document(execution)
        if as_json:
            self.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
            return
        where = execution.environment or "development"
        self.stdout.write(f"execution {execution.id}: {execution.status}")
        alias = execution.alias or "(unnamed)"
        self.stdout.write(f"being:     {alias} v{execution.version} {execution.hash} ({where})")
        if execution.duration_ms is not None:
            self.stdout.write(
                f"duration:  {execution.duration_ms:.1f} ms on {execution.worker or '?'} (queue {execution.queue})"
            )
        if execution.status == Execution.Status.SUCCEEDED:
            self.stdout.write(f"result:    {json.dumps(execution.result, ensure_ascii=False)}")
        if execution.output:
            self.stdout.write("output:")
            self.stdout.write(execution.output.rstrip("\n"))
        if execution.error:
            error = execution.error
            self.stdout.write(f"error:     {error.get('type', '')}: {error.get('message', '')}")
            if error.get("traceback"):
                self.stdout.write(str(error["traceback"]).rstrip("\n"))


def _run_options(parser: Any, *, ends: str, queued: str, json_help: str) -> None:
    """--wait, --json and --user of a subcommand that starts a run."""
    parser.add_argument(
        "--wait",
        type=float,
        default=EXECUTE_WAIT,
        help=f"Seconds to wait for {ends} (default {EXECUTE_WAIT:g}; 0 only queues {queued}).",
    )
    parser.add_argument("--json", action="store_true", help=json_help)
    # Also accepted after the subcommand; SUPPRESS keeps the value given before it otherwise.
    parser.add_argument("--user", default=SUPPRESS, help="Act as this user (as --user before the subcommand).")
