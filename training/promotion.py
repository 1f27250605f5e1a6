"""Promotion of a registered version to ``champion``, through the gate, always audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from training.gate import GateResult, GateThresholds, evaluate_gate
from training.registry import CHALLENGER, CHAMPION, AuditSink, ModelRegistry, PromotionEvent

OOT_ARTIFACT = "validation/oot.parquet"


class PromotionRefused(RuntimeError):
    """The gate failed and the promotion was not forced; ``gate`` holds the figures."""

    def __init__(self, message: str, gate: GateResult) -> None:
        super().__init__(message)
        self.gate = gate


@dataclass(frozen=True)
class PromotionOutcome:
    """What happened: the new champion, the previous one, and the gate behind the decision."""

    event: PromotionEvent
    gate: GateResult | None


def gate_against_champion(
    registry: ModelRegistry, name: str, version: int, *, thresholds: GateThresholds | None = None
) -> tuple[int | None, GateResult]:
    """Score the champion and the candidate on the candidate's out-of-time frame and run the gate."""
    champion_version = registry.alias_version(name, CHAMPION)
    oot = registry.load_frame(name, version, OOT_ARTIFACT)
    challenger = registry.load_model(name, version).grade(oot)
    champion = None
    if champion_version is not None and champion_version != version:
        champion = registry.load_model(name, champion_version).grade(oot)
    gate = evaluate_gate(
        oot["label"].to_numpy(),
        challenger["p_adverse_12m"].to_numpy(),
        challenger["grade"].to_numpy(),
        None if champion is None else champion["p_adverse_12m"].to_numpy(),
        None if champion is None else champion["grade"].to_numpy(),
        thresholds=thresholds,
    )
    return champion_version, gate


def promote(
    registry: ModelRegistry,
    name: str,
    version: int,
    *,
    user: str,
    reason: str,
    audit: AuditSink,
    force: bool = False,
    thresholds: GateThresholds | None = None,
    now: datetime | None = None,
) -> PromotionOutcome:
    """Make ``version`` the champion of ``name`` if it passes the gate (or ``force``, audited).

    Every attempt, refused or not, is written to ``audit``. Raises `PromotionRefused` when the
    gate fails without ``force``, and ValueError when the version is already champion.
    """
    if not user.strip():
        raise ValueError("user is empty; a promotion must name who asked for it")
    registry.get_version(name, version)  # raises if it does not exist
    current = registry.alias_version(name, CHAMPION)
    if current == version:
        raise ValueError(f"{name} version {version} is already the champion")
    _, gate = gate_against_champion(registry, name, version, thresholds=thresholds)
    if force and not reason.strip():
        raise ValueError("--force needs a --reason: a forced promotion must say why")
    accepted = gate.passed or force
    event = PromotionEvent(
        at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        user=user,
        model=name,
        alias=CHAMPION if accepted else f"{CHAMPION} (refused)",
        from_version=current,
        to_version=version,
        reason=reason,
        forced=bool(force and not gate.passed),
        gate_passed=gate.passed,
        gate=gate.as_dict(),
    )
    if accepted:
        registry.set_alias(name, CHAMPION, version)
        if registry.alias_version(name, CHALLENGER) == version:
            registry.delete_alias(name, CHALLENGER)
    audit(event)
    if not accepted:
        failed = ", ".join(c.name for c in gate.failed)
        raise PromotionRefused(
            f"{name} version {version} was not promoted: gate failed on {failed}\n{gate.summary()}", gate
        )
    return PromotionOutcome(event=event, gate=gate)
