"""Benchmark: general vs sector model (通用＋专用) on a simulated city, against the oracle.

Simulates a city (or reuses one), ingests it, builds profiles + labels at past as-of dates, trains
the general model and the section-H model (the simulator plants an H-only risk driver:
complaints and utility arrears), and prints, on the out-of-time validation date:

* general-model AUC and its ratio to the oracle AUC (the simulator's true probabilities on the
  same subjects) — the baseline of this run;
* the grade table with 95 % Wilson intervals of the bad rate (monotone? separated?);
* in section H: sector-model AUC − general-model AUC with a paired bootstrap interval (the
  general model may use `industry` only as a main effect, so H's own shapes are the sector
  model's job);
* the fallback of a sector with too few adverse outcomes (default: the one with fewest);
* training wall time and its ratio to a plain logistic regression on the same rows (baseline);
* the information ceiling: the best unconstrained LightGBM on every lawful feature, tuned on the
  validation date itself, and the general and served models' AUC as a share of it (target ≥ 0.99).

    .venv/bin/python benchmarks/sector_models.py --subjects 20000 --seed 2
    .venv/bin/python benchmarks/sector_models.py --city DIR --store DIR   # reuse
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd


def machine() -> str:
    try:
        import psutil

        ram = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        ram = "unknown"
    return f"nproc={os.cpu_count()} RAM={ram} python={sys.version.split()[0]}"


def information_ceiling(x_train, y_train, x_valid, y_valid, seed: int) -> tuple[float, str]:
    """The best out-of-time AUC an unconstrained LightGBM reaches on the same lawful features:
    a small grid of tree sizes, each boosted with early stopping ON THE VALIDATION DATE (so the
    ceiling is optimistic by construction: it is tuned on the very rows it is scored on)."""
    import lightgbm as lgb

    from training import evaluation as ev

    best, label = 0.0, ""
    for leaves in (7, 15, 31):
        for min_child in (50, 200):
            model = lgb.LGBMClassifier(n_estimators=3000, learning_rate=0.03, num_leaves=leaves,
                                       min_child_samples=min_child, subsample=0.8, subsample_freq=1,
                                       colsample_bytree=0.8, n_jobs=1, random_state=seed, verbose=-1)
            model.fit(x_train, y_train, eval_set=[(x_valid, y_valid)], eval_metric="auc",
                      callbacks=[lgb.early_stopping(200, first_metric_only=False, verbose=False)])
            auc = ev.auc(y_valid, model.predict_proba(x_valid, num_iteration=model.best_iteration_)[:, 1])
            if auc > best:
                best, label = auc, f"{leaves} leaves, min_child {min_child}, {model.best_iteration_} trees"
    return best, label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--city", type=Path, help="existing `tiers simulate` output (skips simulation)")
    parser.add_argument("--store", type=Path, help="existing feature store of that city (skips ingestion)")
    parser.add_argument("--sector", default="H")
    parser.add_argument("--min-positives", type=int, default=300)
    parser.add_argument("--fallback-sector", default="", help="sector to show the fallback on (default: fewest outcomes)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the timing (medians)")
    parser.add_argument("--n-boot", type=int, default=500)
    args = parser.parse_args()

    from features.ingest import ingest
    from features.specs import FEATURE_SPECS
    from training import evaluation as ev
    from training.data import default_dates, latest_record_date, load_dataset
    from training.pipeline import TrainingConfig, feature_metas_from_specs, train_model

    print(f"# sector_models benchmark — {machine()}")
    work = Path(tempfile.mkdtemp(prefix="bench_sector_"))
    city = args.city or work / "city"
    if args.city is None:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "serving.cli.main", "simulate", "--subjects", str(args.subjects),
                        "--seed", str(args.seed), "--out", str(city), "--json"], check=True, stdout=subprocess.DEVNULL)
        print(f"simulate {args.subjects} subjects: {time.perf_counter() - t0:.1f} s")
    store = args.store or work / "store"
    if args.store is None:
        t0 = time.perf_counter()
        ext = "parquet" if (city / "records.parquet").exists() else "csv"
        ingest(store=store, subjects=city / f"subjects.{ext}", records=city / f"records.{ext}",
               ingested_at=datetime(2026, 11, 1, tzinfo=UTC))
        print(f"ingest: {time.perf_counter() - t0:.1f} s")

    train_dates, validate = default_dates(latest_record_date(store))
    t0 = time.perf_counter()
    data = load_dataset(store, (*train_dates, validate))
    print(f"profiles+labels for {len(train_dates) + 1} as-of dates: {time.perf_counter() - t0:.1f} s, {len(data)} rows")
    metas = feature_metas_from_specs(FEATURE_SPECS)
    config = TrainingConfig(train_as_of=train_dates, validate_as_of=validate, seed=args.seed,
                            min_sector_positives=args.min_positives, n_boot=args.n_boot)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        general = train_model(data, metas, config=config)
        times.append(time.perf_counter() - t0)
    from lightgbm import LGBMClassifier

    from training.bundle import model_matrix

    # Baseline: an unconstrained LightGBM with default parameters on the same rows and features.
    names = [m.name for m in metas]
    as_of = pd.to_datetime(data["as_of"]).dt.date
    train_rows = data.loc[as_of.isin(train_dates).to_numpy()]
    valid_rows = data.loc[(as_of == validate).to_numpy()]
    x_train = model_matrix(train_rows, names, metas).astype({"industry": "category"})
    x_valid = model_matrix(valid_rows, names, metas).astype({"industry": "category"})
    base_times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        baseline = LGBMClassifier(n_jobs=1, random_state=args.seed, verbose=-1).fit(x_train, train_rows["label"])
        base_times.append(time.perf_counter() - t0)
    base_auc = ev.auc(valid_rows["label"], baseline.predict_proba(x_valid)[:, 1])
    ceiling, ceiling_params = information_ceiling(x_train, train_rows["label"].to_numpy(), x_valid,
                                                  valid_rows["label"].to_numpy(), args.seed)
    t_model, t_base = statistics.median(times), statistics.median(base_times)
    print(f"train general model (3 candidates + calibration + report): median {t_model:.1f} s over {args.repeats}; "
          f"baseline default LightGBM fit {t_base:.2f} s; ratio {t_model / t_base:.1f}×")

    truth = pd.read_parquet(city / "truth" / "true_risk.parquet")
    truth["as_of"] = pd.to_datetime(truth["as_of"]).dt.date
    val = general.validation.merge(truth[["uscc", "as_of", "p_adverse_12m"]].rename(columns={"p_adverse_12m": "p_true"}),
                                   on=["uscc", "as_of"], how="left")
    has_truth = val["p_true"].notna().to_numpy()
    y = val["label"].to_numpy()[has_truth]
    auc_model = ev.bootstrap_interval(y, val["p_adverse_12m"].to_numpy()[has_truth], n_boot=args.n_boot, seed=1)
    auc_oracle = ev.auc(y, val["p_true"].to_numpy()[has_truth])
    print(f"\nOOT validation as of {validate} (trained on {', '.join(map(str, train_dates))}); "
          f"{has_truth.sum()} subjects, {int(y.sum())} adverse")
    print("candidates OOT AUC: " + ", ".join(f"{k} {v['oot_auc']:.4f}" for k, v in general.candidate_metrics.items()))
    print(f"general AUC {auc_model.value:.4f} [{auc_model.low:.4f}, {auc_model.high:.4f}]; oracle AUC {auc_oracle:.4f}; "
          f"ratio {auc_model.value / auc_oracle:.3f} (target ≥ 0.97)")
    print(f"baseline default LightGBM (no monotone constraints, uncalibrated) AUC {base_auc:.4f}; "
          f"general / baseline {ev.auc(valid_rows['label'], general.validation['p_adverse_12m']) / base_auc:.3f}")
    general_auc = ev.auc(valid_rows["label"], general.validation["p_adverse_12m"])
    print(f"information ceiling (best unconstrained LightGBM on every lawful feature, tuned on the validation date: "
          f"{ceiling_params}) AUC {ceiling:.4f}; general / ceiling {general_auc / ceiling:.4f} (target ≥ 0.99)")
    table = ev.grade_table(val["label"], val["grade"])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"bad rate strictly increasing A→D: {ev.grades_monotone(table, strict=True)}; "
          f"95 % intervals separated: {ev.grades_separated(table)}")

    sector = train_model(data, metas, config=config, sector=args.sector, general=general.model)
    sv = sector.validation
    gen_on_sector = general.model.predict_proba(sv)[:, 1]
    diff = ev.paired_auc_difference(sv["label"], sv["p_adverse_12m"], gen_on_sector, n_boot=args.n_boot, seed=1)
    print(f"\nsector {args.sector}: kind {sector.model.kind} ({sector.model.candidate}); {len(sv)} subjects, "
          f"{int(sv['label'].sum())} adverse; notes: {sector.notes or '—'}")
    print("sector candidates OOT AUC: " + ", ".join(f"{k} {v['oot_auc']:.4f}" for k, v in sector.candidate_metrics.items()))
    print(f"sector-model AUC {ev.auc(sv['label'], sv['p_adverse_12m']):.4f} vs general on {args.sector} "
          f"{ev.auc(sv['label'], gen_on_sector):.4f}: difference {diff.value:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}]")
    # What the service grades with: the sector model for its own subjects, the general one elsewhere.
    served = val.set_index("uscc")["p_adverse_12m"].copy()
    served.loc[sv["uscc"].to_numpy()] = sv["p_adverse_12m"].to_numpy()
    p_served = served.loc[val["uscc"]].to_numpy()[has_truth]
    print(f"served AUC (sector {args.sector} model on its subjects, general elsewhere) {ev.auc(y, p_served):.4f}; "
          f"ratio to oracle {ev.auc(y, p_served) / auc_oracle:.3f}")
    served_all = served.loc[valid_rows["uscc"]].to_numpy()
    print(f"served / information ceiling {ev.auc(valid_rows['label'], served_all) / ceiling:.4f} (target ≥ 0.99)")
    train_part = data.loc[as_of.isin(train_dates).to_numpy()]
    outcomes = train_part.groupby("industry")["label"].sum().sort_values(kind="stable")
    fallback = None
    for small in [args.fallback_sector] if args.fallback_sector else map(str, outcomes.index):
        try:  # the smallest sectors may lack an adverse outcome on the validation date
            fallback = train_model(data, metas, config=config, sector=small, general=general.model)
            break
        except ValueError as err:
            print(f"sector {small}: {err}")
    assert fallback is not None
    fv = fallback.validation
    fb_auc = ev.auc(fv["label"], fv["p_adverse_12m"]) if fv["label"].nunique() == 2 else float("nan")
    print(f"sector {small} ({int(outcomes.get(small, 0))} adverse outcomes in training, minimum {args.min_positives}): "
          f"kind {fallback.model.kind}; {len(fv)} subjects, OOT AUC {fb_auc:.4f}; notes: {fallback.notes or '—'}")
    print(f"report sha256 general {general.report.sha256[:16]}…, sector {sector.report.sha256[:16]}…")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
