"""Geometry of the contribution waterfall drawn (as SVG) on the enterprise page."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

LINE_HEIGHT = 14.0  # px between the lines of a wrapped label (12 px text)


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
    lines: tuple[str, ...] = field(default=())  # the label wrapped to the label column, never cut


def _width(text: str) -> float:
    """Width of ``text`` in 12 px text, roughly: a CJK character 12 px, other characters ~6.6 px."""
    return sum(12.0 if unicodedata.east_asian_width(c) in "WF" else 6.6 for c in text)


def wrap_label(label: str, max_width: float) -> tuple[str, ...]:
    """``label`` in lines no wider than ``max_width`` px: at spaces for words, between characters
    for Chinese (a word longer than a line is split only then); nothing is dropped."""
    lines: list[str] = []
    current = ""
    for token in _tokens(label):
        candidate = current + token if current else token.lstrip()
        if current and _width(candidate.rstrip()) > max_width:
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current = candidate
        while _width(current.rstrip()) > max_width and len(current) > 1:  # one token wider than a line
            cut = max(1, next(i for i in range(len(current), 0, -1) if _width(current[:i]) <= max_width))
            lines.append(current[:cut])
            current = current[cut:]
    if current.strip():
        lines.append(current.rstrip())
    return tuple(lines) or ("",)


def _tokens(label: str) -> list[str]:
    """Words with their leading space, and each CJK character on its own (a line may end after it)."""
    tokens: list[str] = []
    word = ""
    for c in label:
        if unicodedata.east_asian_width(c) in "WF":
            if word:
                tokens.append(word)
                word = ""
            tokens.append(c)
        elif c == " ":
            if word:
                tokens.append(word)
            word = " "
        else:
            word += c
    if word:
        tokens.append(word)
    return tokens


def waterfall_bars(base_score: float, contributions: list[tuple[str, float]], base_label: str,
                   total_label: str, *, width: float = 560.0, row_height: float = 26.0,
                   left: float = 170.0) -> tuple[list[WaterfallBar], float]:
    """Bars from the base score through each contribution to the final score.

    Returns the bars and the SVG height. The final bar ends at base + sum(contributions). Labels
    are wrapped to the label column (``WaterfallBar.lines``); rows grow to hold the longest.
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
    wrapped = [wrap_label(label, left - 10.0) for label, *_ in spans]
    row_height = max(row_height, 12.0 + LINE_HEIGHT * max(len(w) for w in wrapped))
    bars = []
    for i, (label, value, start, end, kind) in enumerate(spans):
        x0 = left + (min(start, end) - low) * scale
        bars.append(WaterfallBar(label, value, start, end, kind, round(x0, 1),
                                 round(max(abs(end - start) * scale, 1.0), 1), 8 + i * row_height, wrapped[i]))
    return bars, 16 + len(spans) * row_height
