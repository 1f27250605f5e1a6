"""Benchmark: detection uplift of the grade-weighted double-random plan on a synthetic city.

Problems found per 100 inspections, using the simulator's true ``p_problem_if_inspected``:
  graded   our plan: the policy's ratios per grade stratum (A at the floor, A with an open lead at
           a_with_lead_ratio), drawn with the verifiable draw over many seeds
  uniform  a uniform random draw of the same size (the baseline)
  oracle   the best allocation of the same number of inspections under the same floor: every
           subject keeps inclusion probability ≥ floor, the rest goes to the highest true p
Each figure is the exact expectation (Σ p over drawn subjects, averaged over seeds; and the
closed form per stratum), plus one simulated realisation per seed (Bernoulli(p)).

Leads are what ``supervision.leads.open_leads`` counts in a plan: complaints (and, with
``--lead-source monitoring|both``, new negative records: penalties, arrears, list entries,
enforcement, broken commitments) within ``--lead-days`` of the as-of date and not answered by a
later inspection. The benchmark then decomposes the gap to the oracle (issue 19 asks for
≥ 0.85 × the oracle): the ranking (AUC of the model's probability, of the true label probability
``p_adverse_12m`` and of the true ``p``, against the realised label and, in expectation, against
the inspection outcome); grades from the model, from its probability, from ``p_adverse_12m`` and
from ``p``, each cut in the model's grade mix, crossed with A-with-lead ratios, each set against
the oracle with its own number of inspections; and, not grade-based, the floor for everyone and
the rest of the budget to the highest model probability: the most any plan made from the model's
ranking can find (if problems rise with the probability). ``--mix`` cuts the model's probability
in other grade shares (what another training ``target_shares`` would give). ``--inspection-stack
WORKDIR`` adds a ranking by a model of past inspection results stacked on the model's log-odds
(``supervision.inspection_outcome``), fitted as a grader could: the project's profiles at every past
quarter end, the registry's champions at each, the inspections up to the as-of date. It also prints what a
department can see without the truth: the problem rate of its past inspections of subjects with
an open lead at the time against those without.

Grades must come from a model, never from the truth: pass ``--grades FILE`` (uscc, grade).
Without it, PROVISIONAL grades are fitted here (logistic regression on record counts, trained
on an as-of date one year earlier), clearly labelled, for development only.

    .venv/bin/python benchmarks/targeting.py --city data_samples/city [--grades FILE] \
        [--truth DIR/truth/true_risk.parquet] [--as-of 2026-09-30] [--seeds 300] [--policy default] \
        [--lead-source complaint|monitoring|both] [--lead-days N] [--mix A=0.65,B=0.25,C=0.08,D=0.02 ...] \
        [--inspection-stack WORKDIR]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

from supervision.draw import STRATA, STRATUM_CODE, draw_stratified, stream_state, subject_keys
from supervision.inspection_outcome import cut_in_mix, fit_inspection_stack, inspection_rows
from supervision.inspection_policy import InspectionPolicy, ItemRules, load_policy
from supervision.leads import open_leads
from supervision.ratios import inspection_ratios, stratum_of

# Dandong 2023 grade mix (docs/domain.md §3), used only to cut the provisional scores.
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


def provisional_score(city: Path, truth: pd.DataFrame, as_of: dt.date) -> pd.Series:
    """PROVISIONAL probability: logistic regression on record counts, trained one year earlier."""
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
    return pd.Series(model.predict_proba(x_now)[:, 1], index=x_now.index)


def provisional_grades(city: Path, truth: pd.DataFrame, as_of: dt.date) -> pd.Series:
    """PROVISIONAL grades: the provisional probability cut by rank in Dandong's mix (lowest risk = A)."""
    return cut_in_mix(provisional_score(city, truth, as_of), pd.Series(PROVISIONAL_MIX)).rename("grade")


# Record kinds whose new entries are data-monitoring leads (数据监测线索) with --lead-source monitoring.
MONITORING_KINDS = ("admin_penalty", "admin_enforcement", "arrears", "commitment_broken")
# The benchmark plans one task for the whole city, so every inspection answers every lead.
BENCH_DEPARTMENT = "bench"


def lead_table(records: pd.DataFrame, source: str) -> pd.DataFrame:
    """Leads (uscc, lead_type, lead_date, department) taken from the records, as a plan's leads file."""
    kinds = records["kind"]
    complaint = kinds == "complaint"
    monitoring = kinds.isin(MONITORING_KINDS) | kinds.str.startswith("list_")
    chosen = {"complaint": complaint, "monitoring": monitoring, "both": complaint | monitoring}[source]
    picked = records[chosen]
    return pd.DataFrame(
        {
            "uscc": picked["uscc"],
            "lead_type": np.where(picked["kind"] == "complaint", "complaint", "monitoring"),
            "lead_date": picked["decision_date"],
            "department": "",
        }
    )


def inspection_history(records: pd.DataFrame) -> pd.DataFrame:
    """Past double-random inspections (uscc, department, inspected_on), as a plan's history file."""
    done = records[records["kind"] == "inspection"]
    return pd.DataFrame(
        {
            "uscc": done["uscc"],
            "department": BENCH_DEPARTMENT,
            "inspected_on": done["decision_date"],
            "problem": done["subkind"].isin(["corrected", "case_opened"]),
        }
    )


def past_lead_evidence(
    leads: pd.DataFrame, history: pd.DataFrame, as_of: dt.date, window_days: int, years: int = 3
) -> dict[str, float]:
    """Problems per past inspection with vs without an open lead at the time (records only, no truth).

    A lead was open at an inspection if raised within ``window_days`` before it and after the
    subject's previous inspection: the evidence a department has for its ``a_with_lead_ratio``.
    """
    ins = history.assign(day=pd.to_datetime(history["inspected_on"], errors="coerce")).dropna(subset=["day"])
    ins = ins.sort_values(["uscc", "day"])
    ins["previous"] = ins.groupby("uscc")["day"].shift()
    ins = ins[(ins["day"] > pd.Timestamp(as_of) - pd.DateOffset(years=years)) & (ins["day"] <= pd.Timestamp(as_of))]
    raised = pd.DataFrame({"uscc": leads["uscc"], "lead_day": pd.to_datetime(leads["lead_date"], errors="coerce")})
    raised = raised.dropna(subset=["lead_day"]).sort_values("lead_day")
    joined = pd.merge_asof(
        ins.sort_values("day"), raised, left_on="day", right_on="lead_day", by="uscc",
        direction="backward", allow_exact_matches=False,
    )
    open_then = (joined["lead_day"] >= joined["day"] - pd.Timedelta(days=window_days)) & (
        joined["previous"].isna() | (joined["lead_day"] > joined["previous"])
    )
    return {
        "with": joined.loc[open_then, "problem"].mean(),
        "n_with": int(open_then.sum()),
        "without": joined.loc[~open_then, "problem"].mean(),
        "n_without": int((~open_then).sum()),
    }


def floor_greedy_inclusion(score, total: float, floor: float) -> np.ndarray:
    """Inclusion probabilities: every subject at ``floor``, the rest of ``total`` inspections to the
    highest ``score`` at 1 (ties in the given order, one subject fractional).

    With the truth as the score this is the oracle allocation under the floor; with the model's
    probability it is the best plan *any* allocation (grade-based or not) can make from the model's
    ranking, if expected problems rise with the probability. Σ = ``total``, floor ≤ π ≤ 1.
    """
    score = np.asarray(score, dtype=float)
    extra = (total - floor * score.size) / (1 - floor)  # whole-subject inspections left after the floor
    order = np.argsort(-score, kind="stable")
    whole = int(np.floor(extra))
    top = np.zeros(score.size)
    top[order[:whole]] = 1.0
    if whole < score.size:
        top[order[whole]] = extra - whole
    return floor + (1 - floor) * top


def soft_auc(score, outcome_p) -> float:
    """Expected AUC of ``score`` against outcomes drawn Bernoulli(``outcome_p``), ties counting half.

    With 0/1 outcomes it is the ordinary AUC; ranking by ``outcome_p`` itself gives the highest
    value possible (the ceiling any model of that outcome can reach).
    """
    score, w = np.asarray(score, dtype=float), np.asarray(outcome_p, dtype=float)
    levels, group = np.unique(score, return_inverse=True)
    pos = np.bincount(group, weights=w, minlength=levels.size)
    neg = np.bincount(group, weights=1 - w, minlength=levels.size)
    both = np.bincount(group, weights=w * (1 - w), minlength=levels.size)  # a subject is no pair with itself
    below = np.cumsum(neg) - neg
    pairs = pos @ below + 0.5 * (pos @ neg - both.sum())
    return float(pairs / (w.sum() * (1 - w).sum() - (w * (1 - w)).sum()))


def expected_found(
    grades: pd.Series, lead: pd.Series, p: np.ndarray, rules: ItemRules, policy: InspectionPolicy, as_of: dt.date
) -> tuple[float, float, int]:
    """(expected problems, share of inspections on A, inspections) of the policy's plan, in closed form."""
    strata = stratum_of(grades, lead)
    counts = strata.value_counts().to_dict()
    table = inspection_ratios(
        counts, rules=rules, policy=policy, department=BENCH_DEPARTMENT, item="targeting", as_of=as_of,
        model_version="n/a",
    )
    codes = strata.map(STRATUM_CODE).to_numpy(np.int64)
    k = [s.expected_inspections for s in table.strata]
    found = sum(k[c] * p[codes == c].mean() for c in range(len(STRATA)) if k[c])
    on_a = k[STRATUM_CODE["A"]] + k[STRATUM_CODE["A_lead"]]
    return found, on_a / sum(k), sum(k)


def lawful_inspection_stack(
    workdir: Path, history: pd.DataFrame, as_of: dt.date, probability: pd.Series, pool: pd.Series
) -> tuple[np.ndarray, str]:
    """The inspection-outcome stack (``supervision.inspection_outcome``) fitted as a grader could.

    ``workdir`` is a ``tiers demo`` work directory (``store/``, ``mlflow.db``): profiles from the
    project's feature pipeline at every quarter end since the data start, the champion models'
    probability at each, and the past inspections up to ``as_of`` (``history``). Returns the
    stacked log-odds for ``pool`` (the served ``probability`` as the credit input) and a summary.
    """
    from features.profiles import build_profiles
    from training.grade import grade_all
    from training.registry import ModelRegistry

    store, registry = workdir / "store", ModelRegistry.in_directory(workdir)
    first = pd.to_datetime(history["inspected_on"], errors="coerce").min()
    days = [d.date() for d in pd.date_range(first, pd.Timestamp(as_of), freq="QE") if d.date() < as_of]
    frames = []
    for day in days:
        prof = build_profiles(store, as_of=day)
        credit = grade_all(registry, prof, as_of=day).set_index("uscc")["probability"]
        frames.append(prof.assign(probability=prof["uscc"].map(credit)).dropna(subset=["probability"]))
    rows = inspection_rows(history, pd.concat(frames, ignore_index=True), cutoff=as_of)
    stack = fit_inspection_stack(rows)
    now = build_profiles(store, as_of=as_of).drop_duplicates("uscc").set_index("uscc").reindex(pool)
    now["industry"] = now["industry"].fillna("")
    served = pool.map(probability).fillna(probability.median()).to_numpy()
    summary = (
        f"{stack.n_inspections} past inspections ({stack.n_problems} problems) at {len(days)} quarter ends; "
        f"log-odds = {stack.intercept:.2f} + " + " + ".join(
            f"{c:.2f}·{name}" for c, name in zip(stack.coef, ("credit log-odds", "sector", "sector×hygiene"), strict=True)
        ) + f" (sectors {','.join(stack.sectors)})"
    )
    return stack.log_odds(now, served), summary


def parse_mix(text: str) -> dict[str, float]:
    """``A=0.65,B=0.25,C=0.08,D=0.02`` → shares per grade (they must cover A–D and sum to 1)."""
    shares = {k.strip(): float(v) for k, v in (part.split("=") for part in text.split(","))}
    if set(shares) != set("ABCD") or not np.isclose(sum(shares.values()), 1) or min(shares.values()) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give A, B, C and D shares ≥ 0 summing to 1")
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--city", type=Path, default=Path("data_samples/city"))
    parser.add_argument("--grades", type=Path, help="uscc, grade (from the project's model)")
    parser.add_argument("--truth", type=Path, help="default: CITY/truth/true_risk.parquet")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="default: latest truth date")
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--policy", default="default", help="policy name or TOML path (local ratios)")
    parser.add_argument("--lead-days", type=int, help="lead window in days (default: the policy's lead_window_days)")
    parser.add_argument("--lead-source", choices=["complaint", "monitoring", "both"], default="complaint",
                        help="complaints, new negative records (data-monitoring leads), or both")
    parser.add_argument("--mix", type=parse_mix, action="append",
                        help="also cut the grades file's model probability in these shares, e.g. "
                        "A=0.65,B=0.25,C=0.08,D=0.02 (repeatable): what another target_shares would give")
    parser.add_argument("--inspection-stack", type=Path, metavar="WORKDIR",
                        help="also rank by a model of past inspection results stacked on the model's log-odds "
                        "(supervision.inspection_outcome), fitted from WORKDIR's store and registry (tiers demo --workdir)")
    parser.add_argument("--write-grades", type=Path, help="write the (provisional) grades used as CSV")
    args = parser.parse_args()
    print(machine_facts())

    truth = pd.read_parquet(args.truth or args.city / "truth" / "true_risk.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.date
    as_of = args.as_of or max(truth["as_of"])
    subjects = read_csv_or_parquet(next(args.city.glob("subjects.*"))).drop_duplicates("uscc")
    active = set(subjects.loc[subjects["status"] == "active", "uscc"])
    now = truth[(truth["as_of"] == as_of) & truth["uscc"].isin(active)].set_index("uscc")
    probability = None  # the model's calibrated probability, when the grades file carries it
    if args.grades:
        graded_file = read_csv_or_parquet(args.grades).drop_duplicates("uscc").set_index("uscc")
        grades = graded_file["grade"]
        if "probability" in graded_file:
            probability = pd.to_numeric(graded_file["probability"], errors="coerce").dropna()
        source = f"model grades from {args.grades}"
    else:
        grades = provisional_grades(args.city, truth, as_of)
        source = "PROVISIONAL grades (logistic regression on record counts; rerun with --grades)"
    if args.write_grades:
        grades.rename("grade").rename_axis("uscc").reset_index().assign(
            as_of=as_of.isoformat(), model_version="provisional-logreg"
        ).to_csv(args.write_grades, index=False)
    policy = load_policy(args.policy)
    rules = policy.rules_for(None, None, key_item=True)
    window_days = args.lead_days or rules.lead_window_days

    records = read_csv_or_parquet(next(args.city.glob("records.*")))
    records = records[pd.to_datetime(records["decision_date"], errors="coerce") <= pd.Timestamp(as_of)]
    leads, history = lead_table(records, args.lead_source), inspection_history(records)
    # The plan period starts the day after the grades' as-of date.
    period_start = as_of + dt.timedelta(days=1)
    lead_set = open_leads(
        leads, history, department=BENCH_DEPARTMENT, period_start=period_start, period_end=period_start,
        window_days=window_days,
    )

    pool = pd.DataFrame({"uscc": sorted(now.index)})
    pool["grade"] = pool["uscc"].map(grades).fillna(rules.ungraded_grade)
    pool["lead"] = pool["uscc"].isin(lead_set)
    pool["p"] = pool["uscc"].map(now["p_problem_if_inspected"]).to_numpy()
    strata = stratum_of(pool["grade"], pool["lead"])
    codes = strata.map(STRATUM_CODE).to_numpy(np.int64)
    table = inspection_ratios(
        strata.value_counts().to_dict(),
        rules=rules,
        policy=policy,
        department=BENCH_DEPARTMENT,
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
        state, inc = stream_state(seed, department=BENCH_DEPARTMENT, item="targeting")
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
    oracle_exact = floor_greedy_inclusion(p, total, floor) @ p

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
        f"uplift graded/uniform = {graded_exact / uniform_exact:.2f}× (target ≥ 2×); "
        f"graded/oracle = {graded_exact / oracle_exact:.2f}; oracle/uniform = {oracle_exact / uniform_exact:.2f}×"
    )
    print(
        f"share of inspections on A-grade subjects: {np.mean(a_share):.1%} "
        f"(A is {np.mean(pool['grade'] == 'A'):.1%} of the pool)"
    )

    # Leads: how many, and are they worth a higher ratio? The first line uses the truth (scoring
    # only); the second only the records a department holds.
    is_a = pool["grade"] == "A"
    p_a = pool.loc[is_a, "p"]
    lead_a = pool.loc[is_a, "lead"]
    evidence = past_lead_evidence(leads, history, as_of, window_days)
    print(
        f"leads ({args.lead_source}, {window_days} days, unanswered): {lead_a.mean():.1%} of A subjects; "
        f"true p of A with a lead {p_a[lead_a].mean():.3f} vs A without {p_a[~lead_a].mean():.3f}, "
        f"B {pool.loc[pool['grade'] == 'B', 'p'].mean():.3f}"
    )
    print(
        f"past inspections ({as_of.year - 3}–{as_of.year}, records only): problem found in "
        f"{evidence['with']:.1%} of {evidence['n_with']} with an open lead vs "
        f"{evidence['without']:.1%} of {evidence['n_without']} without"
    )

    # Decomposition of the gap to the oracle. Reference only: grades cut from the truth are never
    # used as grades; they show what a perfect model of the label (p_adverse_12m) or of the scored
    # quantity (p) would reach under the same policy and grade mix. Each plan is set against the
    # oracle with its own number of inspections (the A_lead ratio and rounding change it).
    label = pool["uscc"].map(now["adverse_12m"])
    p_adverse = pool["uscc"].map(now["p_adverse_12m"]).to_numpy()
    scores = {"true p_adverse_12m": p_adverse, "true p": p}
    if probability is not None:
        # The provisional logistic regression on record counts: a yardstick for the model's ranking.
        provisional = pool["uscc"].map(provisional_score(args.city, truth, as_of)).fillna(0).to_numpy()
        scores = {
            "model probability": pool["uscc"].map(probability).fillna(probability.median()).to_numpy(),
            "provisional logreg": provisional,
            **scores,
        }
        if args.inspection_stack:
            stacked, summary = lawful_inspection_stack(args.inspection_stack, history, as_of, probability, pool["uscc"])
            print(f"inspection stack: {summary}")
            scores = {"inspection stack": stacked, **scores}
    known = label.notna().to_numpy()
    print(
        "ranking, AUC against the realised 12-month label / expected AUC against the inspection outcome "
        "(Bernoulli(p)): "
        + "; ".join(
            f"{name} {soft_auc(sc[known], label[known]):.3f} / {soft_auc(sc, p):.3f}" for name, sc in scores.items()
        )
    )
    mix = pool["grade"].value_counts(normalize=True)
    sources = {"model grades": pool["grade"]}
    if probability is not None:
        sources["model probability"] = cut_in_mix(pd.Series(scores["model probability"]), mix)
        sources["provisional logreg"] = cut_in_mix(pd.Series(scores["provisional logreg"]), mix)
    if "inspection stack" in scores:
        sources["inspection stack"] = cut_in_mix(pd.Series(scores["inspection stack"]), mix)
    sources |= {
        "true p_adverse_12m": cut_in_mix(pd.Series(p_adverse), mix),
        "true p (ceiling)": cut_in_mix(pool["p"], mix),
    }
    lead_ratios = sorted({floor, rules.a_with_lead_ratio, 0.02, 0.05})
    header = "".join(f"{'A_lead ' + format(r, '.0%') + ('*' if r == rules.a_with_lead_ratio else ''):>22}" for r in lead_ratios)
    print(
        "decomposition in the model's grade mix (" + ", ".join(f"{g} {mix.get(g, 0):.1%}" for g in "ABCD")
        + "): × uniform, / oracle with the same number of inspections (share of inspections on A); "
        f"* = the policy's a_with_lead_ratio\n{'grades':<20}{header}"
    )
    at_policy = {}
    for name, graded in sources.items():
        cells = []
        for ratio in lead_ratios:
            found, on_a, size = expected_found(
                graded, pool["lead"], p, rules.model_copy(update={"a_with_lead_ratio": ratio}), policy, as_of
            )
            vs_oracle = found / (floor_greedy_inclusion(p, size, floor) @ p)
            if ratio == rules.a_with_lead_ratio:
                at_policy[name] = vs_oracle
            cells.append(f"{found / (size * p.mean()):.2f}× {vs_oracle:.2f} ({on_a:.0%})")
        print(f"{name:<20}" + "".join(f"{c:>22}" for c in cells))
    # Not grade-based: the floor for everyone, the rest of the same budget to the highest score. With
    # the model's probability this bounds every plan made from the model's ranking.
    greedy = {name: floor_greedy_inclusion(sc, total, floor) @ p / oracle_exact for name, sc in scores.items()}
    print(
        f"not grade-based, {total} inspections (the floor for everyone, the rest to the highest score), / oracle: "
        + "; ".join(f"{name} {v:.2f}" for name, v in greedy.items())
    )
    if args.mix and probability is None:
        print("--mix skipped: it cuts the model's probability, and these grades carry none (column probability)")
    cut_rankings = [name for name in ("model probability", "inspection stack") if name in scores]
    for shares, name in ((s, n) for s in (args.mix or []) for n in cut_rankings):
        graded = cut_in_mix(pd.Series(scores[name]), pd.Series(shares))
        found, on_a, size = expected_found(graded, pool["lead"], p, rules, policy, as_of)
        print(
            f"{name} cut in " + ", ".join(f"{g} {v:.1%}" for g, v in shares.items())
            + f": {size} inspections, {found / (size * p.mean()):.2f}× uniform, "
            f"{found / (floor_greedy_inclusion(p, size, floor) @ p):.2f} of the oracle, {on_a:.0%} on A"
        )
    print(
        f"issue 19 (≥ 0.85 × the oracle at the same floor): graded {at_policy['model grades']:.2f}; "
        + (f"any plan from the model's ranking ≤ {greedy['model probability']:.2f}; " if probability is not None else "")
        + (f"grades from the inspection stack {at_policy['inspection stack']:.2f}; " if "inspection stack" in at_policy else "")
        + f"grades from a perfect model of the label {at_policy['true p_adverse_12m']:.2f}; "
        f"grades from the true p {at_policy['true p (ceiling)']:.2f}; graded / grades from the true p "
        f"{at_policy['model grades'] / at_policy['true p (ceiling)']:.2f}"
    )


if __name__ == "__main__":
    main()
