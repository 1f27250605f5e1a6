"""Gate rules for classes of feed error the distribution rules of :mod:`features.quality` do not see.

:func:`check_all` runs :func:`features.quality.check_feeds` and then these rules on the same connection
(views ``qb``, ``qh_window`` (made by check_feeds), and, when the
gate provides them, ``qq``: the batch's quarantined rows per feed, ``qs_batch`` / ``qs_store``: the
batch's subjects and the store's current register). Views that are absent (monitoring's month view
has no quarantine or subjects file) switch their rules off. Rules (thresholds in
:mod:`features.quality_extra_config`, tables ``collapse``, ``swap``, ``quarantine``, ``registry``):

* ``value_collapse``: one value of a column takes far more of a feed than any value did in any of the
  feed's trailing months (every decision on the export day, every fine 0 or missing);
* ``date_swap`` (partial): rows dated before the batch's month whose day and month exchanged land in
  it, far beyond chance among the feed's earlier rows with a day ≤ 12 (only those can swap), with the
  rows quarantined as future whose swap lands in it (the other half of the same error);
* ``volume_cut``: a feed's records in the batch's month stop early (few or none after some day) where its
  history, by day of month, puts a fair share of them; ``*``: every feed of the batch at once (a file
  sorted by date and cut in the middle), which sees it where each feed alone is too small;
* ``feed_quarantined``: most of a feed's rows in the batch were quarantined, so the published batch
  says nothing of it (counted as absence, as silence would be);
* ``register_district_moved`` / ``register_district_new``: subjects moving district en masse, codes
  the register never had; ``register_status_mass``: active subjects turned revoked/deregistered en masse.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
from scipy.stats import binom

from features.quality import (
    EXAMPLES,
    Finding,
    QualityConfig,
    _add_months,
    _established,
    _examples,
    _feed,
    _history_months,
    check_feeds,
)

REGISTER_FEED = "registry/subjects"
_NULL = "∅"
_EXPR = {"decision_date": "CAST(decision_date AS VARCHAR)", "amount": "CAST(amount AS VARCHAR)",
         "severity": "CAST(severity AS VARCHAR)", "subkind": "CAST(subkind AS VARCHAR)"}


def _has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchone()[0]
                or con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchone()[0])


def check_all(con: duckdb.DuckDBPyConnection, *, as_of: date, config: QualityConfig | None = None) -> list[Finding]:
    """Every finding of the gates: :func:`features.quality.check_feeds`, then this module's rules."""
    config = config or QualityConfig()
    findings = check_feeds(con, as_of=as_of, config=config)
    return findings + check_extra(con, as_of=as_of, config=config, prior=findings)


def check_extra(con: duckdb.DuckDBPyConnection, *, as_of: date, config: QualityConfig,
                prior: list[Finding]) -> list[Finding]:
    """The findings of this module's rules, after :func:`features.quality.check_feeds` ran on ``con``
    (its view ``qh_window``); ``prior``: the findings it made (a feed's date_swap is not repeated)."""
    period = (as_of - timedelta(days=1)).replace(day=1)
    history = _history_months(con, _add_months(period, -config.history.trailing_months), period, config)
    established = set(_established(history, config)["feed"]) if len(history) else set()
    out = _collapse(con, config, established)
    out += _partial_swap(con, as_of, config, {f.feed for f in prior if f.rule == "date_swap"})
    out += _cut(con, as_of, config, established)
    if _has_view(con, "qq"):
        out += _quarantined(con, config)
    if _has_view(con, "qs_batch") and _has_view(con, "qs_store"):
        out += check_register(con, config)
    return out


def _collapse(con, config: QualityConfig, established: set[str]) -> list[Finding]:
    rules = config.collapse
    out = []
    for column in rules.columns:
        expr = f"coalesce({_EXPR[column]}, '{_NULL}')"
        now = con.execute(
            f"WITH c AS (SELECT department, kind, {expr} AS v, count(*) AS k FROM qb GROUP BY ALL) "
            "SELECT department, kind, arg_max(v, k) AS v, max(k) AS top, sum(k) AS n FROM c GROUP BY ALL").df()
        now = now[(now["n"] >= rules.min_rows) & (now["top"] >= rules.min_share * now["n"])]
        if not len(now):
            continue  # no feed collapsed: the history (a grouping by value of every trailing row) is not read
        con.register("q_collapse", now[["department", "kind"]])
        hist = con.execute(
            f"WITH c AS (SELECT department, kind, date_trunc('month', decision_date) AS m, {expr} AS v, count(*) AS k "
            "FROM qh_window SEMI JOIN q_collapse USING (department, kind) GROUP BY ALL), t AS (SELECT department, kind, m, max(k) / sum(k) AS s FROM c GROUP BY ALL "
            f"HAVING sum(k) >= {int(rules.min_rows)}) "
            "SELECT department, kind, max(s) AS share_max, count(*) AS months FROM t GROUP BY ALL").df()
        con.unregister("q_collapse")
        merged = now.merge(hist, on=["department", "kind"])
        for r in merged.itertuples():
            feed = _feed(r.department, r.kind)
            n, top = int(r.n), int(r.top)
            if feed not in established or n < rules.min_rows or r.months < config.history.min_months:
                continue
            share, base = top / n, float(r.share_max)
            threshold = max(rules.min_share, rules.ratio * base)
            if share < threshold or binom.sf(top - 1, n, base) >= rules.alpha:
                continue
            ids = _examples(con, f"{expr} = ? AND department = ? AND kind = ?",
                            [r.v, r.department, r.kind]).get(feed, [])
            out.append(Finding(
                feed, "value_collapse", rules.action, round(share, 4), round(threshold, 4), ids,
                {"column": column, "value": r.v, "records": n, "matching": top,
                 "history_max_share": round(base, 4), "history_months": int(r.months)},
                f"数据源 {feed} 字段 {column}：{top}/{n} 条（{share:.0%}）取同一值 {r.v}，近期任一月最高仅 "
                f"{base:.0%}（阈值 {threshold:.0%}）：疑似导出错误（如导出日期或缺失值填 0）",
                f"feed {feed}, {column}: {top}/{n} records ({share:.0%}) hold one value {r.v}; at most {base:.0%} "
                f"in any trailing month (threshold {threshold:.0%}): an export error (its date, a lost column)?"))
    return out


def _partial_swap(con, as_of: date, config: QualityConfig, already: set[str]) -> list[Finding]:
    """Only rows with a day ≤ 12 can swap, and those of the batch's own month that land inside the
    window stay unseen: the rule counts the rows dated before the batch's month that swap into it
    (their day is that month's number) against all its earlier rows with a day ≤ 12 (chance ~1/12).
    A swap sends a feed's days 1 … month−1 into the past and its days month+1 … 12 into the future,
    where ingestion quarantines them (table ``qq``, their raw dates): those count as the same error's
    rows, so a small feed whose two halves are each a handful is still seen."""
    rules = config.swap
    period = (as_of - timedelta(days=1)).replace(day=1)
    early = "decision_date < ? AND day(decision_date) <= 12 AND day(decision_date) <> month(decision_date)"
    # CASE: DuckDB evaluates make_date on every row, the filter's other terms notwithstanding
    swapped = ("CASE WHEN day(decision_date) <= 12 THEN make_date(year(decision_date), day(decision_date), "
               "month(decision_date)) END")
    cand = f"{early} AND {swapped} >= ? AND {swapped} < ?"
    rows = con.execute(f"SELECT department, kind, count(*) AS n, count(*) FILTER (WHERE {early}) AS base, "
                       f"count(*) FILTER (WHERE {cand}) AS swapped FROM qb GROUP BY ALL",
                       [period, period, period, as_of]).df()
    future = {}
    if _has_view(con, "qq") and "dates" in {c[0] for c in con.execute("SELECT * FROM qq LIMIT 0").description}:
        # the rows refused as future whose swap lands in the batch's month (``dates``: their raw dates)
        later = "day(decision_date) <= 12 AND day(decision_date) <> month(decision_date)"
        future = {(d, k): (int(f), int(b)) for d, k, f, b in con.execute(
            f"SELECT department, kind, count(*) FILTER (WHERE {later} AND {swapped} >= ? AND {swapped} < ?), "
            f"count(*) FILTER (WHERE {later}) FROM (SELECT department, kind, "
            "TRY_CAST(unnest(dates) AS DATE) AS decision_date FROM qq WHERE rule = 'date_in_future') "
            "WHERE decision_date IS NOT NULL GROUP BY ALL", [period, as_of]).fetchall()}
    out = []
    for r in rows.itertuples():
        feed = _feed(r.department, r.kind)
        ahead, ahead_base = future.get((r.department, r.kind), (0, 0))
        n, base, swapped = int(r.n) + ahead_base, int(r.base) + ahead_base, int(r.swapped) + ahead
        if feed in already or swapped < rules.min_rows or swapped / n < rules.share or swapped / base < rules.fraction:
            continue
        ids = _examples(con, f"{cand} AND department = ? AND kind = ?",
                        [period, period, as_of, r.department, r.kind]).get(feed, [])
        out.append(Finding(
            feed, "date_swap", rules.action, round(swapped / n, 4), rules.share, ids,
            {"records": n, "matching": swapped, "earlier_day_le_12": base, "fraction": round(swapped / base, 3),
             "fraction_threshold": rules.fraction, "period": period.isoformat(), "quarantined_future": ahead},
            f"数据源 {feed}：{swapped}/{n} 条日期日月互换后落入 {period:%Y-%m}（其中 {ahead} 条因日期在未来已隔离；"
            f"占日≤12 的非本月记录 {swapped}/{base}）：疑似日/月颠倒",
            f"feed {feed}: {swapped}/{n} records fall inside {period:%Y-%m} with day and month swapped ({ahead} of "
            f"them quarantined as future; {swapped}/{base} of its rows outside that month with a day ≤ 12): "
            "day/month swap?"))
    return out


def _cut(con, as_of: date, config: QualityConfig, established: set[str]) -> list[Finding]:
    """The batch's month, day by day, against the feed's history by day of month (each history day mapped
    onto the batch month's days): for every day D, the records from D on against the share of the
    history there. That share must hold in every trailing month with enough records, not only pooled: a
    feed whose decisions come in clumps on a few days (commitments broken at a deadline) has months
    with nothing late in the month, and is not cut when this one has none. Only the days before
    ``as_of`` count (a batch ingested mid-month has no later days)."""
    rules = config.cut
    period = (as_of - timedelta(days=1)).replace(day=1)
    end = min(_add_months(period, 1), as_of)
    days = (end - period).days
    month_days = (_add_months(period, 1) - period).days
    if days < 2 or not established:
        return []
    hist = con.execute(
        f"SELECT department, kind, date_trunc('month', decision_date) AS m, CAST(floor((day(decision_date) - 1) * "
        f"{month_days} / day(last_day(decision_date))) AS INTEGER) AS d, count(*) AS n FROM qh_window "
        "GROUP BY ALL").fetchall()
    now = con.execute("SELECT department, kind, day(decision_date) - 1 AS d, count(*) AS n FROM qb "
                      "WHERE decision_date >= ? AND decision_date < ? GROUP BY ALL", [period, end]).fetchall()
    months: dict[str, dict[object, np.ndarray]] = {}
    batch: dict[str, np.ndarray] = {}
    for dept, kind, m, d, n in hist:
        feed = _feed(dept, kind)
        if feed in established and d < days:
            for key in (feed, "*"):  # "*": the whole batch, a file cut by date stops every feed on one day
                months.setdefault(key, {}).setdefault(m, np.zeros(days))[d] += n
    present = set()
    for dept, kind, d, n in now:
        feed = _feed(dept, kind)
        if feed in established and d < days:
            present.add(feed)
            for key in (feed, "*"):
                batch.setdefault(key, np.zeros(days))[d] += n
    if len(present) < 2:
        batch.pop("*", None)
    out = []
    tested = [f for f in batch if f in months]
    alpha = rules.alpha / max(len(tested) * (days - 1), 1)
    for feed in tested:
        b = batch[feed]
        full = [h for h in months[feed].values() if h.sum() >= rules.min_month_rows]
        if len(full) < config.history.min_months:
            continue
        pooled = sum(full)
        after_b, after_h = np.cumsum(b[::-1])[::-1], np.cumsum(pooled[::-1])[::-1] / pooled.sum()
        least = np.min([np.cumsum(h[::-1])[::-1] / h.sum() for h in full], axis=0)  # the lowest month, per day
        n, best = int(b.sum()), None
        for d in range(1, days):
            q, seen = float(after_h[d]), int(after_b[d])
            if least[d] < rules.min_share or seen > rules.fraction * n * q:
                continue
            p = float(binom.cdf(seen, n, q))
            if p < alpha and (best is None or p < best[0]):
                best = (p, d, q, seen)
        if best is None:
            continue
        p, d, q, seen = best
        first = period + timedelta(days=d)
        expected = n * q  # of the batch's records of the month, on or after the cut
        out.append(Finding(
            feed, "volume_cut", rules.action, round(seen / expected, 3), rules.fraction, [],
            {"from": first.isoformat(), "records": n, "after": seen, "history_share_after": round(q, 3),
             "least_month_share_after": round(float(least[d]), 3), "expected_after": round(expected, 1),
             "p_value": p},
            f"数据源 {'（全部）' if feed == '*' else feed} 本批 {period:%Y-%m} 的记录自 {first} 起仅 {seen} 条，按其历史各日"
            f"分布应占本月 {q:.0%}（约 {expected:.0f} 条，近期每月至少 {least[d]:.0%}）：文件疑似中途截断，请核对并补报",
            f"{'every feed' if feed == '*' else f'feed {feed}'}: {seen} of its {n} records of {period:%Y-%m} fall on or "
            f"after {first}, where its history by day puts {q:.0%} (about {expected:.0f}; at least {least[d]:.0%} in "
            "every recent month): a file cut in the middle?"))
    return out


def _quarantined(con, config: QualityConfig) -> list[Finding]:
    rules = config.quarantine
    rows = con.execute(
        "WITH q AS (SELECT department, kind, sum(n) AS q, coalesce(max(n) FILTER (WHERE list_contains(?, rule)), 0) "
        "AS top, list(rule || ':' || n) AS rules, "
        "flatten(list(ids)) AS ids "
        "FROM qq GROUP BY ALL), a AS (SELECT department, kind, count(*) AS a FROM qb GROUP BY ALL) "
        "SELECT q.department, q.kind, q.q, q.top, q.rules, q.ids, coalesce(a.a, 0) AS a FROM q LEFT JOIN a "
        "ON a.department IS NOT DISTINCT FROM q.department AND a.kind IS NOT DISTINCT FROM q.kind",
        [rules.format_rules]).fetchall()
    out = []
    for dept, kind, q, top, by_rule, ids, a in rows:
        q, a, top = int(q), int(a), int(top)
        share = q / (q + a)
        if not ((q >= rules.min_rows and share >= rules.share)
                or (top >= rules.min_rows and top / (q + a) >= rules.rule_share)):
            continue
        feed = _feed(dept if dept is not None else _NULL, kind if kind is not None else _NULL)
        out.append(Finding(
            feed, "feed_quarantined", rules.action, round(share, 4),
            rules.share if share >= rules.share else rules.rule_share, sorted(ids)[:EXAMPLES],
            {"quarantined": q, "accepted": a, "by_rule": dict(x.split(":", 1) for x in by_rule)},
            f"数据源 {feed}：本批 {q}/{q + a} 条被隔离（{share:.0%}，阈值 {rules.share:.0%}），发布后该数据源本月"
            "等同缺报：请检查导出格式",
            f"feed {feed}: {q}/{q + a} of its rows quarantined ({share:.0%}, threshold {rules.share:.0%}); once "
            "published the feed is as good as silent this month: check the export"))
    return out


def check_register(con: duckdb.DuckDBPyConnection, config: QualityConfig) -> list[Finding]:
    """Register-level rules on the batch's subjects (view ``qs_batch``) against the store's current
    subjects (view ``qs_store``); both need ``uscc, district_code, status``."""
    rules = config.registry
    store_n, active_n = con.execute("SELECT count(*), count(*) FILTER (WHERE status = 'active') FROM qs_store").fetchone()
    if store_n < rules.min_store_subjects:
        return []  # an office's first register, or a small one: nothing to compare with
    out = []
    joined = ("FROM qs_batch b JOIN qs_store s USING (uscc) WHERE {}")
    moved_cond = "b.district_code IS DISTINCT FROM s.district_code"
    moved = con.execute(f"SELECT count(*) {joined.format(moved_cond)}").fetchone()[0]
    if moved >= rules.district_min and moved / store_n >= rules.district_share:
        pairs = con.execute(f"SELECT s.district_code, b.district_code, count(*) AS n {joined.format(moved_cond)} "
                            "GROUP BY ALL ORDER BY n DESC LIMIT 5").fetchall()
        ids = [u for (u,) in con.execute(f"SELECT uscc {joined.format(moved_cond)} ORDER BY uscc LIMIT ?",
                                         [EXAMPLES]).fetchall()]
        out.append(Finding(
            REGISTER_FEED, "register_district_moved", rules.district_action, round(moved / store_n, 4),
            rules.district_share, ids,
            {"moved": int(moved), "register": int(store_n), "top_moves": [[a, b, int(n)] for a, b, n in pairs]},
            f"主体登记：{moved}/{store_n} 个主体（{moved / store_n:.1%}，阈值 {rules.district_share:.0%}）行政区划代码"
            "变化：疑似区划代码表变更，请核实",
            f"subject register: {moved}/{store_n} subjects ({moved / store_n:.1%}, threshold "
            f"{rules.district_share:.0%}) changed district: a district code-table change?"))
    new = con.execute("SELECT b.district_code, count(*) AS n, list(b.uscc ORDER BY b.uscc)[1:?] FROM qs_batch b "
                      "WHERE b.district_code IS NOT NULL AND b.district_code NOT IN "
                      "(SELECT district_code FROM qs_store WHERE district_code IS NOT NULL) GROUP BY ALL "
                      "HAVING count(*) >= ? ORDER BY n DESC", [EXAMPLES, rules.new_code_min]).fetchall()
    if new:
        total = sum(int(n) for _, n, _ in new)
        out.append(Finding(
            REGISTER_FEED, "register_district_new", rules.new_code_action, total, rules.new_code_min,
            [u for _, _, ids in new for u in ids][:EXAMPLES], {"codes": {c: int(n) for c, n, _ in new}},
            f"主体登记：{total} 个主体使用库中从未出现的行政区划代码 {'、'.join(c for c, _, _ in new)}",
            f"subject register: {total} subjects carry district codes never seen in the store: "
            f"{', '.join(c for c, _, _ in new)}"))
    gone_cond = "s.status = 'active' AND b.status IS DISTINCT FROM 'active'"
    gone = con.execute(f"SELECT count(*) {joined.format(gone_cond)}").fetchone()[0]
    if active_n and gone >= rules.status_min and gone / active_n >= rules.status_share:
        by = con.execute(f"SELECT b.status, count(*) {joined.format(gone_cond)} GROUP BY ALL").fetchall()
        ids = [u for (u,) in con.execute(f"SELECT uscc {joined.format(gone_cond)} ORDER BY uscc LIMIT ?",
                                         [EXAMPLES]).fetchall()]
        out.append(Finding(
            REGISTER_FEED, "register_status_mass", rules.status_action, round(gone / active_n, 4), rules.status_share,
            ids, {"changed": int(gone), "active_in_store": int(active_n), "to": {s: int(n) for s, n in by}},
            f"主体登记：{gone}/{active_n} 个存续主体（{gone / active_n:.0%}，阈值 {rules.status_share:.0%}）本批变为"
            "吊销/注销：疑似登记导出错误，已拦截",
            f"subject register: {gone}/{active_n} active subjects ({gone / active_n:.0%}, threshold "
            f"{rules.status_share:.0%}) turned revoked/deregistered at once: a registry export error? held"))
    return out


__all__ = ["REGISTER_FEED", "check_all", "check_extra", "check_register"]
