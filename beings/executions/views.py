"""HTML doors of executions: the run form of the being page, the live execution monitor, the page of one run.

Every write goes through ``beings.executions``. The live parts are partials that htmx (vendored in
beings/static/beings/htmx.min.js) polls every second while what they show can still change.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from beings.executions.forms import run_form_context, run_inputs
from beings.executions.replay import replay_compare, replay_pair
from beings.executions.selectors import execution_get, execution_list, executions_visible, target_resolve
from beings.executions.services import execution_cancel, execution_start
from beings.executions.visibility import HIDDEN, contents_hidden, execution_shown
from beings.models import Execution
from beings.selectors import being_get
from beings.views import being_page
from luxsite.errors import BadRequest, DomainError, NotFound, PermissionDenied
from luxsite.permissions import may

# Runs per page of the monitor; the live table re-reads this many every second.
MONITOR_ROWS = 50
# The nested runs listed on a run's page; a run makes at most LUXOS_SANDBOX_CALLS + LUXOS_SANDBOX_SUMMONS.
CHILDREN_LIMIT = 100


def partial_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``login_required`` for a partial htmx polls: when the session has expired, the whole page goes to the login.

    A plain redirect would make htmx swap the login form into the table it refreshes.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if not request.headers.get("HX-Request"):
            return redirect_to_login(request.get_full_path())
        current = urlsplit(request.headers.get("HX-Current-URL", ""))
        page = f"{current.path}?{current.query}" if current.query else current.path
        response = HttpResponse(status=401)
        response["HX-Redirect"] = redirect_to_login(page or request.get_full_path()).url
        return response

    return wrapped


@login_required
@require_http_methods(["GET", "POST"])
def being_run(request: HttpRequest, soul: uuid.UUID) -> HttpResponse:
    """Start a run from the being page's form and open its page; bad input shows the being page again, with the error.

    A refused run is rendered at this URL, so the page's relative links (a diff's ``?from=…&to=…``)
    come here with GET: they are sent on to the being page.
    """
    if request.method == "GET":
        query = request.GET.urlencode()
        return redirect(reverse("being_detail", args=[soul]) + (f"?{query}" if query else ""))
    being = being_get(soul=soul, user=request.user)
    if not may(user=request.user, action="execute_being", obj=being):
        raise PermissionDenied("you may not execute this being")
    hash = request.POST.get("hash", "").strip() or None
    try:
        args, kwargs = run_inputs(being=being, data=request.POST)
        target = target_resolve(ref=being, user=request.user, hash=hash)
        execution = execution_start(target=target, args=args, kwargs=kwargs, actor=request.user)
    except PermissionDenied:
        raise
    except DomainError as error:
        run_form = run_form_context(being=being, user=request.user, data=request.POST, error=error)
        return being_page(request, being=being, run_form=run_form, status=error.status)
    return redirect("execution_detail", id=execution.id)


def _monitor_context(request: HttpRequest) -> dict[str, Any]:
    status = request.GET.get("status") or None
    soul = request.GET.get("being") or None
    being = None
    if soul:
        try:
            being = being_get(soul=uuid.UUID(soul), user=request.user)
        except ValueError:
            raise BadRequest(f"{soul!r} is not a soul (a UUID)", code="bad_soul") from None
    page = execution_list(
        user=request.user,
        being=being,
        status=status,
        environment=request.GET.get("environment") or None,
        after=request.GET.get("after") or None,
        limit=MONITOR_ROWS,
    )
    others = request.GET.copy()
    for key in ("status", "after"):
        others.pop(key, None)
    return {
        "executions": page.items,
        "next_cursor": page.next_cursor,
        "active": any(not execution.finished for execution in page.items),
        "status": status,
        "statuses": Execution.Status.values,
        "being": being,
        "query": request.GET.urlencode(),
        "query_without_status": others.urlencode(),
    }


@login_required
@require_GET
def execution_monitor(request: HttpRequest) -> HttpResponse:
    """The runs the user may see, newest first, followed live while they queue, run and finish."""
    return render(request, "beings/executions/monitor.html", _monitor_context(request))


@partial_login_required
@require_GET
def execution_rows(request: HttpRequest) -> HttpResponse:
    """The monitor's table alone: what its htmx polling swaps in."""
    return render(request, "beings/executions/rows.html", _monitor_context(request))


def _panel_context(request: HttpRequest, id: uuid.UUID) -> dict[str, Any]:
    # Another user's run of the user's being: that it happened, not what went in or came out.
    execution = execution_shown(execution_get(id=id, user=request.user), user=request.user)
    parent = None
    if execution.parent_id is not None:
        try:
            parent = execution_get(id=execution.parent_id, user=request.user)
        except (NotFound, PermissionDenied):
            parent = None  # a run the user may not see: the depth still says the run was nested
    children = executions_visible(user=request.user, queryset=execution.children.order_by("queued_at", "id"))
    pair = _replay_pair(execution, user=request.user)
    return {
        "live": not execution.finished or (pair is not None and pair["deterministic"] is None),
        "pair": pair,
        "execution": execution,
        "parent": parent,
        "children": list(children[:CHILDREN_LIMIT]),
        "may_cancel": not execution.finished,
        "args_json": json.dumps(execution.args, ensure_ascii=False),
        "kwargs_json": json.dumps(execution.kwargs, ensure_ascii=False),
        "result_json": json.dumps(execution.result, ensure_ascii=False, indent=2),
        "error_frames": error_frames(execution.error),
        "contents_hidden": contents_hidden(execution),
        "hidden_note": HIDDEN,
    }


def _replay_pair(execution: Execution, *, user: Any) -> dict[str, Any] | None:
    """The run's replay pair for its page, side by side: the run it replays, or else its newest replay.

    None when it is neither a replay nor replayed (or the other run is not the user's to see).
    """
    original, newest = replay_pair(execution=execution, user=user)
    if original is not None:
        original, replay = execution_shown(original, user=user), execution
    elif newest is not None:
        original, replay = execution, execution_shown(newest, user=user)
    else:
        return None
    comparison = replay_compare(replay=replay, original=original)
    return {
        "runs": [
            {
                "label": label,
                "run": run,
                "current": run.pk == execution.pk,
                "result_json": json.dumps(run.result, ensure_ascii=False, indent=2),
            }
            for label, run in (("Original", original), ("Replay", replay))
        ],
        "replays": execution.replay_of_id is not None,
        "deterministic": None if comparison is None else comparison.deterministic,
        "comparison": comparison,
    }


def error_frames(error: Any) -> str:
    """A run's traceback without its last line when that repeats the error the page names above it."""
    if not isinstance(error, dict) or not isinstance(error.get("traceback"), str):
        return ""
    traceback = error["traceback"].rstrip("\n")
    message = error.get("message")
    named = f"{error.get('type')}: {message}" if message else str(error.get("type"))
    if traceback.endswith(named):
        traceback = traceback[: -len(named)].rstrip("\n")
    return "" if traceback == "Traceback (most recent call last):" else traceback


@login_required
@require_GET
def execution_detail(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """One run: status, result, output, error with traceback, the runs it made; live until it finishes."""
    return render(request, "beings/executions/detail.html", _panel_context(request, id))


@partial_login_required
@require_GET
def execution_panel(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """The run page's live part alone: what its htmx polling swaps in."""
    return render(request, "beings/executions/panel.html", _panel_context(request, id))


@login_required
@require_POST
def execution_cancel_view(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """Cancel a queued or running run, then show its page with what happened."""
    execution = execution_get(id=id, user=request.user)
    try:
        execution = execution_cancel(execution=execution, actor=request.user)
    except PermissionDenied:
        raise
    except DomainError as error:
        messages.error(request, f"Not cancelled ({error.code}): {error.detail}")
    else:
        messages.success(request, f"Cancelled: the run is now {execution.status}.")
    return redirect("execution_detail", id=execution.id)
