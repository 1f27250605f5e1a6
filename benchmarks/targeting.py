"""Benchmark: detection uplift of the grade-weighted double-random plan on a synthetic city.

Problems found per 100 inspections, using the simulator's true ``p_problem_if_inspected``:
  graded   our plan: default policy ratios per grade stratum (A at the floor, A with a lead at
           a_with_lead_ratio), drawn with the verifiable draw over many seeds
  uniform  a uniform random draw of the same size (the baseline)
  oracle   the best allocation of the same number of inspections under the same floor: every
           subject keeps inclusion probability ≥ floor, the rest goes to the highest true p
Each figure is the exact expectation (Σ p over drawn subjects, averaged over seeds; and the
closed form per stratum), plus one simulated realisation per seed (Bernoulli(p)).

Grades must come from a model, never from the truth: pass ``--grades FILE`` (uscc, grade).
Without it, PROVISIONAL grades are fitted here (logistic regression on record counts, trained
on an as-of date one year earlier), clearly labelled, for development only.

    .venv/bin/python benchmarks/targeting.py --city data_samples/city [--grades FILE] \
        [--truth DIR/truth/true_risk.parquet] [--as-of 2026-09-30] [--seeds 300] [--policy default]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from supervision.draw import STRATA, STRATUM_CODE, draw_stratified, k_for_stratum, stream_state, subject_keys
from supervision.policy import load_policy
from supervision.ratios import inspection_ratios, stratum_of

# Dandong 2023 grade mix (DOMAIN.md §3), used only to cut the provisional scores.
PROVISIONAL_MIX = {"A": 0.654, "B": 0.253, "C": 0.077, "D": 0.016}
FEATURE_KINDS = {
    "penalty_general": lambda r: (r["kind"] == "admin_penalty") & (r["severity"] == "general"),
    "penalty_serious": lambda r: (r["kind"] == "admin_penalty") & (r["severity"] == "serious"),
    "penalty_minor": lambda r: (r["kind"] == "admin_penalty") & (r["severity"] == "minor"),
    "lists": lambda r: r["kind"].str.startswith("list_"),
    "complaints": lambda r: r["kind"] == "complaint",
    "arrears": lambda r: r["kind"] == "arrears",
    "inspection_problem": lambda r: (
        (r["kind"] == "inspection") & r["subkind"].isin(["corrected", "case_opened"])
    ),
    "inspection_clean": lambda r: (r["kind"] == "inspection") & (r["subkind"] == "no_problem"),
    "commitment_broken": lambda r: r["kind"] == "commitment_broken",
    "positive": lambda r: r["kind"].isin(["admin_reward", "commitment_kept"]),
}


def machine_facts() -> str:
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"nproc={os.cpu_count()} RAM={ram_gb:.1f} GiB loadavg(1m)={os.getloadavg()[0]:.2f}"


def read_csv_or_parquet(path: Path) -> pd.DataFrame:
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")


def record_features(records: pd.DataFrame, subjects: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Counts of record groups decided in the 2 years up to ``as_of``, plus age and size."""
    window = records[
        (records["decision_date"] <= pd.Timestamp(as_of))
        & (records["decision_date"] > pd.Timestamp(as_of) - pd.Timedelta(days=730))
    ]
    feats = pd.DataFrame(index=subjects["uscc"])
    for name, rule in FEATURE_KINDS.items():
        feats[name] = window[rule(window)].groupby("uscc").size().reindex(feats.index, fill_value=0)
    registered = pd.to_datetime(subjects.set_index("uscc")["registered_on"], errors="coerce")
    feats["age_years"] = ((pd.Timestamp(as_of) - registered).dt.days / 365.25).clip(lower=0).fillna(0).values
    capital = pd.to_numeric(subjects.set_index("uscc")["registered_capital"], errors="coerce").fillna(0)
    feats["log_capital"] = np.log1p(capital.clip(lower=0)).values
    return np.log1p(feats)


def provisional_grades(city: Path, truth: pd.DataFrame, as_of: dt.date) -> pd.Series:
    """PROVISIONAL grades: logistic regression on record counts, trained one year earlier."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    subjects = read_csv_or_parquet(next(city.glob("subjects.*"))).drop_duplicates("uscc")
    records = read_csv_or_parquet(next(city.glob("records.*")))
    records["decision_date"] = pd.to_datetime(records["decision_date"], errors="coerce")
    records = records.dropna(subset=["decision_date"])
    train_as_of = max(d for d in truth["as_of"].unique() if d <= as_of - dt.timedelta(days=365))
    train = truth[truth["as_of"] == train_as_of].dropna(subset=["adverse_12m"]).set_index("uscc")
    x_train = record_features(records, subjects, train_as_of).reindex(train.index).fillna(0)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(x_train, train["adverse_12m"].astype(int))
    x_now = record_features(records, subjects, as_of)
    score = pd.Series(model.predict_proba(x_now)[:, 1], index=x_now.index)
    # Cut by rank so the grade mix matches Dandong's (lowest risk = A).
    rank = score.rank(method="first", pct=True)
    cuts = np.cumsum([PROVISIONAL_MIX[g] for g in "ABC"])
    return pd.Series(
        np.select([rank <= cuts[0], rank <= cuts[1], rank <= cuts[2]], ["A", "B", "C"], "D"),
        index=score.index,
        name="grade",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", type=Path, default=Path("data_samples/city"))
    parser.add_argument("--grades", type=Path, help="uscc, grade (from the project's model)")
    parser.add_argument("--truth", type=Path, help="default: CITY/truth/true_risk.parquet")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="default: latest truth date")
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--policy", default="default", help="policy name or TOML path (local ratios)")
    parser.add_argument("--lead-days", type=int, default=365,
                        help="a complaint within this many days before the as-of date is a lead (A_lead stratum)")
    parser.add_argument("--write-grades", type=Path, help="write the (provisional) grades used as CSV")
    args = parser.parse_args()
    print(machine_facts())

    truth = pd.read_parquet(args.truth or args.city / "truth" / "true_risk.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.date
    as_of = args.as_of or max(truth["as_of"])
    subjects = read_csv_or_parquet(next(args.city.glob("subjects.*"))).drop_duplicates("uscc")
    active = set(subjects.loc[subjects["status"] == "active", "uscc"])
    now = truth[(truth["as_of"] == as_of) & truth["uscc"].isin(active)].set_index("uscc")
    if args.grades:
        grades = read_csv_or_parquet(args.grades).drop_duplicates("uscc").set_index("uscc")["grade"]
        source = f"model grades from {args.grades}"
    else:
        grades = provisional_grades(args.city, truth, as_of)
        source = "PROVISIONAL grades (logistic regression on record counts; rerun with --grades)"
    if args.write_grades:
        grades.rename("grade").rename_axis("uscc").reset_index().assign(
            as_of=as_of.isoformat(), model_version="provisional-logreg"
        ).to_csv(args.write_grades, index=False)
    records = read_csv_or_parquet(next(args.city.glob("records.*")))
    complaints = records[(records["kind"] == "complaint")]
    cdate = pd.to_datetime(complaints["decision_date"], errors="coerce")
    leads = set(
        complaints.loc[
            (cdate <= pd.Timestamp(as_of)) & (cdate > pd.Timestamp(as_of) - pd.Timedelta(days=args.lead_days)), "uscc"
        ]
    )

    pool = pd.DataFrame({"uscc": sorted(now.index)})
    pool["grade"] = pool["uscc"].map(grades).fillna("B")
    pool["lead"] = pool["uscc"].isin(leads)
    pool["p"] = pool["uscc"].map(now["p_problem_if_inspected"]).to_numpy()
    strata = stratum_of(pool["grade"], pool["lead"])
    codes = strata.map(STRATUM_CODE).to_numpy(np.int64)
    policy = load_policy(args.policy)
    rules = policy.rules_for(None, None, key_item=True)
    table = inspection_ratios(
        strata.value_counts().to_dict(),
        rules=rules,
        policy=policy,
        department="bench",
        item="targeting",
        as_of=as_of,
        model_version="n/a",
    )
    k = [s.expected_inspections for s in table.strata]
    total = sum(k)
    p = pool["p"].to_numpy()
    n = p.size

    rng = np.random.default_rng(20261122)
    graded_sum, graded_real, uniform_sum, uniform_real, a_share = [], [], [], [], []
    for seed_int in range(args.seeds):
        seed = seed_int.to_bytes(32, "big")
        state, inc = stream_state(seed, department="bench", item="targeting")
        drawn = draw_stratified(subject_keys(n, state, inc), codes, k)
        graded_sum.append(p[drawn].sum())
        graded_real.append((rng.random(drawn.size) < p[drawn]).sum())
        a_share.append((pool["grade"].to_numpy()[drawn] == "A").mean())
        uniform = rng.choice(n, size=total, replace=False)
        uniform_sum.append(p[uniform].sum())
        uniform_real.append((rng.random(total) < p[uniform]).sum())
    # Closed forms (no sampling noise at all)
    graded_exact = sum(k[c] * p[codes == c].mean() for c in range(len(STRATA)) if k[c])
    uniform_exact = total * p.mean()
    floor = rules.floor_ratio
    extra = (total - floor * n) / (1 - floor)  # inspections left after everyone's floor share
    top = np.sort(p)[::-1]
    whole = int(np.floor(extra))
    oracle_exact = floor * p.sum() + (1 - floor) * (top[:whole].sum() + (extra - whole) * top[whole])

    # Reference only (never used as grades): the same policy with grades cut from the true p in the
    # model's own grade mix — the ceiling a perfect model could reach under this policy.
    mix = pool["grade"].value_counts(normalize=True)
    rank = pd.Series(p).rank(method="first", pct=True).to_numpy()
    cuts = np.cumsum([mix.get(g, 0.0) for g in "ABC"])
    true_grade = pd.Series(
        np.select([rank <= cuts[0], rank <= cuts[1], rank <= cuts[2]], ["A", "B", "C"], "D")
    )
    true_codes = stratum_of(true_grade, pool["lead"]).map(STRATUM_CODE).to_numpy(np.int64)
    true_counts = np.bincount(true_codes, minlength=len(STRATA))
    true_k = [k_for_stratum(int(true_counts[c]), s.ratio_ppm) for c, s in enumerate(table.strata)]
    ceiling_exact = sum(true_k[c] * p[true_codes == c].mean() for c in range(len(STRATA)) if true_k[c])

    per100 = lambda x: 100 * x / total  # noqa: E731
    print(f"city {args.city} as of {as_of}: pool {n} active subjects, {source}")
    print(
        "strata: "
        + ", ".join(f"{s.stratum} {s.pool_size}→{s.expected_inspections}" for s in table.strata)
        + f"; inspections per plan {total} ({total / n:.1%} of pool); seeds {args.seeds}"
    )
    print(f"{'plan':<9}{'exact /100':>12}{'Σp mean /100':>14}{'realised /100':>15}")
    print(
        f"{'graded':<9}{per100(graded_exact):>12.2f}{per100(np.mean(graded_sum)):>14.2f}{per100(np.mean(graded_real)):>15.2f}"
    )
    print(
        f"{'uniform':<9}{per100(uniform_exact):>12.2f}{per100(np.mean(uniform_sum)):>14.2f}{per100(np.mean(uniform_real)):>15.2f}"
    )
    print(f"{'oracle':<9}{per100(oracle_exact):>12.2f}{'':>14}{'':>15}")
    print(
        f"{'ceiling':<9}{100 * ceiling_exact / sum(true_k):>12.2f}   (same policy, grades cut from the true p: "
        f"{ceiling_exact / (sum(true_k) * p.mean()):.2f}× uniform)"
    )
    print(
        f"uplift graded/uniform = {graded_exact / uniform_exact:.2f}× (target ≥ 2×); "
        f"graded/oracle = {graded_exact / oracle_exact:.2f}; oracle/uniform = {oracle_exact / uniform_exact:.2f}×"
    )
    print(
        f"share of inspections on A-grade subjects: {np.mean(a_share):.1%} "
        f"(A is {np.mean(pool['grade'] == 'A'):.1%} of the pool)"
    )


if __name__ == "__main__":
    main()
