"""Risk over HTTP: ``POST /api/chronos/risk`` assesses an operation or a text, changing nothing.

Like every chronos route it answers staff, or who holds ``chronos.view_checkpoint``; a being or a
relationship named as the target is read with the caller's own permissions (404 when hidden).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import HttpRequest
from ninja import Router

from chronos.guards import viewer_require
from chronos.risk import services
from chronos.risk.schemas import RiskIn, RiskOut
from chronos.risk.targets import operation_clean, target_parse
from luxsite.api_schemas import ERRORS

router = Router(tags=["chronos"])


@router.post("", response={200: RiskOut, **ERRORS})
def risk_assess(request: HttpRequest, payload: RiskIn) -> dict[str, Any]:
    """Assess an operation on its target (level, score, reasons) or a free text, without acting.

    ``{"operation": "delete", "target": SOUL}`` weighs LuxOS' data: the operation's kind, the beings
    that reach the target through links, promotions in force, runs in the last day, past failures and
    open lessons, lines an evolution removes, rows a restore, switch, merge or import rewrites.
    ``{"text": "…"}`` reads English and Polish words and their inflections. Bad input is a 422.
    """
    viewer_require(request.user)
    if payload.text is not None:
        return services.risk_assess_text(payload.text).as_dict()
    operation = operation_clean(payload.operation)
    target = target_parse(operation=operation, text=payload.target, user=request.user)
    target = replace(target, source=payload.source, environment=payload.environment)
    return services.risk_assess(operation=operation, target=target, actor=request.user).as_dict()
