"""``YieldFarmingSaga``: from a requested strategy to open yield positions, or the reservation back to cash.

Started by ``YieldStrategyExecutionRequested`` (the amount is already reserved on the portfolio).

1. ``hold_funds``: the reservation the request made. Its compensation is the one way back from
   anything later: close every position the strategy opened (principal to cash) and release what
   is left of the reservation. Both commands are no-ops when there is nothing to undo, and carry
   deterministic ids, so each effect happens at most once however often they run.
2. ``analyse_opportunities``: rank the target protocols (or the whole catalogue for ``any``) by
   **risk-adjusted APY = APY x (11 - risk score) / 10**: a risk score of 1 keeps the whole APY,
   10 keeps a tenth. Ties go to the larger TVL, then the slug. None with a positive APY: the saga
   releases the reservation and ends early.
3. ``assess_risks``: keep the ranked protocols the tolerance accepts (``rules.RiskLimit``: highest
   risk score, lowest TVL, audited only). None: release and end early.
4. ``execute_positions``: plan the allocation (:func:`plan_allocations`) and open the positions
   from the reservation in one portfolio command, which also releases any remainder. A plan the
   diversification rules make impossible releases and ends early.

Every path that opens no position releases the reservation: the early ends release it
themselves, and a failure compensates ``hold_funds``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal
from typing import Any
from uuid import UUID

from cqrs_core.bus import command_bus
from cqrs_core.commands import Command
from cqrs_core.events import Event
from cqrs_core.sagas import RetryPolicy, SagaDefinition, Step, StepContext, StepResult, register_saga

from .catalogue import current_catalogue
from .commands import ANY, Allocation, CloseYieldPositions, OpenYieldPositions, ReleaseReservation
from .events import YieldStrategyExecutionRequested
from .rules import YieldRules, current_rules
from .state import ProtocolInfo

CENT = Decimal("0.01")
SCORE_PLACES = Decimal("0.0001")
NO_OPPORTUNITIES, NO_ACCEPTABLE_RISK, CANNOT_DIVERSIFY = "no_opportunities", "no_acceptable_risk", "cannot_diversify"


def send(command: Command, ctx: StepContext, suffix: str = "") -> dict[str, Any]:
    """Dispatch a step's command under its deterministic id: a re-run replays it, never repeats it."""
    result = command_bus.dispatch(command, command_id=ctx.command_id(suffix), correlation_id=ctx.correlation_id)
    return {"position": result.position, **result.data}


def risk_adjusted_apy(info: ProtocolInfo) -> Decimal:
    """APY x (11 - risk score) / 10 (see the module docstring)."""
    return (info.apy * (11 - info.risk_score) / 10).quantize(SCORE_PLACES)


def rank(candidates: list[ProtocolInfo]) -> list[ProtocolInfo]:
    """Best risk-adjusted APY first; ties by larger TVL, then slug; non-positive APYs dropped."""
    return sorted((p for p in candidates if p.apy > 0), key=lambda p: (-risk_adjusted_apy(p), -p.tvl, p.slug))


def rejections(info: ProtocolInfo, tolerance: str, rules: YieldRules) -> list[str]:
    """Why the tolerance refuses a protocol (empty: accepted)."""
    limit = rules.risk_limits[tolerance]
    reasons = []
    if info.risk_score > limit.max_risk_score:
        reasons.append(f"risk score {info.risk_score} > {limit.max_risk_score}")
    if info.tvl < limit.min_tvl:
        reasons.append(f"TVL {info.tvl} < {limit.min_tvl}")
    if limit.audited_only and not info.audited:
        reasons.append("not audited")
    return reasons


def plan_allocations(amount: Decimal, ranked: list[str], rules: YieldRules) -> tuple[list[tuple[str, Decimal]], Decimal] | None:
    """Equal shares, in cents, over the ``k`` best protocols; None when the rules cannot be met.

    ``k = min(n, max(min_protocols, ceil(1 / max_share)))`` for ``n`` acceptable protocols, and
    each gets ``min(amount / k, amount x max_share)`` rounded down to a cent. Fewer acceptable
    protocols than ``min_protocols`` is impossible; the remainder (cents, or what the share cap
    leaves when too few protocols qualify) goes back to cash.
    """
    if len(ranked) < rules.min_protocols or rules.max_share_per_protocol <= 0:
        return None
    k = min(len(ranked), max(rules.min_protocols, math.ceil(1 / rules.max_share_per_protocol)))
    share = min(amount / k, amount * rules.max_share_per_protocol).quantize(CENT, rounding=ROUND_DOWN)
    if share <= 0:
        return None
    return [(slug, share) for slug in ranked[:k]], amount - share * k


def _release(data: Mapping[str, Any], ctx: StepContext, reason: str) -> dict[str, Any]:
    cmd = ReleaseReservation(user_id=data["user_id"], reservation_id=UUID(data["strategy_id"]), reason=reason)
    return send(cmd, ctx, "release")


def _end_early(data: Mapping[str, Any], ctx: StepContext, reason: str, result: dict[str, Any]) -> StepResult:
    released = _release(data, ctx, reason)
    return StepResult(result={**result, "released": released["released"]}, continue_flow=False, reason=reason)


def _row(info: ProtocolInfo) -> dict[str, Any]:
    return {"slug": info.slug, "apy": str(info.apy), "risk_score": info.risk_score, "tvl": str(info.tvl),
            "audited": info.audited, "risk_adjusted_apy": str(risk_adjusted_apy(info))}


# --- the steps ------------------------------------------------------------------------------
def hold_funds(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
    return {"reservation_id": data["strategy_id"], "amount": data["amount"]}


def unwind(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> None:
    """Compensation: positions closed (principal to cash), then what is left of the reservation released."""
    strategy_id = UUID(data["strategy_id"])
    send(CloseYieldPositions(user_id=data["user_id"], strategy_id=strategy_id, reason="compensation"), ctx, "close")
    _release(data, ctx, "compensation")


def analyse_opportunities(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    catalogue = current_catalogue()
    targets = list(data["protocols"])
    if targets == [ANY]:
        candidates = list(catalogue.protocols.values())
    else:
        candidates = [p for p in (catalogue.get(slug) for slug in targets) if p is not None]
    ranked = [_row(p) for p in rank(candidates)]
    if not ranked:
        return _end_early(data, ctx, NO_OPPORTUNITIES, {"ranked": []})
    return StepResult(result={"ranked": ranked})


def assess_risks(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    rules, catalogue = current_rules(), current_catalogue()
    accepted, rejected = [], []
    for row in results["analyse_opportunities"]["ranked"]:
        info = catalogue.get(row["slug"])
        reasons = ["delisted"] if info is None else rejections(info, data["risk_tolerance"], rules)
        if reasons:
            rejected.append({"slug": row["slug"], "reasons": reasons})
        else:
            accepted.append(row["slug"])
    result = {"accepted": accepted, "rejected": rejected}
    if not accepted:
        return _end_early(data, ctx, NO_ACCEPTABLE_RISK, result)
    return StepResult(result=result)


def execute_positions(data: Mapping[str, Any], results: Mapping[str, Any], ctx: StepContext) -> StepResult:
    rules = current_rules()
    plan = plan_allocations(Decimal(data["amount"]), list(results["assess_risks"]["accepted"]), rules)
    limits = {"min_protocols": rules.min_protocols, "max_share_per_protocol": str(rules.max_share_per_protocol)}
    if plan is None:
        return _end_early(data, ctx, CANNOT_DIVERSIFY, {"rules": limits})
    allocations, _ = plan
    cmd = OpenYieldPositions(user_id=data["user_id"], strategy_id=UUID(data["strategy_id"]),
                             allocations=tuple(Allocation(protocol=slug, amount=amount) for slug, amount in allocations))
    opened = send(cmd, ctx)
    return StepResult(result={"allocations": [{"protocol": s, "amount": str(a)} for s, a in allocations],
                              "released": opened["released"], "rules": limits})


FAST = RetryPolicy(max_retries=3, backoff=0.2)


@register_saga
class YieldFarmingSaga(SagaDefinition, name="yield_farming.YieldFarmingSaga"):
    """Place a reserved amount in yield protocols, or give it back."""

    reacts_to = [YieldStrategyExecutionRequested]
    steps = [
        Step("hold_funds", run=hold_funds, compensate=unwind, retry=FAST,
             compensate_retry=RetryPolicy(max_retries=5, backoff=0.5)),
        Step("analyse_opportunities", run=analyse_opportunities, retry=FAST),
        Step("assess_risks", run=assess_risks, retry=FAST),
        Step("execute_positions", run=execute_positions, retry=FAST),
    ]

    @classmethod
    def start_from(cls, event: Event) -> dict[str, Any] | None:
        match event:
            case YieldStrategyExecutionRequested():
                return {"user_id": event.user_id, "strategy_id": str(event.strategy_id),
                        "protocols": list(event.protocols), "amount": str(event.amount),
                        "risk_tolerance": event.risk_tolerance}
        return None
