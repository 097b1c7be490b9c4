"""The merge pages under /chronos/merges/: start a merge (its preview), then the merge with its conflicts.

The merge page lists each conflict with its base, ours and theirs and a form to resolve it (ours, theirs
or an edited JSON value), and the apply button once none is left. Applying runs in the request: a merge
writes only the rows it changed, set-based, so it takes the time of a restore of that many rows.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from chronos.merges import selectors, services
from chronos.merges.forms import MergeForm, ResolveForm
from chronos.models import Merge, MergeConflict
from chronos.points import live_timeline
from chronos.risk.services import risk_assess
from chronos.views import JSON_SHOWN, chronos_page
from luxsite.errors import DomainError, PermissionDenied

MERGES_SHOWN = 20


def _json(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str)
    return text if len(text) <= JSON_SHOWN else text[:JSON_SHOWN] + "\n… (cut)"


def _shown(value: Any, *, whole_row: bool) -> str:
    return "(no row)" if whole_row and value is None else _json(value)


def _merge_page(
    request: HttpRequest,
    merge: Merge,
    *,
    status: int = 200,
    forms: dict[int, ResolveForm] | None = None,
    apply_error: DomainError | None = None,
) -> HttpResponse:
    conflicts: list[MergeConflict] = list(merge.conflicts.all())
    rows = [
        {
            "conflict": conflict,
            "where": ".".join(conflict.path) or "the whole row",
            "base": _shown(conflict.base, whole_row=not conflict.path),
            "ours": _shown(conflict.ours, whole_row=not conflict.path),
            "theirs": _shown(conflict.theirs, whole_row=not conflict.path),
            "value": _json(conflict.value) if conflict.resolution == MergeConflict.Resolution.VALUE else "",
            "form": (forms or {}).get(conflict.id) or ResolveForm(initial={"resolution": conflict.resolution or None}),
        }
        for conflict in conflicts
    ]
    context = {
        "merge": merge,
        "rows": rows,
        "open_count": sum(1 for conflict in conflicts if not conflict.resolution),
        "apply_error": apply_error,
        "risk": risk_assess(operation="merge", target=merge.source, actor=request.user)
        if merge.status == Merge.Status.OPEN
        else None,
    }
    return render(request, "chronos/merges/merge_detail.html", context, status=status)


def _start_page(request: HttpRequest, form: MergeForm, *, status: int = 200) -> HttpResponse:
    merges = list(selectors.merge_list()[:MERGES_SHOWN])
    return render(request, "chronos/merges/merge_start.html", {"form": form, "merges": merges}, status=status)


@chronos_page
@require_http_methods(["GET", "POST"])
def merge_start(request: HttpRequest) -> HttpResponse:
    """Choose what to merge into the live timeline and how (the newest merges listed below); the preview opens
    the merge's page."""
    if request.method == "GET":
        form = MergeForm(initial={"source": request.GET.get("source", ""), "into": live_timeline().name})
        return _start_page(request, form)
    form = MergeForm(request.POST)
    if not form.is_valid():
        return _start_page(request, form, status=422)
    try:
        merge = services.merge_preview(
            source=form.cleaned_data["source"],
            into=form.cleaned_data["into"],
            strategy=form.cleaned_data["strategy"],
            actor=request.user,
        )
    except PermissionDenied:
        raise
    except DomainError as error:
        form.add_error(None, f"{error.detail} ({error.code})")
        return _start_page(request, form, status=error.status)
    return redirect("chronos_merge", id=merge.id)


@chronos_page
@require_GET
def merge_detail(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """A merge: what it changes, its risk, each conflict with base, ours and theirs and its form, then apply."""
    return _merge_page(request, selectors.merge_get(id))


@chronos_page
@require_POST
def conflict_resolve(request: HttpRequest, id: uuid.UUID, conflict_id: int) -> HttpResponse:
    """Resolve one conflict from its form; a refused value shows again beside the conflict with the reason."""
    merge = selectors.merge_get(id)
    conflict = selectors.conflict_get(conflict_id, merge=merge)
    form = ResolveForm(request.POST)
    if not form.is_valid():
        return _merge_page(request, merge, status=422, forms={conflict.id: form})
    try:
        services.conflict_resolve(
            conflict=conflict,
            resolution=form.cleaned_data["resolution"],
            value=form.cleaned_data["value"],
            actor=request.user,
        )
    except PermissionDenied:
        raise
    except DomainError as error:
        form.add_error(None, f"{error.detail} ({error.code})")
        return _merge_page(request, selectors.merge_get(id), status=error.status, forms={conflict.id: form})
    messages.success(request, f"Conflict #{conflict.id} resolved: {form.cleaned_data['resolution']}.")
    return redirect("chronos_merge", id=merge.id)


@chronos_page
@require_POST
def merge_apply(request: HttpRequest, id: uuid.UUID) -> HttpResponse:
    """Apply the merge to the live timeline; refused (open conflicts, stale, failed), the page says why."""
    merge = selectors.merge_get(id)
    try:
        merge = services.merge_apply(merge=merge, actor=request.user)
    except PermissionDenied:
        raise
    except DomainError as error:
        return _merge_page(request, selectors.merge_get(id), status=error.status, apply_error=error)
    written = sum(merge.stats.get("written", {}).values())
    messages.success(
        request, f"Merged {merge.source.name} into {merge.into.name}: {written} rows written after a safety checkpoint."
    )
    return redirect("chronos_merge", id=merge.id)
