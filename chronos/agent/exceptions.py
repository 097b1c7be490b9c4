"""Refusals of the agent door itself; the tools otherwise answer the services' own errors."""

from luxsite.errors import Invalid


class AssessmentInvalidError(Invalid):
    """assess_risk takes an operation (with its target) or a text, never both, never neither."""

    code = "risk_input_invalid"
