"""The admin of lessons: read only; one action resolves through the service."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from chronos.lessons.services import lesson_resolve
from chronos.models import Lesson
from luxsite.admin import ReadOnlyAdmin, json_block
from luxsite.errors import DomainError


@admin.register(Lesson)
class LessonAdmin(ReadOnlyAdmin):
    """Lessons, read only: added and pruned by the API, the command and the lessons page; the one action
    resolves the selected ones through ``lesson_resolve``."""

    list_display = (
        "id",
        "operation",
        "error_class",
        "count",
        "short_situation",
        "being_id",
        "last_seen_at",
        "resolved_at",
    )
    list_filter = ("operation", ("resolved_at", admin.EmptyFieldListFilter))
    search_fields = ("situation", "error_class", "hash", "=tags")
    ordering = ("-last_seen_at", "-id")
    fields = (
        "id",
        "operation",
        "error_class",
        "count",
        "situation",
        "action",
        "result",
        "feedback",
        "tags",
        "metadata_pretty",
        "being_id",
        "hash",
        "checkpoint_id",
        "execution_id",
        "timeline_id",
        "actor_id",
        "created_at",
        "last_seen_at",
        "resolved_at",
    )
    readonly_fields = fields
    actions = ["resolve_lessons"]

    @admin.display(description="situation")
    def short_situation(self, lesson: Lesson) -> str:
        return lesson.situation[:80]

    @admin.display(description="metadata")
    def metadata_pretty(self, lesson: Lesson) -> SafeString:
        return json_block(lesson.metadata)

    @admin.action(description="Resolve the selected lessons")
    def resolve_lessons(self, request: HttpRequest, queryset: QuerySet[Lesson]) -> None:
        resolved = 0
        for lesson in queryset.filter(resolved_at__isnull=True):
            try:
                lesson_resolve(lesson=lesson, actor=request.user)
            except DomainError as error:
                self.message_user(
                    request, f"lesson {lesson.pk} not resolved ({error.code}): {error.detail}", messages.ERROR
                )
                return
            resolved += 1
        self.message_user(request, f"{resolved} lesson{'' if resolved == 1 else 's'} resolved.", messages.SUCCESS)
