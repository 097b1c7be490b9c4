"""What can go wrong with lessons, in the families of luxsite.errors."""

from luxsite.errors import Invalid, NotFound


class LessonInvalidError(Invalid):
    code = "lesson_invalid"


class LessonNotFoundError(NotFound):
    code = "lesson_not_found"


class LessonFilterInvalidError(Invalid):
    code = "lesson_filter_invalid"
