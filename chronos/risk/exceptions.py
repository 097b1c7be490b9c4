"""What a risk assessment refuses, in the families of luxsite.errors."""

from luxsite.errors import Invalid


class RiskOperationUnknownError(Invalid):
    code = "risk_operation_unknown"


class RiskTargetInvalidError(Invalid):
    code = "risk_target_invalid"


class RiskTextInvalidError(Invalid):
    code = "risk_text_invalid"
