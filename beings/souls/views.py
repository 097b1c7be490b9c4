"""HTML pages of the soul registry: the board of environments, and promoting or demoting with a confirmation."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from beings.exceptions import OwnerChangeUnconfirmedError, PromotionEvidenceMissingError
from beings.selectors import (
    being_owners,
    hash_prefix_clean,
)
from beings.souls import selectors as soul_selectors
from beings.souls import services as soul_services
from beings.souls.board import (
    BOARD_ALIASES,
    BOARD_CANDIDATES,
    HISTORY_LIMIT,
    PromotionPlan,
    environment_boards,
    promotion_plan,
)
from beings.souls.evidence import Evidence, promotion_evidence
from chronos.risk.services import Risk, Target, risk_assess
from luxsite.errors import Conflict, DomainError, PermissionDenied


@login_required
@require_GET
def souls_board(request: HttpRequest) -> HttpResponse:
    """Per environment and alias: what runs, whose being it is, and each being that may replace it; the history.

    Everything goes through the registry's visibility: someone who does not manage environments
    sees the promotions of the beings they may view and nothing of the others, whatever the alias.
    """
    promoter = soul_selectors.promoter_may(user=request.user)
    boards = environment_boards(user=request.user)
    return render(
        request,
        "beings/souls/board.html",
        {
            "boards": boards,
            "promoter": promoter,
            "alias_limit": BOARD_ALIASES,
            "history_limit": HISTORY_LIMIT,
            "candidate_limit": BOARD_CANDIDATES,
        },
    )


def _promoter_require(request: HttpRequest) -> None:
    if not soul_selectors.promoter_may(user=request.user):
        raise PermissionDenied(f"you may not promote or demote souls: that needs {soul_selectors.PROMOTE_PERMISSION}")


def _board_url(environment: str) -> str:
    return f"{reverse('souls_board')}#{environment}"


@login_required
@require_GET
def soul_promote_choose(request: HttpRequest, environment: str) -> HttpResponse:
    """The board's version picker: the confirmation page of the hash chosen, for the being and alias it names."""
    _promoter_require(request)
    environment = soul_selectors.environment_clean(environment)
    hash = hash_prefix_clean(request.GET.get("hash", ""))
    query = urlencode({key: request.GET[key] for key in ("soul", "alias") if request.GET.get(key)})
    return redirect(f"{reverse('soul_promote', args=[environment, hash])}{'?' if query else ''}{query}")


def _plan_evidence(request: HttpRequest, plan: PromotionPlan) -> Evidence | None:
    """The evidence of the version the page would promote, for its environment; None until a being is chosen."""
    if plan.version is None:
        return None
    return promotion_evidence(
        hash=plan.version.hash, environment=plan.environment, actor=request.user, being=plan.version.holder
    )


def _plan_risk(request: HttpRequest, plan: PromotionPlan) -> Risk | None:
    """The risk of the promotion the page confirms (chronos.risk); None until a being is chosen."""
    if plan.version is None:
        return None
    target = Target(being=plan.version.holder, environment=plan.environment)
    return risk_assess(operation="promote", target=target, actor=request.user)


def _confirm_page(request: HttpRequest, plan: PromotionPlan, refusal: DomainError | None = None) -> HttpResponse:
    """The confirmation page of a promotion, with its evidence and, after a refused POST, why and what was typed."""
    context = {
        "action": "promote",
        "plan": plan,
        "environment": plan.environment,
        "alias": plan.alias,
        "evidence": _plan_evidence(request, plan),
        "risk": _plan_risk(request, plan),
        "may_override": soul_selectors.override_may(user=request.user),
        "refusal": refusal,
        "note": request.POST.get("note", ""),
        "override_reason": request.POST.get("override_reason", ""),
    }
    return render(request, "beings/souls/confirm.html", context, status=refusal.status if refusal else 200)


@login_required
@require_http_methods(["GET", "POST"])
def soul_promote_confirm(request: HttpRequest, environment: str, hash: str) -> HttpResponse:
    """Ask to confirm promoting a hash to an environment; a POST with ``confirm`` promotes it.

    The page names the being (``soul``) and its owners. Replacing another being under the alias
    is said; replacing the being of other owners needs ``replace_owner`` as well, or nothing is written.
    """
    _promoter_require(request)
    environment = soul_selectors.environment_clean(environment)
    alias = str(request.POST.get("alias") or request.GET.get("alias") or "").strip() or None
    soul = str(request.POST.get("soul") or request.GET.get("soul") or "").strip() or None
    if request.method == "POST" and request.POST.get("confirm"):
        try:
            plan = promotion_plan(user=request.user, environment=environment, hash=hash, alias=alias, soul=soul)
            promotion = soul_services.soul_promote(
                hash=hash,
                environment=environment,
                actor=request.user,
                note=request.POST.get("note", ""),
                alias=alias,
                soul=plan.version.holder.soul if plan.version else None,
                replace_owner=bool(request.POST.get("replace_owner")),
                override_reason=request.POST.get("override_reason") or None,
            )
        except OwnerChangeUnconfirmedError:
            refusal = Conflict(
                f"Not promoted: {environment} runs {plan.current_owners_text}'s being under {plan.alias!r}; "
                f"tick \"I understand this replaces {plan.current_owners_text}'s being with "
                f"{plan.being_owners_text}'s\" to promote it.",
                code="owner_change_unconfirmed",
            )
            return _confirm_page(request, plan, refusal)
        except PromotionEvidenceMissingError as missing:
            return _confirm_page(request, plan, missing)
        except PermissionDenied as denied:
            # Promoters reach this page; what they may lack here is the right to override missing evidence.
            return _confirm_page(request, plan, denied)
        except DomainError as error:
            messages.error(request, f"Not promoted ({error.code}): {error.detail}")
        else:
            ends = promotion.ends
            superseded = f", superseding v{ends.version} {ends.hash[:12]}" if ends else ""
            messages.success(
                request,
                f"Promoted {promotion.alias} v{promotion.version} {promotion.hash[:12]} to {environment}{superseded}.",
            )
        return redirect(_board_url(environment))
    plan = promotion_plan(user=request.user, environment=environment, hash=hash, alias=alias, soul=soul)
    return _confirm_page(request, plan)


@login_required
@require_http_methods(["GET", "POST"])
def soul_demote_confirm(request: HttpRequest, environment: str, hash: str) -> HttpResponse:
    """Ask to confirm demoting an active hash from an environment; a POST with ``confirm`` demotes it."""
    _promoter_require(request)
    environment = soul_selectors.environment_clean(environment)
    if request.method == "POST" and request.POST.get("confirm"):
        try:
            demotion = soul_services.soul_demote(
                hash=hash, environment=environment, actor=request.user, note=request.POST.get("note", "")
            )
        except DomainError as error:
            messages.error(request, f"Not demoted ({error.code}): {error.detail}")
        else:
            messages.success(
                request, f"Demoted {demotion.alias} v{demotion.version} {demotion.hash[:12]} from {environment}."
            )
        return redirect(_board_url(environment))
    current = soul_selectors.promotion_active_get(environment=environment, hash=hash)
    context = {
        "action": "demote",
        "environment": environment,
        "current": current,
        "alias": current.alias,
        "current_owners": being_owners(souls=[current.soul])[current.soul],
    }
    return render(request, "beings/souls/confirm.html", context)
