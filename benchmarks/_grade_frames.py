"""The synthetic monthly grades the bulk-load benchmarks store (city_scale.py, bulk_load.py): one
frame per month end of 2026, scores drawn around 650, five reasons per grade."""

from __future__ import annotations

import argparse
import datetime as dt
import json

import numpy as np
import pandas as pd


def bench_reasons(i: int | None = None, *, sentences: bool = False) -> str:
    """Five reasons as a grade stores them; with ``i``, that grade's own contributions and records.
    With ``sentences`` the labels are the model's own sentences (``models.explain``: five model
    inputs' templates, both languages, the grade's own counts), as the pipeline stores them."""
    shift, tag = (0.0, "") if i is None else ((i % 1000) / 100, f"{i}-")
    reasons = []
    for k in range(5):
        value = k if i is None else (i * 7 + k) % 4 + 1
        label_zh, label_en = _sentences(k, value) if sentences else (f"原因{k}", f"reason {k}")
        reasons.append({"code": _CODES[k] if sentences else f"reason_{k}", "label_zh": label_zh, "label_en": label_en,
                        "contribution": -4.0 * k - shift, "value": value, "record_ids": [f"R{tag}{k}"]})
    return json.dumps(reasons, ensure_ascii=False)


_CODES = ("n_penalty_12m", "n_enforcement_36m", "n_inspection_problem_12m", "n_complaint_36m", "n_inspection_36m")


def _sentences(k: int, value: int) -> tuple[str, str]:
    from features.specs import FEATURE_SPECS
    from models.explain import render_feature_reason
    from training.pipeline import feature_metas_from_specs

    global _METAS
    if _METAS is None:
        _METAS = {m.name: m for m in feature_metas_from_specs(FEATURE_SPECS)}
    return render_feature_reason(_METAS[_CODES[k]], value, 1.0)


_METAS = None


def month_grades(codes: np.ndarray, month: int, reasons: str | list[str],
                 rng: np.random.Generator) -> tuple[dt.date, pd.DataFrame]:
    """The grades of ``codes`` at the end of 2026's month ``month + 1`` (0-based)."""
    as_of = (dt.date(2026, 1, 1) + pd.DateOffset(months=month + 1) - dt.timedelta(days=1)).date()
    n = len(codes)
    scores = rng.normal(650, 60, n).round(1)
    frame = pd.DataFrame({"uscc": codes, "as_of": as_of, "score": scores,
                          "grade": np.select([scores < 560, scores < 620, scores < 700], ["D", "C", "B"], "A"),
                          "probability": rng.random(n).round(4), "model_version": "city-bench",
                          "profile_hash": "p2" + "0" * 62, "base_score": 620.0, "reasons": reasons,
                          "what_if": "[]"})
    return as_of, frame


def grade_load_options(parser: argparse.ArgumentParser, *, as_of: int) -> None:
    """The workload of a bulk-load benchmark: ``--subjects`` N, ``--as-of`` monthly grade loads of
    N rows each (the first a first load, then regrades), stored ``--batch-rows`` at a time, with one
    shared reasons text or (``--distinct-reasons``) each grade its own."""
    parser.add_argument("--subjects", type=int, default=200_000)
    parser.add_argument("--as-of", type=int, default=as_of,
                        help="monthly grade loads of N rows each (grade rows = subjects × as-of)")
    parser.add_argument("--batch-rows", type=int, default=50_000)
    parser.add_argument("--distinct-reasons", action="store_true", help="each grade its own reasons text (as real ones)")
