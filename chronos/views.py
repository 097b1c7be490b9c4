"""HTML doors of chronos at /chronos/: the timelines as a graph, checkpoints, diffs, restore and switch.

Pages parse, call one service or selector, and render. Staff, or who holds ``chronos.view_checkpoint``,
may look; the services check the rest (restore, switch…) and a refusal renders as its error page.
Restores, switches, exports and imports always run as Celery tasks on the ``io`` queue: the page
queues the task, remembers its id in the session (only who queued a task sees its page), and shows
a progress page whose htmx panel polls every 500 ms the state the task keeps in its Celery result
(``PROGRESS`` with the step, then its return value) until it shows the result.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from celery.result import AsyncResult
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from beings.executions.views import partial_login_required
from chronos import graph, services
from chronos.diffs import Diff
from chronos.exceptions import CheckpointNotFoundError
from chronos.forms import CheckpointForm, ImportForm, TimelineForm, TravelForm
from chronos.guards import viewer_require
from chronos.models import Checkpoint
from chronos.points import Cut, Point, checkpoint_resolve, live_timeline, point_resolve
from chronos.risk.services import risk_assess
from chronos.selectors import checkpoint_list, checkpoint_stats, chronos_stats, timeline_list
from luxsite.celery import app
from luxsite.errors import DomainError, NotFound, PermissionDenied

CHECKPOINTS_SHOWN = 100
DIFF_PAGE = 25
PREVIEW_ROWS = 20
JSON_SHOWN = 4000
# The tasks a session remembers (and may open the pages of).
SESSION_TASKS = "chronos_tasks"
SESSION_TASKS_KEPT = 20
RESTORE_TASK = "chronos.tasks.checkpoint_restore"
SWITCH_TASK = "chronos.tasks.timeline_switch"
EXPORT_TASK = "chronos.tasks.checkpoint_export"
IMPORT_TASK = "chronos.tasks.checkpoint_import"
# An export's file name: the checkpoint's id (transfer.export_path), never anything a user typed.
EXPORT_NAME = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tar(\.gz)?$")


def chronos_page(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Signed in, and staff or holding chronos.view_checkpoint: otherwise a 403 page."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        viewer_require(request.user)
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def _checkpoint(id: uuid.UUID) -> Checkpoint:
    checkpoint = Checkpoint.objects.select_related("timeline").filter(id=id).first()
    if checkpoint is None:
        raise CheckpointNotFoundError(f"no checkpoint {id}")
    return checkpoint


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return text if len(text) <= JSON_SHOWN else text[:JSON_SHOWN] + "\n… (cut)"


def diff_shown(diff: Diff) -> dict[str, Any]:
    """A diff for the templates: counts per table and kind, and each row's fields with both values as JSON."""
    tables = sorted({table for table, _ in diff.stat} | {"base_beings", "relationships"})
    rows = []
    for entry in diff.entries:
        image = entry.new or entry.old or {}
        name = (
            image.get("genesis", {}).get("name") if entry.table == "base_beings" else ", ".join(image.get("tags", []))
        )
        rows.append(
            {
                "entry": entry,
                "name": name or "",
                "fields": [
                    {"path": field.path, "kind": field.kind, "old": _json(field.old), "new": _json(field.new)}
                    for field in entry.fields
                ],
                "image": _json(image) if entry.kind != "changed" else "",
            }
        )
    stat = [{"table": t, **{kind: diff.count(t, kind) for kind in ("added", "removed", "changed")}} for t in tables]
    return {"diff": diff, "stat": stat, "rows": rows}


def _dashboard(request: HttpRequest, *, status: int = 200, **forms: Any) -> HttpResponse:
    context: dict[str, Any] = {
        "timelines": list(timeline_list()),
        "checkpoints": list(checkpoint_list()[:CHECKPOINTS_SHOWN]),
        "checkpoints_shown": CHECKPOINTS_SHOWN,
        "stats": chronos_stats(),
        "checkpoint_form": forms.get("checkpoint_form") or CheckpointForm(),
        "timeline_form": forms.get("timeline_form") or TimelineForm(),
        "import_form": forms.get("import_form") or ImportForm(),
    }
    try:
        context["graph"], svg = graph.timelines_svg()
        # dot drew it from DOT text whose every label dot_quote escaped, and escapes text itself.
        context["graph_svg"] = mark_safe(svg)
    except graph.GraphUnavailableError as error:
        context["graph_error"] = str(error)
    return render(request, "chronos/dashboard.html", context, status=status)


@chronos_page
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The timelines drawn as a graph, the checkpoints, the log's stats, and the forms that make them."""
    return _dashboard(request)


@chronos_page
@require_POST
def checkpoint_create(request: HttpRequest) -> HttpResponse:
    """Take a checkpoint on the live timeline, then open its page; a refusal shows the dashboard with it."""
    form = CheckpointForm(request.POST)
    if form.is_valid():
        try:
            checkpoint = services.checkpoint_create(
                name=form.cleaned_data["name"], description=form.cleaned_data["description"], actor=request.user
            )
        except PermissionDenied:
            raise
        except DomainError as error:
            form.add_error("name", f"{error.detail} ({error.code})")
            return _dashboard(request, status=error.status, checkpoint_form=form)
        messages.success(request, f"Checkpoint {checkpoint.name} taken on {checkpoint.timeline.name}.")
        return redirect("chronos_checkpoint", id=checkpoint.id)
    return _dashboard(request, status=422, checkpoint_form=form)


@chronos_page
@require_POST
def timeline_create(request: HttpRequest) -> HttpResponse:
    """Fork a timeline from a checkpoint or from now; it is not live until switched to."""
    form = TimelineForm(request.POST)
    if form.is_valid():
        try:
            reference = form.cleaned_data["from_checkpoint"].strip()
            timeline = services.timeline_create(
                name=form.cleaned_data["name"],
                from_checkpoint=checkpoint_resolve(reference, anywhere=True) if reference else None,
                description=form.cleaned_data["description"],
                actor=request.user,
            )
        except PermissionDenied:
            raise
        except DomainError as error:
            form.add_error(None, f"{error.detail} ({error.code})")
            return _dashboard(request, status=error.status, timeline_form=form)
        messages.success(request, f"Timeline {timeline.name} created; switch to it to make it live.")
        return redirect("chronos_dashboard")
    return _dashboard(request, status=422, timeline_form=form)


@chronos_page
@require_GET
def checkpoint_detail(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """A checkpoint: what it is, the changes since and their size, and its diff against now."""
    checkpoint = _checkpoint(id)
    context: dict[str, Any] = {
        "checkpoint": checkpoint,
        "stats": checkpoint_stats(checkpoint),
        "live": live_timeline(),
        "stats_json": _json(checkpoint.stats) if checkpoint.stats else "",
    }
    try:
        origin = Point(checkpoint.timeline, Cut.of(checkpoint), checkpoint.name)
        context.update(diff_shown(services.chronos_diff(origin, Point(context["live"], None, "now"), limit=DIFF_PAGE)))
    except DomainError as error:
        context["diff_error"] = error
    return render(request, "chronos/checkpoint_detail.html", context)


def _force_missing(preview: services.TravelPreview, form: TravelForm, action: str) -> str:
    """Why a confirmed restore or switch is refused: it deletes a promoted being and force was not ticked."""
    if preview.needs_force and not form.cleaned_data["force"]:
        return f"The {action} deletes the being behind an active promotion: tick the box to go on."
    return ""


def _travel_page(request: HttpRequest, context: dict[str, Any], *, status: int = 200) -> HttpResponse:
    return render(request, "chronos/travel_confirm.html", context, status=status)


@chronos_page
@require_http_methods(["GET", "POST"])
def checkpoint_restore(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """The restore's preview and its confirmation; confirmed, the restore is queued and its progress shown."""
    checkpoint = _checkpoint(id)
    preview = services.checkpoint_restore_preview(checkpoint=checkpoint, actor=request.user, limit=PREVIEW_ROWS)
    form = TravelForm(request.POST if request.method == "POST" else None)
    context = {
        "action": "restore",
        "checkpoint": checkpoint,
        "preview": preview,
        "risk": risk_assess(operation="restore", target=checkpoint, actor=request.user),
        "form": form,
        **diff_shown(preview.diff),
    }
    if request.method == "GET" or not form.is_valid():
        return _travel_page(request, context)
    if refused := _force_missing(preview, form, "restore"):
        return _travel_page(request, {**context, "refusal": refused}, status=409)
    return _queue(
        request,
        RESTORE_TASK,
        args=[str(checkpoint.id), request.user.pk, form.cleaned_data["force"]],
        label=f"Restore to {checkpoint.name}",
    )


@chronos_page
@require_http_methods(["GET", "POST"])
def timeline_switch(request: HttpRequest, name: str) -> HttpResponse:
    """The switch's preview (what differs between the live head and the other) and its confirmation."""
    preview = services.timeline_switch_preview(name=name, actor=request.user, limit=PREVIEW_ROWS)
    target, live = preview.timeline, preview.live
    form = TravelForm(request.POST if request.method == "POST" else None)
    context = {
        "action": "switch",
        "timeline": target,
        "live": live,
        "preview": preview,
        "risk": risk_assess(operation="switch", target=target, actor=request.user),
        "form": form,
        **diff_shown(preview.diff),
    }
    if request.method == "GET" or not form.is_valid():
        return _travel_page(request, context)
    if refused := _force_missing(preview, form, "switch"):
        return _travel_page(request, {**context, "refusal": refused}, status=409)
    return _queue(
        request,
        SWITCH_TASK,
        args=[target.name, request.user.pk, form.cleaned_data["force"]],
        label=f"Switch from {live.name} to {target.name}",
    )


@chronos_page
@require_GET
def diff(request: HttpRequest) -> HttpResponse:
    """The rows that differ between two points (``?from=&to=``), a page at a time, with their JSON paths."""
    origin_text, target_text = request.GET.get("from", "").strip(), request.GET.get("to", "").strip() or "now"
    context: dict[str, Any] = {"origin": origin_text, "target": target_text}
    if not origin_text:
        return render(request, "chronos/diff.html", context)
    try:
        number = max(1, int(request.GET.get("page", "1")))
    except ValueError:
        number = 1
    try:
        origin, target = point_resolve(origin_text), point_resolve(target_text)
        result = services.chronos_diff(origin, target, limit=DIFF_PAGE, offset=(number - 1) * DIFF_PAGE)
    except DomainError as error:
        context["diff_error"] = error
        return render(request, "chronos/diff.html", context, status=error.status)
    context.update(diff_shown(result))
    # A paginator over the total (the entries are already the page): it numbers the pages and their links.
    context["page"] = Paginator(range(result.total), DIFF_PAGE).get_page(number)
    context["query"] = f"from={origin_text}&to={target_text}"
    return render(request, "chronos/diff.html", context)


@chronos_page
@require_POST
def checkpoint_export(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """Queue the export of a checkpoint's archive; its progress page links the file when it is written."""
    checkpoint = _checkpoint(id)
    services.permission_require(request.user, "chronos.view_checkpoint", "exporting a checkpoint")
    return _queue(request, EXPORT_TASK, args=[str(checkpoint.id), request.user.pk], label=f"Export {checkpoint.name}")


@chronos_page
@require_GET
def export_download(request: HttpRequest, name: str) -> HttpResponseBase:
    """An exported archive, by the name its task reported: a checkpoint id and a .tar or .tar.gz suffix."""
    services.permission_require(request.user, "chronos.view_checkpoint", "downloading a checkpoint archive")
    archive = settings.CHRONOS_TIMELINES_DIR / "exports" / name
    if not EXPORT_NAME.match(name) or not archive.is_file():
        raise NotFound(f"no exported archive named {name[:80]!r}", code="archive_not_found")
    return FileResponse(archive.open("rb"), as_attachment=True, filename=f"checkpoint-{name}")


@chronos_page
@require_POST
def archive_import(request: HttpRequest) -> HttpResponse:
    """Keep an uploaded archive where the worker reads it, and queue its import as a new timeline."""
    services.permission_require(request.user, "chronos.restore_checkpoint", "importing an archive")
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _dashboard(request, status=422, import_form=form)
    directory = settings.CHRONOS_TIMELINES_DIR / "imports"
    directory.mkdir(parents=True, exist_ok=True)
    upload = directory / f"{uuid.uuid4()}.upload"
    with upload.open("wb") as target:
        for chunk in form.cleaned_data["archive"].chunks():
            target.write(chunk)
    timeline = form.cleaned_data["timeline"]
    return _queue(
        request, IMPORT_TASK, args=[upload.name, timeline, request.user.pk], label=f"Import as timeline {timeline}"
    )


def _queue(request: HttpRequest, task: str, *, args: list[Any], label: str) -> HttpResponse:
    """Queue ``task`` on io once the request's writes commit, remember it in the session, show its progress.

    Sent by name, as ``beings.evolution`` sends its task: the tasks module imports the services, not the doors.
    """
    task_id = str(uuid.uuid4())
    remembered = dict(request.session.get(SESSION_TASKS, {}))
    remembered[task_id] = {"label": label, "queued_at": timezone.now().isoformat()}
    request.session[SESSION_TASKS] = dict(list(remembered.items())[-SESSION_TASKS_KEPT:])
    transaction.on_commit(functools.partial(app.send_task, task, args=args, task_id=task_id, queue="io"))
    return redirect("chronos_task", task_id=task_id)


def _task_context(request: HttpRequest, task_id: uuid.UUID) -> dict[str, Any]:
    """What the progress page shows of a task this session queued: queued, running (a step), done, refused, failed."""
    remembered = request.session.get(SESSION_TASKS, {}).get(str(task_id))
    if remembered is None:
        raise NotFound("no task of yours has this id (a task's page is for who queued it)", code="task_not_found")
    result: AsyncResult[Any] = AsyncResult(str(task_id), app=app)
    state, info = result.state, result.info
    context: dict[str, Any] = {"task_id": task_id, "label": remembered["label"], "result": {}, "step": ""}
    if state == "SUCCESS" and isinstance(info, dict):
        context["state"] = info.get("status", "done")
        context["result"] = info
    elif state == "FAILURE":
        context["state"], context["step"] = "failed", f"{type(info).__name__}: {info}"
    elif state in ("STARTED", "PROGRESS", "RETRY"):
        context["state"] = "running"
        context["step"] = info.get("step", "") if isinstance(info, dict) else ""
    else:
        context["state"] = "queued"
    context["finished"] = context["state"] in ("done", "refused", "failed")
    return context


@chronos_page
@require_GET
def task_detail(request: HttpRequest, task_id: uuid.UUID) -> HttpResponse:
    """A queued restore, switch, export or import: its progress, live, then its result."""
    return render(request, "chronos/task.html", _task_context(request, task_id))


@partial_login_required
@require_GET
def task_panel(request: HttpRequest, task_id: uuid.UUID) -> HttpResponse:
    """The progress page's live part alone: what htmx polls every 500 ms until the task is finished."""
    return render(request, "chronos/task_panel.html", _task_context(request, task_id))
