"""What can go wrong with checkpoints and their archives, in the families of luxsite.errors."""

from luxsite.errors import BadRequest, Conflict, Invalid, NotFound


class ArchiveInvalidError(Invalid):
    """A checkpoint archive refused on reading; the subclasses say why."""

    code = "archive_invalid"


class ArchiveCorruptError(ArchiveInvalidError):
    code = "archive_corrupt"


class ArchiveVersionError(ArchiveInvalidError):
    code = "archive_version_unknown"


class ArchiveMemberError(ArchiveInvalidError):
    code = "archive_member_invalid"


class ArchiveDigestError(ArchiveInvalidError):
    code = "archive_digest_mismatch"


class ArchiveTooLargeError(ArchiveInvalidError):
    code = "archive_too_large"


class ArchiveContentError(ArchiveInvalidError):
    code = "archive_content_invalid"


class ChronosNameInvalidError(Invalid):
    code = "name_invalid"


class CheckpointNameTakenError(Conflict):
    code = "checkpoint_name_taken"


class CheckpointNotFoundError(NotFound):
    code = "checkpoint_not_found"


class CheckpointAmbiguousError(BadRequest):
    code = "checkpoint_ambiguous"


class CheckpointInUseError(Conflict):
    code = "checkpoint_in_use"


class TimelineNotFoundError(NotFound):
    code = "timeline_not_found"


class TimelineNameTakenError(Conflict):
    code = "timeline_name_taken"


class TimelineProtectedError(Conflict):
    code = "timeline_protected"


class TimelineNotLiveError(Conflict):
    code = "timeline_not_live"


class PointInvalidError(BadRequest):
    code = "point_invalid"


class HistoryGapError(Conflict):
    """Capture was off (ENABLE_CHRONOS false) between the two points: the log cannot say what changed."""

    code = "history_gap"


class PromotedBeingAffectedError(Conflict):
    code = "promoted_being_affected"


class ChronosDisabledError(Conflict):
    code = "chronos_disabled"


class WriteInProgressError(Conflict):
    code = "write_in_progress"
