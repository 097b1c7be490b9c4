"""Every model of the beings app, re-exported: the being and its kinds, the soul registry, executions."""

from beings.models.being import (
    BaseBeing,
    BeingGroupObjectPermission,
    BeingManager,
    BeingQuerySet,
    BeingUserObjectPermission,
    ClassBeing,
    DataBeing,
    FactoryBeing,
    FunctionBeing,
    HashKeys,
    HashMatches,
    KernelBeing,
    QueueBeing,
    RuntimeBeing,
    empty_text_array,
)
from beings.models.executions import Execution
from beings.models.souls import ClockTimestamp, Promotion, PromotionQuerySet, SoulReportFailure, SoulValidation

__all__ = [
    "BaseBeing",
    "BeingGroupObjectPermission",
    "BeingManager",
    "BeingQuerySet",
    "BeingUserObjectPermission",
    "ClassBeing",
    "ClockTimestamp",
    "DataBeing",
    "Execution",
    "FactoryBeing",
    "FunctionBeing",
    "HashKeys",
    "HashMatches",
    "KernelBeing",
    "Promotion",
    "PromotionQuerySet",
    "QueueBeing",
    "RuntimeBeing",
    "SoulReportFailure",
    "SoulValidation",
    "empty_text_array",
]
