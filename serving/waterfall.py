"""Geometry of the contribution waterfall drawn (as SVG) on the enterprise page."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WaterfallBar:
    label: str
    value: float
    start: float
    end: float
    kind: str  # base | up | down | total
    x: float
    width: float
    y: float


def waterfall_bars(base_score: float, contributions: list[tuple[str, float]], base_label: str,
                   total_label: str, *, width: float = 560.0, row_height: float = 26.0,
                   left: float = 170.0) -> tuple[list[WaterfallBar], float]:
    """Bars from the base score through each contribution to the final score.

    Returns the bars and the SVG height. The final bar ends at base + sum(contributions).
    """
    running, spans = base_score, [(base_label, base_score, 0.0, base_score, "base")]
    for label, value in contributions:
        spans.append((label, value, running, running + value, "up" if value >= 0 else "down"))
        running += value
    spans.append((total_label, running, 0.0, running, "total"))
    # the axis starts just below the lowest running total (not at 0), so contributions of a few
    # points stay visible next to a base of several hundred; base and total bars start at the axis
    levels = [base_score, running] + [e for _, _, _, e, k in spans if k in ("up", "down")]
    spread = max(levels) - min(levels)
    low = min(levels) - max(spread * 0.25, 1.0)
    high = max(levels) + max(spread * 0.05, 1.0)
    spans = [(lb, v, low if k in ("base", "total") else s, e, k) for lb, v, s, e, k in spans]
    scale = (width - left - 50.0) / (high - low)
    bars = []
    for i, (label, value, start, end, kind) in enumerate(spans):
        x0 = left + (min(start, end) - low) * scale
        bars.append(WaterfallBar(label, value, start, end, kind, round(x0, 1),
                                 round(max(abs(end - start) * scale, 1.0), 1), 8 + i * row_height))
    return bars, 16 + len(spans) * row_height
