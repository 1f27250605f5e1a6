"""Record-level data quality of a feed (department × record kind) against its own history.

The one place the rules live: ingestion's gates (:mod:`features.gates`, on a staged batch before it
is published) and monitoring's feed view (:mod:`monitoring.feeds`, on a month of the store) both call
:func:`check_feeds`. It compares the rows of view ``qb`` (the batch, or the month) with view ``qh``
(the feed's published history: one row per record, its latest version) in a DuckDB connection, so
a batch of millions of rows is aggregated where it lies; only aggregates come back to Python.

Both views need ``record_id, uscc, kind, subkind, severity, decision_date, amount, department,
document_no, district_code``. Rules (thresholds in :class:`QualityConfig`, ``features/quality.toml``):

* ``volume_surge`` / ``volume_silence``: the feed's rows against the median of its trailing months,
  improbable under its own variance (negative binomial); silence at the batch's own level (the
  median feed's ratio: a seasonal month lowers every feed alike); ``district_silence``: a district's rows of a
  department against its share of the department's history;
* ``amount_unit``: log10(amount) unlike the history (KS) but like it once moved by a power of ten (×10 … ×10,000 or
  the inverse): a probable unit change; ``amount_tail``: part of the feed beyond tail_factor × the
  history's 99th percentile; ``amount_shift``: a smaller significant shift of level (a real change);
* ``category_recoded`` / ``category_vanished`` / ``category_appeared`` / ``category_mix``;
* ``date_far_past``, ``date_future``, ``date_late`` (a backlog), ``date_swap`` (day and month
  exchanged: dates outside the expected window whose swap falls inside it);
* ``duplicate``: same subject and document number, or same subject, department, date, kind and
  amount, under another record id (in the batch or the history).

A feed with fewer than ``history.min_months`` months of history (an office's first month, a new
feed) is checked only by the rules that need no history (dates, duplicates). Every
:class:`Finding` names the feed, the rule, the observed value, the threshold and example record ids,
with a message in Chinese and English.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
from pydantic import Field
from scipy.stats import chi2_contingency, ks_2samp, nbinom, poisson

from configfile import load_toml_file
from features.quality_extra_config import (
    Action,
    CollapseRules,
    CutRules,
    QuarantineRules,
    RegisterRules,
    Section,
    SwapRules,
)

GATE_COLUMNS = ("record_id", "uscc", "kind", "subkind", "severity", "decision_date", "amount", "department",
                "document_no", "district_code")
EXAMPLES = 5
_NULL = "∅"


class HistoryRules(Section):
    trailing_months: int = Field(12, ge=2, le=60)
    min_months: int = Field(3, ge=1)
    window_days: int = Field(62, ge=7, le=400)


class VolumeRules(Section):
    surge_ratio: float = Field(1.8, gt=1)
    hold_ratio: float = Field(3.0, gt=1)
    silence_fraction: float = Field(0.2, gt=0, lt=1)
    level_floor: float = Field(0.5, gt=0, le=1)
    min_median: float = Field(8, ge=1)
    alpha: float = Field(0.001, gt=0, lt=1)
    surge_action: Action = "warn"
    hold_action: Action = "hold"
    silence_action: Action = "warn"


class AmountRules(Section):
    min_rows: int = Field(8, ge=3)
    min_history: int = Field(30, ge=5)
    unit_steps: list[int] = Field(default_factory=lambda: [1, 2, 3, 4])
    alpha: float = Field(1e-4, gt=0, lt=1)
    # the scaled batch fits when the same test no longer tells it from the history at alpha: a stricter
    # fit bar (it was 0.01) refused clean months that are ordinary 1-in-200 draws, so a ×10 went unheld
    fit_p: float = Field(1e-4, gt=0, lt=1)
    fit_ratio: float = Field(0.6, gt=0, lt=1)
    history_sample: int = Field(4000, ge=100)
    shift_z: float = Field(3.0, gt=0)
    min_shift: float = Field(0.15, gt=0)
    tail_factor: float = Field(10.0, gt=1)
    tail_min_rows: int = Field(3, ge=1)
    tail_share: float = Field(0.03, gt=0, le=1)
    unit_action: Action = "hold"
    shift_action: Action = "warn"


class CategoryRules(Section):
    columns: list[Literal["subkind", "severity"]] = Field(default_factory=lambda: ["subkind", "severity"])
    min_share: float = Field(0.10, gt=0, lt=1)
    min_expected: float = Field(8, ge=1)
    new_min_rows: int = Field(5, ge=1)
    new_min_share: float = Field(0.10, gt=0, le=1)
    alpha: float = Field(0.001, gt=0, lt=1)
    min_points: float = Field(15.0, gt=0, le=100)
    recoded_action: Action = "hold"
    vanished_action: Action = "warn"
    appeared_action: Action = "warn"
    mix_action: Action = "warn"
    district_fraction: float = Field(0.25, gt=0, lt=1)
    district_min_expected: float = Field(10, ge=1)


class DateRules(Section):
    far_past_years: int = Field(10, ge=1)
    far_past_share: float = Field(0.05, gt=0, le=1)
    min_rows: int = Field(5, ge=1)
    late_share: float = Field(0.5, gt=0, le=1)
    late_min_rows: int = Field(20, ge=1)
    swap_share: float = Field(0.10, gt=0, le=1)
    swap_min_rows: int = Field(5, ge=1)
    date_action: Action = "hold"
    late_action: Action = "warn"
    swap_action: Action = "hold"


class DuplicateRules(Section):
    min_rows: int = Field(5, ge=1)
    share: float = Field(0.02, gt=0, le=1)
    action: Action = "hold"


class QualityConfig(Section):
    """Every gate rule; a missing table takes its defaults, an unknown key is an error."""

    history: HistoryRules = HistoryRules()
    volume: VolumeRules = VolumeRules()
    amount: AmountRules = AmountRules()
    category: CategoryRules = CategoryRules()
    dates: DateRules = DateRules()
    duplicates: DuplicateRules = DuplicateRules()
    # the rules of features.quality_rules_extra
    collapse: CollapseRules = CollapseRules()
    swap: SwapRules = SwapRules()
    cut: CutRules = CutRules()
    quarantine: QuarantineRules = QuarantineRules()
    registry: RegisterRules = RegisterRules()


class QualityConfigError(ValueError):
    """The quality TOML is unreadable or breaks a rule; the message names the field, value and rule."""


def load_quality_config(path: Path | str | None = None) -> QualityConfig:
    """Read and validate the gate rules from ``path`` (default: the packaged ``quality.toml``)."""
    return load_toml_file(QualityConfig, path, package="features", name="quality.toml",
                          label="数据质量规则无效 / quality rules", error=QualityConfigError)


@dataclass(frozen=True)
class Finding:
    """One rule tripped by one feed: what was seen, against what, with examples."""

    feed: str            # "department/kind", or "department/*" for department-level rules
    rule: str
    action: Action
    observed: float
    threshold: float
    examples: list[str] = field(default_factory=list)
    detail: dict = field(default_factory=dict)
    message: str = ""    # Chinese
    message_en: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _upper_tail(observed: int, mean: float, var: float) -> float:
    """P(X ≥ observed) for a count with this trailing mean and variance (negative binomial, or Poisson)."""
    if mean <= 0:
        return 1.0
    if not np.isfinite(var) or var <= mean:
        return float(poisson.sf(observed - 1, mean))
    size = mean**2 / (var - mean)
    return float(nbinom.sf(observed - 1, size, size / (size + mean)))


def _lower_tail(observed: int, mean: float, var: float) -> float:
    """P(X ≤ observed) for a count with this trailing mean and variance."""
    if mean <= 0:
        return 1.0
    if not np.isfinite(var) or var <= mean:
        return float(poisson.cdf(observed, mean))
    size = mean**2 / (var - mean)
    return float(nbinom.cdf(observed, size, size / (size + mean)))


upper_tail = _upper_tail  # monitoring.flow's test of a segment's surge is this one


def _feed(dept: object, kind: object) -> str:
    return f"{dept}/{kind}"


def _examples(con: duckdb.DuckDBPyConnection, where: str, params: list | None = None) -> dict[str, list[str]]:
    """Up to EXAMPLES record ids of the batch per feed matching ``where`` (SQL over ``qb``)."""
    rows = con.execute(
        f"SELECT department, kind, min(record_id, {EXAMPLES}) AS ids FROM qb "  # the smallest ids, no full sort
        f"WHERE {where} GROUP BY ALL", params or []).fetchall()
    return {_feed(d, k): list(ids) for d, k, ids in rows}


def _month_start(d: date) -> date:
    return d.replace(day=1)


def _add_months(d: date, n: int) -> date:
    m = d.year * 12 + d.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


# --------------------------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------------------------
def check_feeds(con: duckdb.DuckDBPyConnection, *, as_of: date, config: QualityConfig | None = None) -> list[Finding]:
    """Every finding of the rows of view ``qb`` against view ``qh`` at ``as_of`` (the ingestion date,
    or the end of the month monitored); see the module docstring. Read-only on ``con``'s views."""
    config = config or QualityConfig()
    period = _month_start(as_of - timedelta(days=1))
    first = _add_months(period, -config.history.trailing_months)
    # the history is read once: the trailing window (every statistic) and the batch's own dates (the
    # duplicates); each rule then scans this table, not the store's current state again
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE qh_near AS
        WITH span AS (SELECT min(decision_date) AS lo, max(decision_date) AS hi FROM qb)
        SELECT {", ".join(f"h.{c}" for c in GATE_COLUMNS)} FROM qh h, span
        WHERE (h.decision_date >= DATE '{first.isoformat()}' AND h.decision_date < DATE '{period.isoformat()}')
           OR h.decision_date BETWEEN span.lo AND span.hi""")
    con.execute("CREATE OR REPLACE TEMP VIEW qh_window AS SELECT * FROM qh_near "
                f"WHERE decision_date >= DATE '{first.isoformat()}' AND decision_date < DATE '{period.isoformat()}'")
    history = _history_months(con, first, period, config)
    findings: list[Finding] = []
    findings += _volume(con, history, config)
    findings += _districts(con, history, config)
    findings += _amounts(con, history, config)
    findings += _categories(con, history, config)
    findings += _dates(con, as_of, config, set(_established(history, config)["feed"]))
    findings += _duplicates(con, config)
    return findings


def _history_months(con, first: date, period: date, config: QualityConfig) -> pd.DataFrame:
    """Per feed: its monthly counts in the trailing window (0 for an empty month after its first),
    months of history, median and variance."""
    counts = con.execute("SELECT department, kind, date_trunc('month', decision_date)::DATE AS month, count(*) AS n "
                         "FROM qh_window GROUP BY ALL").df()
    months = pd.date_range(first, period, freq="MS", inclusive="left")
    out = []
    if len(counts):
        counts["month"] = pd.to_datetime(counts["month"])
        matrix = counts.pivot_table(index=["department", "kind"], columns="month", values="n", aggfunc="sum")
        matrix = matrix.reindex(columns=months)
        for (dept, kind), row in matrix.iterrows():
            values = row.to_numpy(dtype=float)
            seen = np.flatnonzero(~np.isnan(values))
            values = np.nan_to_num(values[seen[0]:]) if len(seen) else np.array([])
            out.append({"department": dept, "kind": kind, "feed": _feed(dept, kind), "months": len(values),
                        "median": float(np.median(values)) if len(values) else 0.0,
                        "var": float(np.var(values, ddof=1)) if len(values) > 1 else float("nan")})
    return pd.DataFrame(out, columns=["department", "kind", "feed", "months", "median", "var"])


def _established(history: pd.DataFrame, config: QualityConfig) -> pd.DataFrame:
    return history[history["months"] >= config.history.min_months]


def _volume(con, history: pd.DataFrame, config: QualityConfig) -> list[Finding]:
    rules = config.volume
    batch = con.execute("SELECT department, kind, count(*) AS n FROM qb GROUP BY ALL").df()
    # a department absent from the batch is another office's file, not silence (monitoring's monthly
    # silent_feed sees a department that stopped); a department present with a kind gone quiet is
    present = set(batch["department"])
    merged = _established(history, config).merge(batch, on=["department", "kind"], how="left").fillna({"n": 0})
    merged = merged[merged["department"].isin(present)]
    out = []
    merged = merged[merged["median"] >= rules.min_median]
    alpha = rules.alpha / max(len(merged), 1)  # Bonferroni over the feeds tested
    # the batch's own level: a seasonal month moves every feed alike (×0.7 at Spring Festival), a feed
    # that stopped moves alone. Silence is judged against the median × the median feed's ratio (≤ 1,
    # floored: a drop shared by most feeds is not seasonal), so a quiet feed's ordinary low draw in a
    # low month is not a stop (a ratio to the median alone warned on 2 records of a median of 16)
    level = float(np.clip(np.median(merged["n"] / merged["median"]), rules.level_floor, 1.0)) if len(merged) else 1.0
    examples: dict[str, list[str]] | None = None
    for r in merged.itertuples():
        n = int(r.n)
        ratio = n / r.median
        if ratio >= rules.surge_ratio and _upper_tail(n, r.median, r.var) < alpha:
            hold = ratio >= rules.hold_ratio
            action = rules.hold_action if hold else rules.surge_action
            threshold = rules.hold_ratio if hold else rules.surge_ratio
            if examples is None:  # one query for every feed
                examples = _examples(con, "true")
            ids = examples.get(r.feed, [])
            out.append(Finding(r.feed, "volume_surge", action, round(ratio, 3), threshold, ids,
                               {"records": n, "trailing_median": r.median, "history_months": int(r.months)},
                               f"数据源 {r.feed} 本批 {n} 条，为近 {int(r.months)} 个月中位数 {r.median:g} 的 "
                               f"{ratio:.2f} 倍（阈值 {threshold:g} 倍）：可能重复报送或积压补报",
                               f"feed {r.feed}: {n} records, {ratio:.2f} × the median {r.median:g} of its last "
                               f"{int(r.months)} months (threshold {threshold:g} ×): resent or backlog?"))
            continue
        # the count expected at the batch's level: the feed's months thinned by ``level`` (binomial
        # thinning: mean × p, variance p² × var + p(1 − p) × mean), tested in its own distribution
        expected = r.median * level
        var = level**2 * r.var + level * (1 - level) * r.median if np.isfinite(r.var) else r.var
        low = n / expected
        if low <= rules.silence_fraction and _lower_tail(n, expected, var) < alpha:
            out.append(Finding(r.feed, "volume_silence", rules.silence_action, round(low, 3), rules.silence_fraction,
                               [], {"records": n, "trailing_median": r.median, "history_months": int(r.months),
                                    "batch_level": round(level, 3), "expected": round(expected, 1)},
                               f"数据源 {r.feed} 本批仅 {n} 条，按近期中位数 {r.median:g} 与本批整体水平"
                               f"（{level:.2f} 倍）应约 {expected:.0f} 条，仅为其 {low:.2f} 倍"
                               f"（阈值 {rules.silence_fraction:g}）：数据源可能中断",
                               f"feed {r.feed}: only {n} records, {low:.2f} × the {expected:.0f} its median "
                               f"{r.median:g} predicts at the batch's level ({level:.2f} ×) "
                               f"(threshold {rules.silence_fraction:g}): the feed may have stopped"))
    return out


def _districts(con, history: pd.DataFrame, config: QualityConfig) -> list[Finding]:
    """A district's rows of one department far below its historical share of the department's rows."""
    rules = config.category
    depts = _established(history, config)["department"].unique().tolist()
    if not depts:
        return []
    hist = con.execute("SELECT department, coalesce(district_code, ?) AS d, count(*) AS n FROM qh_window "
                       "GROUP BY ALL", [_NULL]).df()
    now = con.execute("SELECT department, coalesce(district_code, ?) AS d, count(*) AS n FROM qb GROUP BY ALL",
                      [_NULL]).df()
    out = []
    alpha = config.volume.alpha / max(len(hist), 1)  # Bonferroni over department × district
    for dept in depts:
        h = hist[hist["department"] == dept].set_index("d")["n"]
        b = now[now["department"] == dept].set_index("d")["n"]
        total = int(b.sum())
        if not total or not h.sum():
            continue
        for district, n_hist in h.items():
            expected = total * n_hist / h.sum()
            observed = int(b.get(district, 0))
            if (expected >= rules.district_min_expected and observed <= rules.district_fraction * expected
                    and poisson.cdf(observed, expected) < alpha):
                feed = f"{dept}/*"
                out.append(Finding(feed, "district_silence", config.volume.silence_action,
                                   round(observed / expected, 3), rules.district_fraction, [],
                                   {"district": district, "records": observed, "expected": round(expected, 1)},
                                   f"部门 {dept} 区县 {district} 本批 {observed} 条，按历史占比应约 {expected:.0f} 条"
                                   f"（阈值 {rules.district_fraction:g} 倍）：该区县数据可能中断",
                                   f"department {dept}, district {district}: {observed} records where its share "
                                   f"predicts {expected:.0f} (threshold {rules.district_fraction:g} ×): its feed "
                                   "may have stopped"))
    return out


def _amounts(con, history: pd.DataFrame, config: QualityConfig) -> list[Finding]:
    rules = config.amount
    # the deciles and the 99th percentile of log10(amount): a change of unit moves them all by one step
    q = ("SELECT department, kind, count(*) AS n, quantile_cont(log10(amount), "
         "[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99]) AS q FROM {} WHERE amount > 0 GROUP BY ALL")
    hist = con.execute(q.format("qh_window")).df()
    now = con.execute(q.format("qb")).df()
    hist = hist[hist["n"] >= rules.min_history]
    merged = now.merge(hist, on=["department", "kind"], suffixes=("", "_h"))
    established = set(_established(history, config)["feed"])
    merged = merged[merged.apply(lambda r: _feed(r.department, r.kind) in established and r.n >= rules.min_rows,
                                 axis=1)] if len(merged) else merged
    # the values themselves for the unit test: the batch's, and a fixed sample of each feed's history
    values = "SELECT department, kind, log10(amount) AS v FROM {} WHERE amount > 0"
    batch_values = con.execute(values.format("qb")).df()
    hist_values = con.execute(
        f"SELECT department, kind, v FROM (SELECT department, kind, log10(amount) AS v, row_number() OVER "
        f"(PARTITION BY department, kind ORDER BY hash(record_id)) AS i FROM qh_window WHERE amount > 0) "
        f"WHERE i <= {int(rules.history_sample)}").df()
    by_feed_b = {k: g["v"].to_numpy() for k, g in batch_values.groupby(["department", "kind"])}
    by_feed_h = {k: g["v"].to_numpy() for k, g in hist_values.groupby(["department", "kind"])}
    out = []
    for r in merged.itertuples():
        feed = _feed(r.department, r.kind)
        qb, qh = np.asarray(r.q, dtype=float), np.asarray(r.q_h, dtype=float)
        diffs = qb[:9] - qh[:9]
        shift = float(np.median(diffs))
        sigma = max((qh[7] - qh[1]) / 1.683, 0.05)  # the 20–80 % range of a normal is 1.683 σ
        se = 1.2533 * sigma * math.sqrt(1 / r.n + 1 / r.n_h)
        step, fit = _unit_step(by_feed_b[(r.department, r.kind)], by_feed_h[(r.department, r.kind)], rules)
        detail = {"records": int(r.n), "history_records": int(r.n_h), "log10_shift": round(shift, 3),
                  "decile_shifts": [round(float(x), 3) for x in diffs], "standard_error": round(se, 3)}
        pos = "amount > 0 AND department = ? AND kind = ?"
        detail.update(fit)
        if step:
            factor = 10 ** abs(step)
            word = f"×{factor:,}" if step > 0 else f"÷{factor:,}"
            out.append(Finding(feed, "amount_unit", rules.unit_action, round(shift, 3), float(step),
                               _examples(con, pos, [r.department, r.kind]).get(feed, []), detail,
                               f"数据源 {feed} 金额整体偏移 10^{shift:.2f}（各分位数均约 {word}）：疑似计量单位变更"
                               f"（如万元/元）",
                               f"feed {feed}: amounts shifted by 10^{shift:.2f} at every decile (≈ {word}): "
                               "probable unit change (e.g. 万元 vs 元)"))
            continue
        limit = rules.tail_factor * 10 ** qh[9]
        tail = con.execute(f"SELECT count(*) FROM qb WHERE {pos} AND amount > ?",
                           [r.department, r.kind, limit]).fetchone()[0]
        if tail >= rules.tail_min_rows and tail / r.n >= rules.tail_share:
            ids = _examples(con, f"{pos} AND amount > ?", [r.department, r.kind, limit]).get(feed, [])
            out.append(Finding(feed, "amount_tail", rules.unit_action, round(tail / r.n, 4), rules.tail_share, ids,
                               {**detail, "beyond": round(limit, 2), "rows_beyond": int(tail)},
                               f"数据源 {feed} 有 {tail} 条金额超过历史 99 分位的 {rules.tail_factor:g} 倍"
                               f"（{limit:,.0f}）：部分记录疑似计量单位错误",
                               f"feed {feed}: {tail} amounts beyond {rules.tail_factor:g} × the history's 99th "
                               f"percentile ({limit:,.0f}): part of the feed in another unit?"))
        elif (abs(shift) > rules.shift_z * se and abs(shift) >= rules.min_shift
              # the whole distribution moved, not a few middle deciles switching between two modes of fines
              and np.sum(np.sign(diffs) * np.sign(shift) * np.abs(diffs) >= rules.min_shift / 2) >= 7):
            out.append(Finding(feed, "amount_shift", rules.shift_action, round(shift, 3), rules.min_shift, [], detail,
                               f"数据源 {feed} 金额水平变化 ×{10 ** shift:.2f}（对数偏移 {shift:.2f}，阈值 "
                               f"{rules.min_shift:g}）：非单位倍数，可能是真实变化",
                               f"feed {feed}: amount level changed ×{10 ** shift:.2f} (log10 shift {shift:.2f}, "
                               f"threshold {rules.min_shift:g}): not a unit step, probably a real change"))
    return out


def _unit_step(batch: np.ndarray, hist: np.ndarray, rules: AmountRules) -> tuple[int, dict]:
    """The power of ten that makes the batch's log10 amounts look like the history's, if the batch as
    it is does not (two-sample Kolmogorov–Smirnov: the whole shape, the tails too, not one quantile):
    0 when there is none. The fit of each candidate step goes into the finding's detail."""
    as_is = ks_2samp(batch, hist)
    fit = {"ks_as_is": round(float(as_is.statistic), 3), "p_as_is": float(as_is.pvalue)}
    if as_is.pvalue >= rules.alpha:
        return 0, fit
    steps = [k for s in rules.unit_steps for k in (s, -s)]
    tests = {k: ks_2samp(batch - k, hist) for k in steps}
    best = min(tests, key=lambda k: tests[k].statistic)
    fit.update({"best_step": best, "ks_best": round(float(tests[best].statistic), 3),
                "p_best": float(tests[best].pvalue)})
    if tests[best].pvalue >= rules.fit_p and tests[best].statistic <= rules.fit_ratio * as_is.statistic:
        return best, fit
    return 0, fit


def _categories(con, history: pd.DataFrame, config: QualityConfig) -> list[Finding]:
    rules = config.category
    established = set(_established(history, config)["feed"])
    alpha = rules.alpha / max(len(established) * len(rules.columns), 1)  # Bonferroni over feeds × columns
    out = []
    for column in rules.columns:
        q = (f"SELECT department, kind, coalesce(CAST({column} AS VARCHAR), '{_NULL}') AS v, count(*) AS n "
             "FROM {} GROUP BY ALL")
        hist, now = con.execute(q.format("qh_window")).df(), con.execute(q.format("qb")).df()
        # one grouping of the history, not a filter of it per feed
        by_feed = {key: g.set_index("v")["n"] for key, g in hist.groupby(["department", "kind"])}
        empty = pd.Series([], dtype="int64")
        for (dept, kind), b in now.groupby(["department", "kind"]):
            feed = _feed(dept, kind)
            if feed not in established:
                continue
            h = by_feed.get((dept, kind), empty)
            b = b.set_index("v")["n"]
            if h.sum() == 0 or set(h.index) == {_NULL}:
                continue
            n, hs = int(b.sum()), h / h.sum()
            vanished = [v for v, s in hs.items() if s >= rules.min_share and n * s >= rules.min_expected
                        and int(b.get(v, 0)) == 0]
            appeared = [v for v, c in b.items() if v not in h.index and c >= rules.new_min_rows
                        and c / n >= rules.new_min_share]
            values = sorted(set(h.index) | set(b.index))
            table = np.array([[h.get(v, 0) for v in values], [b.get(v, 0) for v in values]], dtype=float)
            points = 100 * (table[1] / n - table[0] / table[0].sum())
            p = chi2_contingency(table + 0.5)[1] if len(values) > 1 else 1.0
            grown = [v for v, pt in zip(values, points, strict=True) if pt >= rules.min_points]
            detail = {"column": column, "history": {str(k): int(v) for k, v in h.items()},
                      "batch": {str(k): int(v) for k, v in b.items()}}
            if vanished and (appeared or (grown and p < alpha)):
                into = appeared or grown
                ids = _examples(con, f"department = ? AND kind = ? AND CAST({column} AS VARCHAR) IN "
                                f"({', '.join('?' * len(into))})", [dept, kind, *into]).get(feed, [])
                out.append(Finding(feed, "category_recoded", rules.recoded_action, len(vanished), 1, ids, detail,
                                   f"数据源 {feed} 字段 {column}：{'、'.join(vanished)} 消失而 {'、'.join(into)} "
                                   "出现或激增：疑似代码重编",
                                   f"feed {feed}, {column}: {', '.join(vanished)} vanished while "
                                   f"{', '.join(into)} appeared or grew: probable recoding"))
                continue
            for v in vanished:
                out.append(Finding(feed, "category_vanished", rules.vanished_action, 0, round(float(hs[v]), 3), [],
                                   {**detail, "value": v},
                                   f"数据源 {feed} 字段 {column} 的取值 {v}（历史占比 {hs[v]:.0%}）本批未出现",
                                   f"feed {feed}, {column} = {v} ({hs[v]:.0%} of its history) is absent"))
            for v in appeared:
                ids = _examples(con, f"department = ? AND kind = ? AND CAST({column} AS VARCHAR) = ?",
                                [dept, kind, v]).get(feed, [])
                out.append(Finding(feed, "category_appeared", rules.appeared_action, round(b[v] / n, 3),
                                   rules.new_min_share, ids, {**detail, "value": v},
                                   f"数据源 {feed} 字段 {column} 出现历史上没有的取值 {v}（{b[v]} 条）",
                                   f"feed {feed}, {column} = {v} never seen in its history ({b[v]} records)"))
            if not vanished and not appeared and grown and p < alpha:
                out.append(Finding(feed, "category_mix", rules.mix_action, round(float(points.max()), 1),
                                   rules.min_points, [], {**detail, "p_value": float(p)},
                                   f"数据源 {feed} 字段 {column} 构成变化 {points.max():.0f} 个百分点"
                                   f"（阈值 {rules.min_points:g}）",
                                   f"feed {feed}, {column} mix moved {points.max():.0f} points "
                                   f"(threshold {rules.min_points:g})"))
    return out


def _dates(con, as_of: date, config: QualityConfig, established: set[str]) -> list[Finding]:
    rules = config.dates
    window = as_of - timedelta(days=config.history.window_days)
    far = date(as_of.year - rules.far_past_years, as_of.month, min(as_of.day, 28))
    swap = ("(day(decision_date) <= 12 AND day(decision_date) <> month(decision_date) AND decision_date < ? "
            "AND CASE WHEN day(decision_date) <= 12 THEN make_date(year(decision_date), day(decision_date), "
            "month(decision_date)) END BETWEEN ? AND ?)")
    rows = con.execute(
        "SELECT department, kind, count(*) AS n, "
        "count(*) FILTER (WHERE decision_date > ?) AS future, "
        "count(*) FILTER (WHERE decision_date < ?) AS far, "
        "count(*) FILTER (WHERE decision_date < ?) AS late, "
        f"count(*) FILTER (WHERE {swap}) AS swapped, count(*) FILTER (WHERE decision_date BETWEEN ? AND ?) AS inside "
        "FROM qb GROUP BY ALL",
        [as_of, far, window, window, window, as_of, window, as_of]).df()
    out = []
    examples: dict[str, dict[str, list[str]]] = {}
    for r in rows.itertuples():
        feed = _feed(r.department, r.kind)
        for rule, count, share, min_rows, action, cond, params, zh, en in (
            ("date_future", r.future, 0.0, 1, rules.date_action, "decision_date > ?", [as_of],
             f"决定日期晚于入库日期 {as_of}", f"decision dates after the ingestion date {as_of}"),
            ("date_far_past", r.far, rules.far_past_share, rules.min_rows, rules.date_action, "decision_date < ?",
             [far], f"决定日期早于 {far}（{rules.far_past_years} 年前）：疑似年份或格式错误",
             f"decision dates before {far} ({rules.far_past_years} years ago): wrong year or format?"),
            ("date_swap", r.swapped, rules.swap_share, rules.swap_min_rows, rules.swap_action, swap,
             [window, window, as_of], "日期在近期窗口之外、日月互换后落入窗口：疑似日/月颠倒",
             "dates outside the recent window that fall inside it with day and month swapped: day/month swap?"),
            ("date_late", r.late, rules.late_share, rules.late_min_rows, rules.late_action, "decision_date < ?",
             [window], f"过半记录早于 {window}：积压补报", f"most records dated before {window}: a backlog"),
        ):
            if rule == "date_late" and feed not in established:
                continue  # an office's first load, or a new feed, brings its past: not a backlog
            if rule == "date_swap" and count < 1.5 * r.inside:
                # swapped, a feed's recent records leave the window: more swap back into it than stay
                # (a first load of a year of history has about a third as many candidates as recent rows)
                continue
            if (count >= min_rows and count / r.n > share) or (rule == "date_future" and count):
                if rule not in examples:  # one query per rule for every feed (a query per finding cost seconds)
                    examples[rule] = _examples(con, cond, params)
                ids = examples[rule].get(feed, [])
                out.append(Finding(feed, rule, action, round(count / r.n, 4), share, ids,
                                   {"records": int(r.n), "matching": int(count)},
                                   f"数据源 {feed}：{count}/{r.n} 条{zh}", f"feed {feed}: {count}/{r.n} records, {en}"))
    return out


def _duplicates(con, config: QualityConfig) -> list[Finding]:
    rules = config.duplicates
    # the history near the batch's dates only: a duplicate repeats a record's date. A document number
    # is compared up to its 号 (a resent file suffixes it); same date, kind and amount needs an amount.
    # (up to the first 号 by strpos, not a regular expression: the same text, several times faster on millions)
    doc = ("nullif(CASE WHEN strpos(replace(coalesce({0}.document_no, ''), ' ', ''), '号') > 0 THEN "
           "left(replace(coalesce({0}.document_no, ''), ' ', ''), strpos(replace(coalesce({0}.document_no, ''), ' ', ''), "
           "'号')) ELSE replace(coalesce({0}.document_no, ''), ' ', '') END, '')")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE q_dup AS
        WITH span AS (SELECT min(decision_date) AS lo, max(decision_date) AS hi FROM qb),
        b AS MATERIALIZED (SELECT record_id, uscc, department, kind, decision_date, amount,
                                  {doc.format('qb')} AS doc FROM qb),
        other AS MATERIALIZED (
            SELECT record_id, uscc, department, kind, decision_date, amount, doc FROM b
            UNION ALL
            SELECT h.record_id, h.uscc, h.department, h.kind, h.decision_date, h.amount, {doc.format('h')}
            FROM qh_near h, span WHERE h.decision_date BETWEEN span.lo AND span.hi
        ),
        -- the keys that occur twice, by a 64-bit hash of each key (a grouping of integers): the exact
        -- joins below then see only those rows, not every row of the batch against every other (two
        -- joins of millions of rows of strings outgrew the memory limit and spilled, the check's main
        -- cost at 2.5 M records); a hash collision only adds a candidate the exact join refuses
        k1 AS (SELECT hash(uscc, department, doc) AS h FROM other WHERE doc IS NOT NULL
               GROUP BY ALL HAVING count(*) > 1),
        k2 AS (SELECT hash(uscc, department, kind, decision_date, amount) AS h FROM other WHERE amount IS NOT NULL
               GROUP BY ALL HAVING count(*) > 1),
        b1 AS (SELECT * FROM b WHERE hash(uscc, department, doc) IN (SELECT h FROM k1)),
        o1 AS (SELECT * FROM other WHERE hash(uscc, department, doc) IN (SELECT h FROM k1)),
        b2 AS (SELECT * FROM b WHERE hash(uscc, department, kind, decision_date, amount) IN (SELECT h FROM k2)),
        o2 AS (SELECT * FROM other WHERE hash(uscc, department, kind, decision_date, amount) IN (SELECT h FROM k2)),
        -- two equality joins, not one join on the subject filtered by an OR: a subject with many
        -- records in a department made the OR join quadratic in them
        pairs AS (
            SELECT b.department, b.kind, b.record_id, true AS same_document
            FROM b1 b JOIN o1 o ON o.uscc = b.uscc AND o.department = b.department AND o.doc = b.doc
             AND o.record_id <> b.record_id
            UNION ALL
            SELECT b.department, b.kind, b.record_id, false
            FROM b2 b JOIN o2 o ON o.uscc = b.uscc AND o.department = b.department AND o.kind = b.kind
             AND o.decision_date = b.decision_date AND o.amount = b.amount AND o.record_id <> b.record_id
        )
        SELECT department, kind, record_id, bool_or(same_document) AS same_document FROM pairs GROUP BY ALL
    """)
    rows = con.execute("SELECT d.department, d.kind, count(*) AS dup, count(*) FILTER (WHERE same_document) AS doc, "
                       "min(record_id, ?) AS ids, any_value(n.n) AS n FROM q_dup d JOIN "
                       "(SELECT department, kind, count(*) AS n FROM qb GROUP BY ALL) n USING (department, kind) "
                       "GROUP BY ALL", [EXAMPLES]).fetchall()
    out = []
    for dept, kind, dup, doc, ids, n in rows:
        if dup >= rules.min_rows and dup / n >= rules.share:
            feed = _feed(dept, kind)
            out.append(Finding(feed, "duplicate", rules.action, round(dup / n, 4), rules.share, list(ids),
                               {"records": int(n), "duplicates": int(dup), "same_document_no": int(doc)},
                               f"数据源 {feed}：{dup}/{n} 条疑似重复（同一主体同一文书号，或同一主体、部门、日期、"
                               "类别、金额而记录编号不同）",
                               f"feed {feed}: {dup}/{n} records probably duplicate another (same subject and "
                               "document number, or same subject, department, date, kind and amount under another id)"))
    return out


def blocking(findings: list[Finding]) -> list[Finding]:
    """The findings that hold a batch."""
    return [f for f in findings if f.action == "hold"]
