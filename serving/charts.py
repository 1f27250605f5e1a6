"""Geometry of the model report's charts, drawn as inline SVG by the page (no script, no network):
calibration (predicted vs observed per bin), the score distribution by grade, and shape functions
(the points a feature adds or takes, by its value). Pure functions of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from models.meta import GRADES
from models.scorecard import SCORE_PDO

POINTS_PER_LOG_ODDS = SCORE_PDO / math.log(2.0)  # the score scale's points per unit log-odds


@dataclass(frozen=True)
class Frame:
    """A plot area: the SVG size and the inner box the data is mapped into."""

    width: float = 460.0
    height: float = 300.0
    left: float = 56.0
    right: float = 16.0
    top: float = 14.0
    bottom: float = 40.0

    @property
    def inner_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def inner_h(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, value: float, low: float, high: float) -> float:
        return round(self.left + (value - low) / ((high - low) or 1.0) * self.inner_w, 1)

    def y(self, value: float, low: float, high: float) -> float:
        return round(self.top + (1 - (value - low) / ((high - low) or 1.0)) * self.inner_h, 1)


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass
class Chart:
    frame: Frame
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    line: str = ""  # an SVG points list
    extra: dict[str, Any] = field(default_factory=dict)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def _ticks(low: float, high: float, n: int, fmt: str) -> list[float]:
    return [low + (high - low) * i / n for i in range(n + 1)]


def calibration_chart(reliability: Sequence[dict[str, Any]], frame: Frame | None = None) -> Chart:
    """Mean predicted vs observed adverse rate per probability bin (with its 95 % interval) and
    the diagonal of perfect calibration; both axes share one scale."""
    frame = frame or Frame()
    rows = [r for r in reliability if r.get("mean_predicted") is not None and r.get("observed_rate") is not None]
    top = _nice_max(max([0.01] + [max(r["mean_predicted"], r.get("ci_high") or r["observed_rate"]) for r in rows]))
    chart = Chart(frame)
    for v in _ticks(0.0, top, 5, "%"):
        label = f"{100 * v:.0f}%" if top >= 0.05 else f"{100 * v:.1f}%"
        chart.x_ticks.append(Tick(frame.x(v, 0, top), label))
        chart.y_ticks.append(Tick(frame.y(v, 0, top), label))
    for r in rows:
        low, high = r.get("ci_low"), r.get("ci_high")
        chart.items.append({
            "cx": frame.x(r["mean_predicted"], 0, top), "cy": frame.y(r["observed_rate"], 0, top),
            "y_low": frame.y(low if low is not None else r["observed_rate"], 0, top),
            "y_high": frame.y(min(high, top) if high is not None else r["observed_rate"], 0, top),
            "count": int(r.get("count", 0)), "predicted": r["mean_predicted"], "observed": r["observed_rate"]})
    chart.extra = {"diagonal": (frame.x(0, 0, top), frame.y(0, 0, top), frame.x(top, 0, top), frame.y(top, 0, top))}
    return chart


def grade_score_chart(scores: Sequence[float], grades: Sequence[str], *, bins: int = 24,
                      frame: Frame | None = None) -> Chart:
    """A histogram of scores, each bar stacked by grade (how the grades split the score range)."""
    frame = frame or Frame(width=560.0)
    s = np.asarray(scores, dtype=float)
    g = np.asarray(grades, dtype=object)
    chart = Chart(frame)
    if s.size == 0:
        return chart
    low, high = math.floor(s.min() / 10) * 10, math.ceil(s.max() / 10) * 10
    high = high if high > low else low + 10
    edges = np.linspace(low, high, bins + 1)
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
    counts = {grade: np.bincount(idx[g == grade], minlength=bins) for grade in GRADES}
    total = sum(counts.values())
    ymax = _nice_max(float(total.max()))
    for v in _ticks(0, ymax, 4, "d"):
        chart.y_ticks.append(Tick(frame.y(v, 0, ymax), f"{v:.0f}"))
    for v in np.linspace(low, high, 7):
        chart.x_ticks.append(Tick(frame.x(float(v), low, high), f"{v:.0f}"))
    bar_w = frame.inner_w / bins
    for b in range(bins):
        base = 0
        for grade in GRADES:
            n = int(counts[grade][b])
            if n == 0:
                continue
            y_top, y_bottom = frame.y(base + n, 0, ymax), frame.y(base, 0, ymax)
            chart.items.append({"x": round(frame.left + b * bar_w + 0.5, 1), "w": round(max(bar_w - 1, 1), 1),
                                "y": y_top, "h": round(y_bottom - y_top, 1), "grade": grade, "count": n,
                                "from": round(float(edges[b])), "to": round(float(edges[b + 1]))})
            base += n
    chart.extra = {"counts": {grade: int(counts[grade].sum()) for grade in GRADES}}
    return chart


def shape_chart(values: Sequence[float], contributions: Sequence[float], *, max_points: int = 12,
                frame: Frame | None = None) -> Chart | None:
    """The points a feature adds to the score (negative: takes away) by its value: the mean
    contribution at each value (or quantile bin when it takes many values). None when the
    feature has fewer than two distinct values in the data."""
    frame = frame or Frame(width=300.0, height=200.0, left=48.0, bottom=34.0)
    x = np.asarray(values, dtype=float)
    c = -POINTS_PER_LOG_ODDS * np.asarray(contributions, dtype=float)  # + log-odds of risk = − points
    keep = np.isfinite(x) & np.isfinite(c)
    x, c = x[keep], c[keep]
    distinct = np.unique(x)
    if distinct.size < 2:
        return None
    if distinct.size <= max_points:
        centres = distinct
        means = np.array([c[x == v].mean() for v in distinct])
    else:
        edges = np.unique(np.quantile(x, np.linspace(0, 1, max_points + 1)))
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
        present = np.unique(idx)
        centres = np.array([x[idx == i].mean() for i in present])
        means = np.array([c[idx == i].mean() for i in present])
    xlow, xhigh = float(centres.min()), float(centres.max())
    span = max(float(np.abs(means).max()), 1.0)
    ylow, yhigh = -_nice_max(span), _nice_max(span)
    chart = Chart(frame)
    for v in (ylow, ylow / 2, 0.0, yhigh / 2, yhigh):
        chart.y_ticks.append(Tick(frame.y(v, ylow, yhigh), f"{v:+.0f}" if v else "0"))
    for v in np.linspace(xlow, xhigh, 4):
        chart.x_ticks.append(Tick(frame.x(float(v), xlow, xhigh), _short(float(v))))
    points = [(frame.x(float(cx), xlow, xhigh), frame.y(float(m), ylow, yhigh)) for cx, m in zip(centres, means,
                                                                                                strict=True)]
    chart.line = " ".join(f"{px},{py}" for px, py in points)
    chart.items = [{"cx": px, "cy": py, "value": float(cx), "points": round(float(m), 1)}
                   for (px, py), cx, m in zip(points, centres, means, strict=True)]
    chart.extra = {"zero": frame.y(0.0, ylow, yhigh)}
    return chart


def _short(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    if value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
