"""Benchmark: tiers-draw-v2 publish + public verify on a 10 M-subject pool, against today's v1 verify.

Issue 18's target: publish + verify ≤ 60 s for a 10 M-subject pool. Measured, on one task of
the given size (Dandong grade mix, as benchmarks/draw.py), from files on disk as the CLI does:

  publish   = read the full v2 plan JSON, build the bundle, write it   (`tiers plan publish`)
  verify    = read the bundle, run the public check                     (`tiers plan verify BUNDLE`)
  baseline  = read the full v1 plan JSON of the same pool, verify it    (`tiers plan verify PLAN`, v1)

and, reported alongside (not part of the target): the one-off commit (nonces, leaves, Merkle
root), the sealed draw, one subject's opening and its check, the auditor's full v2 check, and
the standard-library verifier's public check. Medians of ``--repeats`` for the timed steps.

    flock /tmp/bench.lock .venv/bin/python benchmarks/draw_bundle.py [--subjects 10000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from draw import STRATUM_SHARES, key_item_ratios, machine_facts  # a sibling script

from supervision.bundle import (
    DrawCommitmentV2,
    PublicBundle,
    PublicSalt,
    SealedDraw,
    StratumCount,
    StratumOutcome,
    TaskCommitment,
    TaskOutcome,
    utc_text,
)
from supervision.draw import (
    STRATA,
    canonical_order,
    draw_stratified,
    pool_hash,
    seed_commitment,
    stream_state,
    subject_keys,
)
from supervision.draw_v2 import DRAW_ALGORITHM_V2, pool_leaves, sealed_selection
from supervision.inspection_policy import load_policy
from supervision.plan import DrawCommitment, InspectionPlan, TaskDraw, Visit, verify_plan
from supervision.plan_v2 import PlanParts, policy_hash_v2, publish_bundle, subject_opening
from supervision.verify_v2 import verify_bundle, verify_opening, verify_sealed_plan
from uscc import ALPHABET

VERIFIER = Path(__file__).resolve().parents[1] / "verifier" / "tiers_draw_verify.py"
T0 = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


def valid_codes(n: int, rng: np.random.Generator) -> np.ndarray:
    """n distinct valid USCCs (91 320102 + a 9-digit body + the GB 32100 check character), sorted."""
    body = np.char.zfill(rng.permutation(n).astype("S9"), 9)
    stems = np.char.add(b"91320102", body)
    digits = np.frombuffer(stems.tobytes(), dtype=np.uint8).reshape(n, 17) - ord("0")
    weights = np.array([pow(3, i, 31) for i in range(17)], dtype=np.int64)
    check = (31 - (digits.astype(np.int64) * weights).sum(axis=1) % 31) % 31
    codes = np.char.add(stems, np.frombuffer(ALPHABET.encode(), dtype="S1")[check])
    return codes[canonical_order(codes)]


def timed(fn, repeats: int) -> tuple[float, list[float], object]:
    runs, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs, value


def build_plans(n: int, rng: np.random.Generator):
    """(v2 plan, v1 plan, commitment) of one task over an n-subject pool, built from the engine's
    parts (the inspector assignment is benchmarked in benchmarks/draw.py; visits here are one per
    drawn subject, so the plan files have their real size)."""
    codes = valid_codes(n, rng)
    strata = rng.choice(len(STRATUM_SHARES), size=n, p=STRATUM_SHARES).astype(np.int64)
    grades = np.array([b"A", b"A", b"B", b"C", b"D"])[strata]
    leads = strata == 1
    policy = load_policy()
    counts = dict(zip(STRATA, np.bincount(strata, minlength=5).tolist(), strict=True))
    ratios = key_item_ratios(counts, "market", "MKT-01")
    k = [s.expected_inspections for s in ratios.strata]
    seed, nonce_key = rng.bytes(32), rng.bytes(32)

    t = time.perf_counter()
    leaves = pool_leaves(
        plan_id="P-bench", department="market", item="MKT-01", usccs=codes, strata=strata, nonce_key=nonce_key
    )
    root = leaves.root
    commit_s = time.perf_counter() - t
    policy_json = policy.policy_json()
    commitment = DrawCommitmentV2(
        plan_id="P-bench",
        period_start="2026-12-01",
        period_end="2026-12-31",
        grades_as_of="2026-09-30",
        committed_at=utc_text(T0),
        seed_commitment=seed_commitment(seed),
        policy_hash=policy_hash_v2(policy_json),
        salt_source="福彩3D 第2026325期开奖号码",
        salt_pattern=r"\d \d \d",
        tasks=[
            TaskCommitment(
                department="market",
                item="MKT-01",
                key_item=True,
                pool_size=n,
                pool_root=root.hex(),
                strata=[
                    StratumCount(stratum=s, pool_size=counts[s], ratio_ppm=r.ratio_ppm, draw=kk)
                    for s, r, kk in zip(STRATA, ratios.strata, k, strict=True)
                ],
            )
        ],
    )
    salt = PublicSalt(
        value="5 8 1",
        source=commitment.salt_source,
        known_at=utc_text(T0 + dt.timedelta(hours=12)),
        entered_at=utc_text(T0 + dt.timedelta(hours=13)),
        entered_by="复核员",
    )
    t = time.perf_counter()
    selection = sealed_selection(leaves, seed=seed, salt=salt.value, k_per_stratum=k, nonce_key=nonce_key)
    draw_s = time.perf_counter() - t

    usccs = codes.astype(str)
    pool = list(zip(usccs.tolist(), grades.astype(str).tolist(), leads.astype(int).tolist(), strict=True))

    def plan_of(rows: np.ndarray, pool_digest: str, summary: DrawCommitment, sealed: SealedDraw | None):
        drawn = usccs[rows].tolist()
        task = TaskDraw.model_construct(
            department="market",
            item="MKT-01",
            key_item=True,
            pool_hash=pool_digest,
            pool=pool,
            ungraded=[],
            excluded=[],
            ratios=ratios,
            k_per_stratum=dict(zip(STRATA, k, strict=True)),
            drawn=drawn,
        )
        visits = [
            Visit.model_construct(
                visit_order=i + 1,
                uscc=u,
                name=f"企业{i}",
                district_code="320102",
                district_name="玄武区",
                grade=str(grades[r].decode()),
                items=["MKT-01"],
                departments=["market"],
                inspectors=["I0001", "I0002"],
                unstaffed=[],
            )
            for i, (u, r) in enumerate(zip(drawn, rows, strict=True))
        ]
        return InspectionPlan.model_construct(
            plan_id="P-bench",
            period_start=dt.date(2026, 12, 1),
            period_end=dt.date(2026, 12, 31),
            grades_as_of=dt.date(2026, 9, 30),
            model_version="bench",
            commitment=summary,
            draw_seed_hex=seed.hex(),
            policy=policy.model_dump(mode="json"),
            inspectors_per_subject={"market/MKT-01": 2},
            tasks=[task],
            visits=visits,
            draws_total=len(drawn),
            visits_saved=0,
            joint_visits=0,
            summary=[],
            draw_v2=sealed,
        )

    sealed = SealedDraw(
        commitment=commitment,
        policy_json=policy_json,
        nonce_key=nonce_key.hex(),
        salt=salt,
        drawn_at=utc_text(T0 + dt.timedelta(hours=14)),
        tasks=[
            TaskOutcome(
                department="market",
                item="MKT-01",
                strata=[
                    StratumOutcome(
                        stratum=STRATA[s.code],
                        threshold=s.threshold.hex() if s.threshold else None,
                        drawn_root=s.drawn_root.hex(),
                        seal=s.seal.hex(),
                    )
                    for s in selection.seals
                ],
            )
        ],
    )
    v2 = plan_of(
        selection.rows,
        root.hex(),
        DrawCommitment(
            plan_id="P-bench",
            draw_algorithm=DRAW_ALGORITHM_V2,
            draw_seed_commitment=commitment.seed_commitment,
            policy_hash=commitment.policy_hash,
            pool_hashes={"market/MKT-01": root.hex()},
            public_salt=salt.value,
        ),
        sealed,
    )
    state, inc = stream_state(seed, department="market", item="MKT-01")
    v1_rows = draw_stratified(subject_keys(n, state, inc), strata, k)
    v1_pool_hash = pool_hash(codes, grades, leads)
    v1 = plan_of(
        v1_rows,
        v1_pool_hash,
        DrawCommitment(
            plan_id="P-bench",
            draw_seed_commitment=seed_commitment(seed),
            policy_hash=policy.policy_hash(),
            pool_hashes={"market/MKT-01": v1_pool_hash},
        ),
        None,
    )
    return v2, v1, commitment, commit_s, draw_s, sum(k)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(20261122)
    print(machine_facts())
    v2, v1, commitment, commit_s, draw_s, drawn = build_plans(args.subjects, rng)
    print(
        f"pool {args.subjects:,} subjects, {drawn:,} drawn; commit (nonces, leaves, Merkle root) {commit_s:.1f} s, "
        f"sealed draw (keys, selection, seals) {draw_s:.1f} s (one-off, before publishing)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        v2_file, v1_file, bundle_file = (
            folder / "plan-v2.json",
            folder / "plan-v1.json",
            folder / "bundle.json",
        )
        v2_file.write_text(v2.model_dump_json(), encoding="utf-8")
        v1_file.write_text(v1.model_dump_json(), encoding="utf-8")
        del v1
        print(
            f"files: v2 plan {v2_file.stat().st_size / 2**20:.0f} MiB, v1 plan {v1_file.stat().st_size / 2**20:.0f} MiB"
        )

        def publish() -> None:
            parts = PlanParts.model_validate_json(v2_file.read_bytes())  # as `tiers plan publish` reads it
            bundle_file.write_text(publish_bundle(parts).model_dump_json(), encoding="utf-8")

        def verify() -> bool:
            return verify_bundle(PublicBundle.model_validate_json(bundle_file.read_bytes()), commitment).match

        def baseline() -> bool:
            return verify_plan(InspectionPlan.model_validate_json(v1_file.read_bytes())).match

        publish_s, publish_runs, _ = timed(publish, args.repeats)
        verify_s, verify_runs, ok = timed(verify, args.repeats)
        assert ok, "the public check must say MATCH"
        print(f"bundle {bundle_file.stat().st_size / 2**20:.1f} MiB")
        base_s, base_runs, ok = timed(baseline, args.repeats)
        assert ok, "the v1 check must say MATCH"
        total = publish_s + verify_s
        print(
            f"publish (read plan, build and write bundle): median {publish_s:.2f} s  runs {[round(x, 2) for x in publish_runs]}"
        )
        print(
            f"verify  (read bundle, public check):          median {verify_s:.2f} s  runs {[round(x, 2) for x in verify_runs]}"
        )
        print(
            f"v1 verify (read plan, recompute the draw):     median {base_s:.2f} s  runs {[round(x, 2) for x in base_runs]}"
        )
        print(
            f"publish + verify = {total:.2f} s = {total / base_s:.2f}× today's v1 verify; "
            f"target ≤ 60 s: {'met' if total <= 60 else 'NOT met'}"
        )

        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-I", str(VERIFIER), str(bundle_file)], capture_output=True, text=True
        )
        stdlib_s = time.perf_counter() - start
        print(
            f"stdlib verifier, public check: {stdlib_s:.2f} s ({done.stdout.strip() or done.stderr.strip()})"
        )

        plan = InspectionPlan.model_validate_json(v2_file.read_bytes())
        bundle = PublicBundle.model_validate_json(bundle_file.read_bytes())
        subject = plan.tasks[0].drawn[len(plan.tasks[0].drawn) // 2]
        opening_s, _, opening = timed(lambda: subject_opening(plan, subject), 1)
        check_s, _, result = timed(lambda: verify_opening(bundle, opening, subject, commitment), 1)
        print(
            f"one subject: opening {opening_s:.2f} s (a pass over its pool's tree), its check {check_s:.3f} s "
            f"({result.verdict})"
        )
        audit_s, _, result = timed(lambda: verify_sealed_plan(plan, commitment, bundle), 1)
        print(
            f"auditor's v2 check (recompute everything, plan in memory): {audit_s:.1f} s ({result.verdict})"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS {peak:.1f} GiB; loadavg(1m) now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
