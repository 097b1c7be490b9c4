"""What can go wrong with a merge, in the families of luxsite.errors."""

from luxsite.errors import Conflict, Invalid, NotFound


class MergeNotFoundError(NotFound):
    code = "merge_not_found"


class ConflictNotFoundError(NotFound):
    code = "conflict_not_found"


class MergeSameTimelineError(Invalid):
    code = "merge_same_timeline"


class MergeStrategyInvalidError(Invalid):
    code = "merge_strategy_invalid"


class ResolutionInvalidError(Invalid):
    """A resolution that is not ours, theirs or a value, or an edited value the write would refuse."""

    code = "resolution_invalid"


class MergeConflictsOpenError(Conflict):
    """The merge has conflicts nobody resolved yet: it applies when none is left."""

    code = "merge_conflicts_open"


class MergeNotOpenError(Conflict):
    code = "merge_not_open"


class MergeStaleError(Conflict):
    """A side changed since the preview: what was previewed (and resolved) is no longer what would be merged."""

    code = "merge_stale"


class MergeFailedError(Conflict):
    """The database refused the merged state (a link to a being the other side deleted…); nothing changed."""

    code = "merge_failed"
