"""The lessons page at /chronos/lessons/: search with filters, statistics, add, resolve.

Anyone signed in may look: each sees the lessons they may read (staff and chronos viewers all of
them, others those about beings they may view). Adding and resolving need their permissions, which
the services check; a refusal shows the page again with it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from beings.selectors import being_get
from chronos.lessons import selectors, services
from chronos.lessons.forms import LessonForm, LessonSearchForm
from luxsite.errors import DomainError

LESSONS_SHOWN = 100


def _page(request: HttpRequest, *, add_form: LessonForm | None = None, status: int = 200) -> HttpResponse:
    search = LessonSearchForm(request.GET or None)
    context: dict[str, Any] = {
        "search": search,
        "add_form": add_form or LessonForm(),
        "may_add": request.user.has_perm("chronos.add_lesson"),
        "may_resolve": request.user.has_perm("chronos.change_lesson"),
        "stats": selectors.lessons_stats(user=request.user),
        "shown": LESSONS_SHOWN,
        "lessons": [],
    }
    if search.is_bound and not search.is_valid():
        return render(request, "chronos/lessons/lesson_list.html", context, status=400)
    filters = search.cleaned_data if search.is_bound else {}
    try:
        context["lessons"] = selectors.lessons_search(
            user=request.user,
            query=filters.get("q") or "",
            being=filters.get("being"),
            hash=filters.get("hash") or "",
            tag=filters.get("tag") or "",
            since=filters.get("since"),
            until=filters.get("until"),
            open_only=bool(filters.get("open")),
            limit=LESSONS_SHOWN,
        )
    except DomainError as error:
        context["search_error"] = error
        status = error.status
    return render(request, "chronos/lessons/lesson_list.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def lesson_list(request: HttpRequest) -> HttpResponse:
    """The lessons found by the search form (newest first without words), and a form to add one."""
    if request.method != "POST":
        return _page(request)
    form = LessonForm(request.POST)
    if not form.is_valid():
        return _page(request, add_form=form, status=400)
    try:
        soul = form.cleaned_data["being"]
        lesson = services.lesson_add(
            being=being_get(soul=soul, user=request.user) if soul else None,
            situation=form.cleaned_data["situation"],
            action=form.cleaned_data["action"],
            result=form.cleaned_data["result"],
            feedback=form.cleaned_data["feedback"],
            tags=form.cleaned_data["tags"].split(","),
            actor=request.user,
        )
    except DomainError as error:
        form.add_error(None, error.detail)
        return _page(request, add_form=form, status=error.status)
    messages.success(request, f"Lesson {lesson.pk} added.")
    return redirect("chronos_lessons")


@login_required
@require_POST
def lesson_resolve(request: HttpRequest, id: int) -> HttpResponse:
    """Resolve a lesson the user may read, then back to the list."""
    lesson = selectors.lesson_get(id=id, user=request.user)
    services.lesson_resolve(lesson=lesson, actor=request.user, feedback=request.POST.get("feedback", ""))
    messages.success(request, f"Lesson {lesson.pk} resolved.")
    return redirect("chronos_lessons")
