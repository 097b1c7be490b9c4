"""What can go wrong with dreams, in the families of luxsite.errors."""

from luxsite.errors import Conflict, Invalid, NotFound


class DreamPlanInvalidError(Invalid):
    """The plan is not a list of steps dreams know; the detail names the step and why."""

    code = "dream_plan_invalid"


class DreamNotFoundError(NotFound):
    code = "dream_not_found"


class DreamTimeoutError(Conflict):
    """The dream ran past its bound (``CHRONOS_DREAM_SECONDS``): it failed and left nothing."""

    code = "dream_timeout"


class DreamNotFinishedError(Conflict):
    code = "dream_not_finished"
