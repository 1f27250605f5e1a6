"""Benchmark: verifiable stratified draw + inspector assignment on a 10 M-subject pool.

Times, as medians of repeats in the same run:
  ours   = per-subject PCG64 keys + k-smallest per stratum + look-up of the drawn subjects'
           recusal pairs + inspector assignment (2 per subject, recusal, capacity) for 20 k
           inspectors
  naive  = numpy ``rng.choice(members, k, replace=False)`` per stratum (draw only, no
           assignment, not verifiable) — the baseline
and, separately, the one-off costs per pool, paid before any draw because they do not depend on
the seed: publication (canonical sort + SHA-256 pool hash) and the recusal index (every declared
conflict and previous inspector of the pool, grouped by subject).

    .venv/bin/python benchmarks/draw.py [--subjects 10000000] [--inspectors 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

import numpy as np

from supervision.assign import InspectorPool, RecusalIndex, assign_inspectors
from supervision.draw import (
    STRATA,
    canonical_order,
    draw_stratified,
    pool_hash,
    stream_state,
    subject_keys,
)
from supervision.inspection_policy import load_policy
from supervision.ratios import InspectionRatiosOut, inspection_ratios

# Dandong 2023 grade mix (docs/domain.md §3) with 0.5 % of A subjects carrying a lead.
STRATUM_SHARES = [0.654 * 0.995, 0.654 * 0.005, 0.253, 0.077, 0.016]  # A, A_lead, B, C, D


def machine_facts() -> str:
    ram_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return f"nproc={os.cpu_count()} RAM={ram_gb:.1f} GiB loadavg(1m)={load:.2f} numpy={np.__version__}"


def key_item_ratios(counts: dict[str, int], department: str | None = None,
                    item: str | None = None) -> InspectionRatiosOut:
    """The bundled default policy's ratios for a key item over a pool of ``counts`` subjects per
    stratum, as the scheduler computes them: the rules of ``department``'s ``item`` (the policy's
    defaults, no cap, when not given). Shared with benchmarks/draw_bundle.py."""
    policy = load_policy()
    return inspection_ratios(counts, rules=policy.rules_for(department, item, key_item=True), policy=policy,
                             department=department or "bench", item=item or "bench",
                             as_of=dt.date(2026, 9, 30), model_version="bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10_000_000)
    parser.add_argument("--inspectors", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, n_insp = args.subjects, args.inspectors
    rng = np.random.default_rng(20261122)
    print(machine_facts())

    # Synthetic pool: 18-byte codes (not check-validated: validation happens at file load).
    codes = np.char.add(b"91", np.char.zfill(rng.permutation(n).astype("S16"), 16))
    strata = rng.choice(len(STRATUM_SHARES), size=n, p=STRATUM_SHARES).astype(np.int8)
    grades = np.array([b"A", b"A", b"B", b"C", b"D"])[strata]
    leads = strata == 1
    districts = rng.integers(0, 11, size=n).astype(np.int16)
    inspectors = InspectorPool(
        ids=np.arange(n_insp),
        districts=rng.integers(0, 11, size=n_insp).astype(np.int16),
        capacity=rng.integers(50, 151, size=n_insp),
    )
    # Recusal inputs: 200 k declared conflicts; the two previous inspectors of 30 % of subjects.
    conflict_s = rng.integers(0, n, 200_000)
    conflict_i = rng.integers(0, n_insp, 200_000)
    prev_s = np.repeat(rng.choice(n, size=int(0.3 * n), replace=False), 2)
    prev_i = rng.integers(0, n_insp, prev_s.size)
    rec_s = np.concatenate((conflict_s, prev_s))
    rec_i = np.concatenate((conflict_i, prev_i))

    t = time.perf_counter()
    order = canonical_order(codes)
    codes, strata, grades, leads, districts = (
        codes[order],
        strata[order],
        grades[order],
        leads[order],
        districts[order],
    )
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    rec_s = position[rec_s]
    digest = pool_hash(codes, grades, leads)
    publish_s = time.perf_counter() - t
    t = time.perf_counter()
    recusal = RecusalIndex.build(rec_s, rec_i, n)
    index_s = time.perf_counter() - t
    counts = [int(np.count_nonzero(strata == c)) for c in range(5)]
    table = key_item_ratios(dict(zip(STRATA, counts, strict=True)))
    k = [s.expected_inspections for s in table.strata]
    print(f"pool {n:,} subjects, strata {counts}, draw k {k} (total {sum(k):,}); inspectors {n_insp:,}")
    print(f"publication (canonical sort + SHA-256 pool hash {digest[:12]}…): {publish_s:.2f} s (one-off)")
    print(f"recusal index ({rec_s.size:,} pairs grouped by subject): {index_s:.2f} s (one-off)")

    ours, naive, unstaffed, max_over, phases = [], [], [], [], []
    for rep in range(args.repeats):
        seed = rng.bytes(32)
        t = time.perf_counter()
        state, inc = stream_state(seed, department="market", item="MKT-01")
        keys = subject_keys(n, state, inc)
        t_keys = time.perf_counter()
        drawn = draw_stratified(keys, strata, k)
        t_draw = time.perf_counter()
        # Recusal pairs of drawn subjects only, as (position in the draw, inspector).
        fs, fi = recusal.pairs_of(drawn)
        t_recusal = time.perf_counter()
        assignment = assign_inspectors(
            n_subjects=drawn.size,
            subject_priority=strata[drawn],
            inspectors=inspectors,
            rng=np.random.default_rng(rep),
            per_subject=2,
            forbidden=(fs, fi),
        )
        ours.append(time.perf_counter() - t)
        phases.append((t_keys - t, t_draw - t_keys, t_recusal - t_draw, ours[-1] - (t_recusal - t)))
        unstaffed.append(len(assignment.unstaffed))
        max_over.append(int((assignment.loads - inspectors.capacity).max()))
        # Recusal audit (outside the timing): no forbidden pair in any team.
        assert not (assignment.team[fs] == fi[:, None]).any(), "recusal violated"

        naive_rng = np.random.default_rng(rep)
        t = time.perf_counter()
        picks = [naive_rng.choice(np.flatnonzero(strata == c), size=k[c], replace=False) for c in range(5)]
        np.sort(np.concatenate(picks))
        naive.append(time.perf_counter() - t)

    ours_med, naive_med = statistics.median(ours), statistics.median(naive)
    print(
        f"ours  (draw + assignment, recusal + capacity): median {ours_med:.3f} s  runs {[round(x, 3) for x in ours]}"
    )
    print(
        f"naive (rng.choice per stratum, draw only):     median {naive_med:.3f} s  runs {[round(x, 3) for x in naive]}"
    )
    print(
        f"ratio ours / naive = {ours_med / naive_med:.2f}×; target ours ≤ 1 s: {'met' if ours_med <= 1 else 'NOT met'}"
    )
    keys_s, select_s, recusal_s, assign_s = (statistics.median(p[i] for p in phases) for i in range(4))
    print(
        f"phases (medians): keys {keys_s:.3f} s, stratified selection {select_s:.3f} s, "
        f"recusal look-up {recusal_s:.3f} s, assignment {assign_s:.3f} s"
    )
    print(f"unstaffed subjects per run {unstaffed}; max(load − capacity) per run {max_over} (must be ≤ 0)")


if __name__ == "__main__":
    main()
