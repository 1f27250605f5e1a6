"""The promotion gate: a challenger replaces the champion only if it is at least as good.

`evaluate_gate` is a pure function of both models' predictions on the *same* out-of-time frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from models.calibration import brier_score, expected_calibration_error
from stability.psi import decile_psi
from training import evaluation as ev


@dataclass(frozen=True)
class GateThresholds:
    """Tolerances of the promotion gate (defaults are configurable, not law)."""

    auc_tolerance: float = 0.01  # challenger AUC may be at most this much lower
    brier_tolerance: float = 0.002  # … Brier at most this much higher
    ece_tolerance: float = 0.01  # … ECE at most this much higher
    grade_psi_limit: float = 0.1  # grade-share shift champion → challenger on the same subjects
    n_boot: int = 200
    seed: int = 0


@dataclass(frozen=True)
class GateCheck:
    """One check of the gate with the figures behind it."""

    name: str
    passed: bool
    challenger: float
    champion: float | None
    limit: float | None
    detail: str


@dataclass(frozen=True)
class GateResult:
    """Outcome of the gate: passed only if every check passed."""

    passed: bool
    checks: tuple[GateCheck, ...]
    n_subjects: int
    n_bads: int
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> tuple[GateCheck, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def summary(self) -> str:
        """One line per check, for the CLI and the audit."""
        lines = []
        for c in self.checks:
            mark = "PASS" if c.passed else "FAIL"
            lines.append(f"[{mark}] {c.name}: {c.detail}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "passed": self.passed,
            "n_subjects": self.n_subjects,
            "n_bads": self.n_bads,
            "figures": dict(self.figures),
            "checks": [asdict(c) for c in self.checks],
        }


def evaluate_gate(
    y_true: Sequence[int] | np.ndarray,
    challenger_proba: Sequence[float] | np.ndarray,
    challenger_grades: Sequence[str] | np.ndarray,
    champion_proba: Sequence[float] | np.ndarray | None = None,
    champion_grades: Sequence[str] | np.ndarray | None = None,
    *,
    thresholds: GateThresholds | None = None,
) -> GateResult:
    """Compare a challenger with the champion on the same out-of-time subjects.

    Checks: AUC not lower beyond ``auc_tolerance``; Brier and ECE not worse beyond their
    tolerances; observed bad rates non-decreasing A→D under the challenger's grades; grade-share
    PSI between the two models within ``grade_psi_limit``. Without a champion only the
    challenger's own grade monotonicity is checked (the first model becomes champion).
    """
    t = thresholds or GateThresholds()
    y = np.asarray(y_true, dtype=int)
    p_new = np.asarray(challenger_proba, dtype=float)
    g_new = np.asarray(challenger_grades, dtype=object)
    if not (len(y) == len(p_new) == len(g_new)):
        raise ValueError(
            f"y_true ({len(y)}), challenger_proba ({len(p_new)}) and challenger_grades ({len(g_new)}) "
            "must describe the same subjects"
        )
    if (champion_proba is None) != (champion_grades is None):
        raise ValueError("champion_proba and champion_grades must be given together")
    checks: list[GateCheck] = []
    figures: dict[str, float] = {
        "challenger_auc": ev.auc(y, p_new),
        "challenger_brier": brier_score(y, p_new),
        "challenger_ece": expected_calibration_error(y, p_new),
    }
    if champion_proba is not None:
        p_old = np.asarray(champion_proba, dtype=float)
        g_old = np.asarray(champion_grades, dtype=object)
        if len(p_old) != len(y) or len(g_old) != len(y):
            raise ValueError(f"champion predictions cover {len(p_old)} subjects, the frame has {len(y)}")
        diff = ev.paired_auc_difference(y, p_new, p_old, n_boot=t.n_boot, seed=t.seed)
        old_auc = ev.auc(y, p_old)
        figures.update(
            champion_auc=old_auc,
            champion_brier=brier_score(y, p_old),
            champion_ece=expected_calibration_error(y, p_old),
            auc_difference=diff.value,
            auc_difference_low=diff.low,
            auc_difference_high=diff.high,
        )
        checks.append(
            GateCheck(
                "auc",
                bool(diff.value >= -t.auc_tolerance),
                figures["challenger_auc"],
                old_auc,
                t.auc_tolerance,
                f"AUC {figures['challenger_auc']:.4f} vs champion {old_auc:.4f}: difference "
                f"{diff.value:+.4f} (95 % CI {diff.low:+.4f} … {diff.high:+.4f}); may not fall below "
                f"−{t.auc_tolerance}",
            )
        )
        checks.append(
            GateCheck(
                "brier",
                bool(figures["challenger_brier"] <= figures["champion_brier"] + t.brier_tolerance),
                figures["challenger_brier"],
                figures["champion_brier"],
                t.brier_tolerance,
                f"Brier {figures['challenger_brier']:.5f} vs champion {figures['champion_brier']:.5f}; "
                f"may not exceed it by more than {t.brier_tolerance}",
            )
        )
        checks.append(
            GateCheck(
                "ece",
                bool(figures["challenger_ece"] <= figures["champion_ece"] + t.ece_tolerance),
                figures["challenger_ece"],
                figures["champion_ece"],
                t.ece_tolerance,
                f"ECE {figures['challenger_ece']:.4f} vs champion {figures['champion_ece']:.4f}; "
                f"may not exceed it by more than {t.ece_tolerance}",
            )
        )
    table = ev.grade_table(y, g_new)
    monotone = ev.grades_monotone(table)
    rates = ", ".join(
        f"{r.grade} {r.bad_rate:.3f}" for r in table.itertuples() if r.count > 0
    )
    checks.append(
        GateCheck(
            "grade_monotonicity",
            monotone,
            float(monotone),
            None,
            None,
            f"observed bad rate by grade: {rates}; must not decrease from A to D",
        )
    )
    if champion_grades is not None:
        shift = decile_psi(np.asarray(champion_grades, dtype=object), g_new, categorical=True).psi
        figures["grade_psi"] = shift
        checks.append(
            GateCheck(
                "grade_share_shift",
                bool(shift <= t.grade_psi_limit),
                shift,
                None,
                t.grade_psi_limit,
                f"PSI of grade shares champion → challenger {shift:.4f}; limit {t.grade_psi_limit}",
            )
        )
    return GateResult(
        passed=all(c.passed for c in checks),
        checks=tuple(checks),
        n_subjects=len(y),
        n_bads=int(y.sum()),
        figures=figures,
    )
