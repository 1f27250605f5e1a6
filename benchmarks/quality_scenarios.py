"""Data-quality gates against feed errors and real shifts they were not tuned on, over several seeds.

For each seed: a clean simulated city (simulation.generate, no dirt), its records cut into monthly
batches as an office would send them (a tenth of each month's records arrive a month late), the
first batch with every subject and the history up to then (an office's first ingestion), then one
gated `ingest` per month. The last ``--clean`` months count false alarms (any finding, warning or
hold). Then, on a copy of the store before the last month, each scenario alters the last month's
batch (the department, district or category picked at random per seed) and must trip its rule, in
the batch where it first appears, with its action (hold, or a warning without a hold).

    .venv/bin/python benchmarks/quality_scenarios.py [--seeds 11 12 13] [--subjects 3000] [--clean 6]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from features.ingest import ingest
from features.quality import load_quality_config
from simulation import SimulationConfig, generate

END = date(2026, 10, 31)


def _months(records: pd.DataFrame, rng: np.random.Generator) -> pd.Series:
    """The month each record arrives in: its decision month, or the next one for a tenth of them."""
    month = pd.to_datetime(records["decision_date"]).dt.to_period("M")
    late = rng.random(len(records)) < 0.10
    return month + late.astype(int)


def _ingest(store: Path, work: Path, month: pd.Period, records: pd.DataFrame, config, subjects: Path | None = None):
    path = work / f"records_{month}.csv"
    records.to_csv(path, index=False)
    at = datetime.combine((month + 1).start_time.date(), datetime.min.time(), tzinfo=UTC)
    return ingest(store=store, subjects=subjects, records=path, ingested_at=at, gates=config)


def _amount_feeds(batch: pd.DataFrame, min_rows: int = 15) -> list[tuple[str, str]]:
    a = batch[pd.to_numeric(batch["amount"], errors="coerce") > 0]
    counts = a.groupby(["department", "kind"]).size()
    return sorted(counts[counts >= min_rows].index.tolist())


def _fresh_copies(rows: pd.DataFrame, rng: np.random.Generator, tag: str, pool: np.ndarray) -> pd.DataFrame:
    """New, genuine records like ``rows`` (other subjects, new ids and document numbers)."""
    out = rows.copy()
    out["record_id"] = [f"{tag}{i:09d}" for i in range(len(out))]
    out["uscc"] = rng.choice(pool, size=len(out))
    out["document_no"] = [f"{d}-{tag}{i}" if isinstance(d, str) and d else d for i, d in enumerate(out["document_no"])]
    for col in ("ref_record_id",):
        out[col] = None
    out = out[~out["kind"].isin(["repair", "revocation"])]
    return out


# each scenario: (batch, previous batch, rng, subjects pool) → (altered batch, department, expected rules, action)
def unit_change(b, prev, rng, pool):
    dept, kind = _amount_feeds(b)[rng.integers(len(_amount_feeds(b)))]
    factor = 10 ** int(rng.choice([1, 3, 4]))
    hit = (b["department"] == dept) & (b["kind"] == kind)
    b.loc[hit, "amount"] = pd.to_numeric(b.loc[hit, "amount"]) * factor
    return b, dept, {"amount_unit", "amount_tail"}, "hold"


def partial_unit(b, prev, rng, pool):
    dept, kind = _amount_feeds(b)[rng.integers(len(_amount_feeds(b)))]
    hit = ((b["department"] == dept) & (b["kind"] == kind)).to_numpy() & (rng.random(len(b)) < 0.3)
    b.loc[hit, "amount"] = pd.to_numeric(b.loc[hit, "amount"]) * 10_000
    return b, dept, {"amount_unit", "amount_tail"}, "hold"


def resent_feed(b, prev, rng, pool):
    depts = b["department"].value_counts()
    dept = rng.choice(depts[depts >= 40].index)
    again = pd.concat([prev[prev["department"] == dept], b[b["department"] == dept]])
    again = again[~again["kind"].isin(["repair", "revocation"])].copy()
    again["record_id"] = [f"RS{i:010d}" for i in range(len(again))]
    again["document_no"] = [f"{d}-重发" if isinstance(d, str) and d else d for d in again["document_no"]]
    return pd.concat([b, again], ignore_index=True), dept, {"duplicate"}, "hold"


def day_month_swap(b, prev, rng, pool):
    depts = b["department"].value_counts()
    dept = rng.choice(depts[depts >= 40].index)
    hit = b["department"] == dept
    d = pd.to_datetime(b.loc[hit, "decision_date"])
    swapped = [f"{y:04d}-{dd:02d}-{mm:02d}" for y, mm, dd in zip(d.dt.year, d.dt.month, d.dt.day, strict=True)]
    b.loc[hit, "decision_date"] = swapped  # days > 12 become invalid dates: quarantined by ingestion
    b.loc[hit, "publicity_end"] = None
    b.loc[hit, "end_date"] = None
    return b, dept, {"date_swap"}, "hold"


def year_typo(b, prev, rng, pool):
    depts = b["department"].value_counts()
    dept = rng.choice(depts[depts >= 40].index)
    hit = b["department"] == dept
    b.loc[hit, "decision_date"] = b.loc[hit, "decision_date"].str.replace("2026-", "2006-", regex=False)
    b.loc[hit, ["publicity_end", "end_date"]] = None
    return b, dept, {"date_far_past"}, "hold"


def district_stops(b, prev, rng, pool, subjects=None):
    district = rng.choice(sorted(subjects["district_code"].astype(str).unique()))
    gone = set(subjects.loc[subjects["district_code"].astype(str) == district, "uscc"])
    return b[~b["uscc"].isin(gone)].copy(), None, {"district_silence", "volume_silence"}, "warn"


def category_recoded(b, prev, rng, pool):
    options = []
    for col in ("subkind", "severity"):
        for (dept, kind), g in b.groupby(["department", "kind"]):
            v = g[col].dropna().value_counts()
            if len(v) >= 2 and v.iloc[0] >= 10:
                options.append((col, dept, kind, v.index[0], v.index[1]))
    col, dept, kind, old, new = options[rng.integers(len(options))]
    hit = (b["department"] == dept) & (b["kind"] == kind) & (b[col] == old)
    b.loc[hit, col] = new  # one code mapped onto another that exists
    return b, dept, {"category_recoded"}, "hold"


def backlog(b, prev, rng, pool, held=None):
    """A department's last three months arrive at once (its feed was silent meanwhile)."""
    return pd.concat([b, held], ignore_index=True), held["department"].iloc[0], \
        {"volume_surge", "date_late"}, "any"


def policy_change(b, prev, rng, pool):
    """Real drift: the largest amount feed's fines raised ×2–3 by a new standard; must warn, never hold.
    (A feed of 20 fines a month, spread over two orders of magnitude, cannot show ×2.5 in one month.)"""
    a = b[pd.to_numeric(b["amount"], errors="coerce") > 0]
    dept, kind = a.groupby(["department", "kind"]).size().idxmax()
    hit = (b["department"] == dept) & (b["kind"] == kind)
    b.loc[hit, "amount"] = pd.to_numeric(b.loc[hit, "amount"]) * float(rng.uniform(2.0, 3.0))
    return b, dept, {"amount_shift"}, "warn"


def enforcement_campaign(b, prev, rng, pool):
    """Real drift: a department doubles its penalties (new, genuine records); must warn, never hold."""
    feeds = b.groupby(["department", "kind"]).size()
    dept, kind = feeds[(feeds >= 30) & (feeds.index.get_level_values(1) == "admin_penalty")].index[0] \
        if ((feeds >= 30) & (feeds.index.get_level_values(1) == "admin_penalty")).any() else feeds.idxmax()
    rows = b[(b["department"] == dept) & (b["kind"] == kind)]
    extra = _fresh_copies(rows.sample(frac=float(rng.uniform(1.1, 1.6)), replace=True, random_state=1), rng, "EC", pool)
    return pd.concat([b, extra], ignore_index=True), dept, {"volume_surge"}, "warn"


def seasonal_low(b, prev, rng, pool):
    """Spring Festival: every feed at 0.7 ×. Must not alert."""
    return b.sample(frac=0.7, random_state=int(rng.integers(1 << 30))), None, set(), "none"


def seasonal_high(b, prev, rng, pool):
    """Year-end: every feed at 1.3 × (genuine records). Must not alert."""
    extra = _fresh_copies(b.sample(frac=0.3, random_state=int(rng.integers(1 << 30))), rng, "YE", pool)
    return pd.concat([b, extra], ignore_index=True), None, set(), "none"


def file_cut(b, prev, rng, pool):
    """The month's file sorted by date and cut in the middle: its last 30–60 % of rows never arrived."""
    b = b.sort_values("decision_date", kind="stable")
    return b.iloc[: int(len(b) * rng.uniform(0.4, 0.7))].copy(), None, {"volume_cut"}, "warn"


def feed_cut(b, prev, rng, pool):
    """One department's file (sorted by date) cut in the middle; the other departments' files whole."""
    depts = b["department"].value_counts()
    dept = rng.choice(depts[depts >= 40].index)
    own = b[b["department"] == dept].sort_values("decision_date", kind="stable")
    kept = own.iloc[: int(len(own) * rng.uniform(0.4, 0.7))]
    return pd.concat([b[b["department"] != dept], kept], ignore_index=True), dept, {"volume_cut"}, "warn"


SCENARIOS: dict[str, Callable] = {
    "unit_change": unit_change, "partial_unit": partial_unit, "resent_feed": resent_feed,
    "day_month_swap": day_month_swap, "year_typo": year_typo, "district_stops": district_stops,
    "category_recoded": category_recoded, "backlog": backlog, "policy_change": policy_change,
    "enforcement_campaign": enforcement_campaign, "seasonal_low": seasonal_low, "seasonal_high": seasonal_high,
    "file_cut": file_cut, "feed_cut": feed_cut,
}


def _caught(summary, dept, rules, action) -> tuple[bool, str]:
    found = summary.findings
    names = sorted({f"{f['rule']}:{f['action']}@{f['feed']}" for f in found})
    if action == "none":
        return (not found), ", ".join(names) or "-"
    hit = [f for f in found if f["rule"] in rules and (dept is None or f["feed"].startswith(f"{dept}/"))]
    if action == "hold":
        ok = summary.status == "held" and any(f["action"] == "hold" for f in hit)
    elif action == "warn":
        ok = summary.status == "published" and bool(hit)
    else:
        ok = bool(hit)
    return ok, ", ".join(names) or "-"


def run_seed(seed: int, n_subjects: int, n_clean: int, work: Path, config,
             only: list[str] | None = None) -> tuple[dict, int, int]:
    city = work / f"city{seed}"
    generate(SimulationConfig(n_subjects=n_subjects, seed=seed, dirt=False, years=2, end=END), city)
    records = pd.read_csv(city / "records.csv", dtype=str, keep_default_na=False).replace("", None)
    subjects = pd.read_csv(city / "subjects.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    arrive = _months(records, rng)
    last = pd.Period(END, "M")
    first_clean = last - n_clean
    store = work / f"store{seed}"
    # the backlog scenario's department stops sending for three months before the last
    backlog_dept = rng.choice(sorted(records["department"].value_counts().loc[lambda s: s >= 600].index))
    _ingest(store, work, first_clean - 1, records[arrive <= first_clean - 1], config, city / "subjects.csv")
    alarms = 0
    for month in pd.period_range(first_clean, last - 1, freq="M"):
        s = _ingest(store, work, month, records[arrive == month], config)
        alarms += len(s.findings)
        if s.findings:
            print(f"  seed {seed} clean {month}: {[(f['rule'], f['feed'], f['observed']) for f in s.findings]}")
        assert s.status == "published", "a clean month was held"
    clean_batches = n_clean
    results = {}
    final = records[arrive == last]
    previous = records[arrive == last - 1]
    pool = subjects["uscc"].to_numpy()
    for name, scenario in SCENARIOS.items():
        if only and name not in only:
            continue
        copy = work / f"store{seed}-{name}"
        srng = np.random.default_rng([seed, len(name)])
        if name == "backlog":
            hidden = (records["department"] == backlog_dept) & (arrive >= last - 3) & (arrive < last)
            shutil.rmtree(copy, ignore_errors=True)
            # rebuild the store without that department's last three months
            _ingest(copy, work, first_clean - 1, records[arrive <= first_clean - 1], None, city / "subjects.csv")
            for month in pd.period_range(first_clean, last - 1, freq="M"):
                _ingest(copy, work, month, records[(arrive == month) & ~hidden], None)
            batch, dept, rules, action = backlog(final.copy(), previous, srng, pool, held=records[hidden])
        else:
            shutil.copytree(store, copy)
            if name == "district_stops":
                batch, dept, rules, action = district_stops(final.copy(), previous.copy(), srng, pool, subjects)
            else:
                batch, dept, rules, action = scenario(final.copy(), previous.copy(), srng, pool)
        s = _ingest(copy, work, last, batch, config)
        results[name] = (*_caught(s, dept, rules, action), dept)
        shutil.rmtree(copy, ignore_errors=True)
    return results, alarms, clean_batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[11, 12, 13])
    parser.add_argument("--subjects", type=int, default=3000)
    parser.add_argument("--clean", type=int, default=6)
    parser.add_argument("--only", nargs="+", choices=sorted(SCENARIOS), help="run these scenarios only")
    args = parser.parse_args()
    config = load_quality_config()
    table: dict[str, list[bool]] = {name: [] for name in (args.only or SCENARIOS)}
    total_alarms = total_clean = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quality-") as tmp:
        for seed in args.seeds:
            results, alarms, clean = run_seed(seed, args.subjects, args.clean, Path(tmp), config, args.only)
            total_alarms += alarms
            total_clean += clean
            for name, (ok, seen, dept) in results.items():
                table[name].append(ok)
                print(f"seed {seed} {name:22s} {'caught' if ok else 'MISSED'}  (dept {dept}) findings: {seen}")
    print("\nscenario                 caught/seeds")
    for name, oks in table.items():
        print(f"{name:24s} {sum(oks)}/{len(oks)}")
    print(f"false alarms on clean months: {total_alarms} findings in {total_clean * len(args.seeds) // len(args.seeds)}"
          f" months × {len(args.seeds)} seeds; {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
