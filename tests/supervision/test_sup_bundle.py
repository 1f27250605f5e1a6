"""tiers-draw-v2: the public bundle, subject openings, the auditor's check, the salt, the policy
bytes, tampering, and the worked example of docs/draw-algorithm.md §20 (docs/draw-v2-vectors.json).

Issue 18's findings, each with its test here:
- the only verifiable artefact listed every subject's grade → the bundle names no undrawn
  subject and no grade, and still verifies (test_bundle_reveals_no_grade_and_no_undrawn_subject);
- the policy hash was over other bytes than the embedded policy → v2 hashes exactly the bytes it
  embeds (test_policy_hash_is_over_exactly_the_embedded_bytes);
- nothing made the office wait for public randomness → the draw refuses to run without a salt
  from the announced source, known after the commitment (test_draw_waits_for_the_public_salt …).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import pytest
from sup_v2_fixtures import (
    SALT_PATTERN,
    SALT_SOURCE,
    T0,
    draw_v2,
    small_inputs,
    stdlib_verifier,
    swap,
    tampered_bundles,
    task_members,
    usccs,
)

from supervision.bundle import PublicBundle, SubjectOpening, parse_utc
from supervision.draw import STRATA
from supervision.inspection_policy import load_policy
from supervision.plan import InspectionPlan, PlanCreate, TaskItem, verify_plan
from supervision.plan_v2 import (
    DrawV2Error,
    accept_salt,
    commit_v2,
    create_plan_v2,
    publish_bundle,
    subject_opening,
    subject_openings,
)
from supervision.verify_v2 import audit_plan, verify_bundle, verify_opening, verify_sealed_plan

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "docs" / "draw-v2-vectors.json"


def _bundle_dict(plan: InspectionPlan) -> dict:
    return json.loads(publish_bundle(plan).model_dump_json())


def _pool_usccs(plan: InspectionPlan) -> set[str]:
    return {u for td in plan.tasks for u, *_ in td.pool}


# --------------------------------------------------------------------------- the bundle


def test_bundle_reveals_no_grade_and_no_undrawn_subject(v2_plan) -> None:
    commitment, _, plan = v2_plan
    text = publish_bundle(plan).model_dump_json()
    drawn = {u for td in plan.tasks for u in td.drawn}
    undrawn = _pool_usccs(plan) - drawn
    assert undrawn and not [u for u in undrawn if u in text]

    # Per subject the bundle holds a bare USCC string, nothing else: no object anywhere in it
    # contains a USCC together with a grade or stratum.
    def objects_with_subjects(node):
        if isinstance(node, dict):
            values = [v for v in node.values() if isinstance(v, str | list)]
            flat = [x for v in values for x in (v if isinstance(v, list) else [v])]
            if any(isinstance(x, str) and x in drawn for x in flat):
                yield node
            for v in node.values():
                yield from objects_with_subjects(v)
        elif isinstance(node, list):
            for v in node:
                yield from objects_with_subjects(v)

    bundle = json.loads(text)
    for node in objects_with_subjects(bundle):
        assert set(node) == {
            "department",
            "item",
            "drawn",
            "seals",
        }  # a task: drawn USCCs + per-stratum seals
        assert all(isinstance(u, str) and len(u) == 18 for u in node["drawn"])
    # the full plan, by contrast, shows every pool subject's grade
    assert all(u in plan.model_dump_json() for u in undrawn)
    assert verify_bundle(PublicBundle.model_validate_json(text), commitment).match


def test_each_subject_checks_its_own_treatment(v2_plan) -> None:
    commitment, _, plan = v2_plan
    bundle = publish_bundle(plan)
    openings = subject_openings(plan, _pool_usccs(plan))
    assert set(openings) == _pool_usccs(plan)
    for uscc, opening in openings.items():
        result = verify_opening(bundle, opening, uscc, commitment)
        assert result.match, (uscc, result.first_difference)
        covering = {f"{td.department}/{td.item}" for td in plan.tasks if uscc in {u for u, *_ in td.pool}}
        assert {t.key for t in opening.tasks} == covering
        # an opening names no other subject
        others = _pool_usccs(plan) - {uscc}
        assert not [u for u in others if u in opening.model_dump_json()]
    some = next(iter(openings))
    wrong = verify_opening(bundle, openings[some], next(u for u in openings if u != some))
    assert not wrong.match and wrong.first_difference.startswith("opening")
    with pytest.raises(DrawV2Error, match="in no pool"):
        subject_opening(plan, "91320102MA1XXXXXX0")


def test_auditor_checks_everything_and_that_the_bundle_is_the_plans(v2_plan) -> None:
    commitment, _, plan = v2_plan
    again = InspectionPlan.model_validate_json(plan.model_dump_json())  # as read from the plan file
    result = verify_sealed_plan(again, commitment, publish_bundle(again))
    assert result.match, result.first_difference
    assert audit_plan(again, commitment).match  # either version
    with pytest.raises(ValueError, match="tiers-draw-v2"):
        verify_plan(again)  # v1's check refuses a v2 plan rather than failing it
    names = [c.name for c in result.checks]
    assert {"pool_root market/MKT-01", "drawn fire/FIRE-01", "outcomes market/MKT-02", "bundle"} <= set(names)
    # a swapped subject in the full plan is named
    td = again.tasks[0]
    newcomer = next(u for u, *_ in td.pool if u not in td.drawn)
    tampered = again.model_copy(deep=True)
    tampered.tasks[0].drawn = sorted([newcomer, *td.drawn[1:]])
    failed = audit_plan(tampered)
    assert (
        not failed.match
        and failed.first_difference.startswith("drawn market/MKT-01")
        and newcomer in failed.first_difference
    )


def test_v1_plans_keep_verifying_and_serialise_as_before(task_file: Path) -> None:
    from supervision.plan import create_plan, load_plan_inputs, load_task, resolve_policy

    task = load_task(task_file)
    plan = create_plan(
        task, load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent), bytes(32)
    )
    assert (
        plan.draw_v2 is None
        and "draw_v2" not in plan.model_dump()
        and "draw_v2" not in plan.model_dump_json()
    )
    assert verify_plan(InspectionPlan.model_validate_json(plan.model_dump_json())).match
    with pytest.raises(DrawV2Error, match="tiers-draw-v1"):
        publish_bundle(plan)


def test_policy_hash_is_over_exactly_the_embedded_bytes(v2_plan, task_file: Path) -> None:
    from supervision.inspection_policy import canonical_json
    from supervision.plan import create_plan, load_plan_inputs, load_task, resolve_policy

    commitment, _, plan = v2_plan
    bundle = publish_bundle(plan)
    assert hashlib.sha256(bundle.policy_json.encode("utf-8")).hexdigest() == commitment.policy_hash
    assert '"lead_window_days":365' in bundle.policy_json  # every rule, no legacy omission
    assert json.loads(bundle.policy_json) == plan.policy
    # v1, for contrast: its hash is not the hash of the policy it embeds (the finding)
    task = load_task(task_file)
    v1 = create_plan(
        task, load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent), bytes(32)
    )
    assert hashlib.sha256(canonical_json(v1.policy).encode()).hexdigest() != v1.commitment.policy_hash


# --------------------------------------------------------------------------- the salt


def _committed(task_file: Path):
    from supervision.plan import load_plan_inputs, load_task, resolve_policy

    task = load_task(task_file).model_copy(update={"seed_hex": None})
    inputs, policy = load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent)
    seed, nonce_key = bytes(range(32)), bytes(32)
    commitment = commit_v2(
        task,
        inputs,
        policy,
        seed=seed,
        nonce_key=nonce_key,
        salt_source=SALT_SOURCE,
        salt_pattern=SALT_PATTERN,
        committed_at=T0,
    )
    return task, inputs, policy, seed, nonce_key, commitment, SALT_SOURCE, T0


def test_draw_waits_for_the_public_salt_from_the_announced_source(task_file: Path) -> None:
    task, inputs, policy, seed, nonce_key, commitment, source, t0 = _committed(task_file)
    hour = dt.timedelta(hours=1)
    draw = {"seed": seed, "nonce_key": nonce_key, "commitment": commitment}
    with pytest.raises(DrawV2Error, match="needs the public salt"):
        create_plan_v2(task, inputs, policy, **draw, salt=None, drawn_at=t0 + hour)
    with pytest.raises(DrawV2Error, match="not after the commitment") as early:
        accept_salt(
            commitment, value="1 2 3", source=source, known_at=t0, entered_at=t0 + hour, entered_by="x"
        )
    assert early.value.rule == "salt_known_before_commitment"  # the rule, for a caller's own words
    with pytest.raises(DrawV2Error, match="not the source named"):
        accept_salt(
            commitment,
            value="1 2 3",
            source="上证指数收盘",
            known_at=t0 + hour,
            entered_at=t0 + hour,
            entered_by="x",
        )
    with pytest.raises(DrawV2Error, match="before it became known") as future:
        accept_salt(
            commitment,
            value="1 2 3",
            source=source,
            known_at=t0 + 2 * hour,
            entered_at=t0 + hour,
            entered_by="x",
        )
    assert future.value.rule == "salt_entered_before_known"
    with pytest.raises(DrawV2Error, match="not written as") as misspelt:
        accept_salt(
            commitment, value="123", source=source, known_at=t0 + hour, entered_at=t0 + hour, entered_by="x"
        )
    assert misspelt.value.rule == "salt_format"
    salt = accept_salt(
        commitment, value="1 2 3", source=source, known_at=t0 + hour, entered_at=t0 + 2 * hour, entered_by="x"
    )
    with pytest.raises(DrawV2Error, match="before the salt was entered"):
        create_plan_v2(task, inputs, policy, **draw, salt=salt, drawn_at=t0 + hour)
    plan = create_plan_v2(task, inputs, policy, **draw, salt=salt, drawn_at=t0 + 3 * hour)
    sealed = plan.draw_v2
    assert (
        parse_utc(commitment.committed_at)
        < parse_utc(sealed.salt.known_at)
        <= parse_utc(sealed.salt.entered_at)
    )
    assert parse_utc(sealed.salt.entered_at) <= parse_utc(sealed.drawn_at)
    # the salt decides the draw: another value, another list
    other = accept_salt(
        commitment, value="1 2 4", source=source, known_at=t0 + hour, entered_at=t0 + 2 * hour, entered_by="x"
    )
    replan = create_plan_v2(task, inputs, policy, **draw, salt=other, drawn_at=t0 + 3 * hour)
    assert [td.drawn for td in replan.tasks] != [td.drawn for td in plan.tasks]


def test_draw_refuses_a_salt_by_the_rule_its_entry_would(task_file: Path) -> None:
    """The salt's rules are one set: a salt that reaches the draw without `accept_salt` (read from a
    file, edited) is refused by the draw with the same rule name and sentence as its entry."""
    task, inputs, policy, seed, nonce_key, commitment, source, t0 = _committed(task_file)
    hour = dt.timedelta(hours=1)
    draw = {"seed": seed, "nonce_key": nonce_key, "commitment": commitment, "drawn_at": t0 + 3 * hour}
    salt = accept_salt(
        commitment, value="1 2 3", source=source, known_at=t0 + hour, entered_at=t0 + 2 * hour, entered_by="x"
    )
    for change, rule in (
        ({"source": "上证指数收盘"}, "salt_source"),
        ({"value": "123"}, "salt_format"),
        ({"known_at": salt.entered_at, "entered_at": salt.known_at}, "salt_entered_before_known"),
    ):
        bad = salt.model_copy(update=change)
        with pytest.raises(DrawV2Error) as entered:
            accept_salt(commitment, value=bad.value, source=bad.source, known_at=parse_utc(bad.known_at),
                        entered_at=parse_utc(bad.entered_at), entered_by="x")
        with pytest.raises(DrawV2Error) as drawn:
            create_plan_v2(task, inputs, policy, **draw, salt=bad)
        assert (drawn.value.rule, str(drawn.value)) == (entered.value.rule, str(entered.value)) == (
            rule, str(entered.value))


def test_draw_refuses_inputs_or_secrets_other_than_committed(task_file: Path, city) -> None:
    from supervision.plan import load_plan_inputs

    task, inputs, policy, seed, nonce_key, commitment, source, t0 = _committed(task_file)
    hour = dt.timedelta(hours=1)
    salt = accept_salt(
        commitment, value="9 9 9", source=source, known_at=t0 + hour, entered_at=t0 + hour, entered_by="x"
    )
    args = {"commitment": commitment, "salt": salt, "drawn_at": t0 + 2 * hour}
    with pytest.raises(DrawV2Error, match="seed"):
        create_plan_v2(task, inputs, policy, seed=bytes(32), nonce_key=nonce_key, **args)
    with pytest.raises(DrawV2Error, match="Merkle root"):
        create_plan_v2(task, inputs, policy, seed=seed, nonce_key=bytes(range(32)), **args)
    grades = city["grades"].copy()
    grades.loc[grades.index[0], "grade"] = "D" if grades["grade"].iloc[0] != "D" else "A"
    grades.to_csv(task_file.parent / "grades.csv", index=False)  # a grade changed after the commitment
    with pytest.raises(DrawV2Error, match="Merkle root"):
        create_plan_v2(
            task, load_plan_inputs(task, task_file.parent), policy, seed=seed, nonce_key=nonce_key, **args
        )
    with pytest.raises(DrawV2Error, match="policy"):
        create_plan_v2(
            task,
            inputs,
            load_policy("default").model_copy(update={"version": "x"}),
            seed=seed,
            nonce_key=nonce_key,
            **args,
        )


# --------------------------------------------------------------------------- tampering


def test_tampered_bundles_fail_naming_what_is_wrong(v2_plan) -> None:
    commitment, _, plan = v2_plan
    openings = subject_openings(plan, _pool_usccs(plan))
    for name, (data, public_failure) in tampered_bundles(plan).items():
        bundle = PublicBundle.model_validate(data)
        alone, with_commitment = verify_bundle(bundle), verify_bundle(bundle, commitment)
        if public_failure is None:
            assert alone.match, name  # what the public cannot see (docs §18.4) …
            # … every subject of the task sees (pool root, seal, salt, list), or the auditor
            if name != "seal changed":
                assert any(not verify_opening(bundle, o, u).match for u, o in openings.items()), name
        else:
            assert not alone.match and alone.first_difference.startswith(public_failure + ":"), (
                name,
                alone.first_difference,
            )
        touched_commitment = data["commitment"] != json.loads(commitment.model_dump_json())
        if touched_commitment:
            assert with_commitment.first_difference.startswith("published_commitment"), name
    # a swapped drawn subject: the subject swapped in, the one swapped out and every other
    # subject of the task each find it
    swapped, out, newcomer = swap(plan)
    bundle = PublicBundle.model_validate(swapped)
    assert verify_opening(bundle, openings[newcomer], newcomer).first_difference.startswith(
        "selection market/MKT-01"
    )
    assert verify_opening(bundle, openings[out], out).first_difference.startswith("selection market/MKT-01")
    bystander = next(u for u in plan.tasks[0].drawn if u != out)
    assert verify_opening(bundle, openings[bystander], bystander).first_difference.startswith(
        "seal market/MKT-01"
    )
    # a changed seal: the subjects of that stratum find it
    data, _ = tampered_bundles(plan)["seal changed"]
    _, _, stratum = task_members(plan)
    c_member = next(u for u, s in stratum.items() if s == "C")
    result = verify_opening(PublicBundle.model_validate(data), openings[c_member], c_member)
    assert result.first_difference.startswith("seal market/MKT-01")


# --------------------------------------------------------------------------- worked example (§20)


def tiny_example() -> dict:
    """A seven-subject plan with fixed secrets and times: every intermediate value of its key item
    MKT-01 (stratum C empty, so k = 0 and a seal over nothing; two D subjects both drawn, so their
    drawn-set paths are not empty), and a general item MKT-02 on the same pool, whose ratios the
    general-item cap brings down to the floor."""
    from supervision.draw_v2 import blind, drawn_digest, nonces, salt_digest, selection_keys, task_digest
    from supervision.plan_v2 import pool_frame, task_pool_leaves

    codes = usccs(7)
    inputs = small_inputs(
        codes,
        ["A", "B", "A", "D", "B", "D", "A"],
        [codes[6]],
        [("market", "MKT-01", True), ("market", "MKT-02", False)],
    )
    request = PlanCreate(
        plan_id="P-2026-12",
        period_start=dt.date(2026, 12, 1),
        period_end=dt.date(2026, 12, 31),
        as_of=dt.date(2026, 9, 30),
        tasks=[TaskItem(department="market", item="MKT-01"), TaskItem(department="market", item="MKT-02")],
    )
    seed, nonce_key = bytes(range(32)), bytes(range(32, 64))
    commitment, salt, plan = draw_v2(request, inputs, load_policy("default"), seed=seed, nonce_key=nonce_key)
    td = plan.tasks[0]
    leaves = task_pool_leaves(plan.plan_id, td.department, td.item, pool_frame(td), nonce_key)
    digest = task_digest(plan.plan_id, td.department, td.item)
    keys = selection_keys(seed, salt_digest(salt.value), leaves.leaves)
    subject_nonces = nonces(nonce_key, digest, leaves.usccs)
    outcome = plan.draw_v2.tasks[0]
    return {
        "about": "tiers-draw-v2 worked example (docs/draw-algorithm.md §20); secrets are fixed test values",
        "plan_id": plan.plan_id,
        "department": td.department,
        "item": td.item,
        "seed": seed.hex(),
        "nonce_key": nonce_key.hex(),
        "salt": salt.value,
        "task_digest": digest.hex(),
        "salt_digest": salt_digest(salt.value).hex(),
        "subjects": [
            {
                "uscc": u.decode(),
                "stratum": STRATA[int(code)],
                "nonce": nonce.tobytes().hex(),
                "leaf": leaf.tobytes().hex(),
                "tree_index": int(leaves.tree_index[i]),
                "key": key.tobytes().hex(),
                "drawn": u.decode() in td.drawn,
            }
            for i, (u, code, nonce, leaf, key) in enumerate(
                zip(leaves.usccs, leaves.strata, subject_nonces, leaves.leaves, keys, strict=True)
            )
        ],
        "pool_root": commitment.tasks[0].pool_root,
        "drawn_digest": drawn_digest(td.drawn).hex(),
        "strata": [
            {**s.model_dump(), "blind": blind(nonce_key, digest, STRATA.index(s.stratum)).hex()}
            for s in outcome.strata
        ],
        "commitment_digest": commitment.digest(),
        "commitment": json.loads(commitment.model_dump_json()),
        "bundle": _bundle_dict(plan),
        "openings": {
            u: json.loads(o.model_dump_json()) for u, o in sorted(subject_openings(plan, codes).items())
        },
    }


def test_worked_example_matches_the_published_vectors() -> None:
    expected = tiny_example()
    assert json.loads(VECTORS.read_text(encoding="utf-8")) == expected, (
        "docs/draw-v2-vectors.json is stale: regenerate with "
        "`PYTHONPATH=. .venv/bin/python tests/supervision/test_sup_bundle.py > docs/draw-v2-vectors.json`"
    )
    bundle = PublicBundle.model_validate(expected["bundle"])
    for uscc, data in expected["openings"].items():
        assert verify_opening(bundle, SubjectOpening.model_validate(data), uscc).match
    # the independent verifier, from the specification, reproduces every value
    v = stdlib_verifier()
    digest = v.task_digest(expected["plan_id"], expected["department"], expected["item"])
    assert digest.hex() == expected["task_digest"]
    seed, nonce_key = bytes.fromhex(expected["seed"]), bytes.fromhex(expected["nonce_key"])
    leaves = {}
    for s in expected["subjects"]:
        nonce = v.sha256(v.tag("nonce"), nonce_key, digest, s["uscc"].encode("ascii"))
        leaf = v.subject_leaf(digest, s["uscc"], v.STRATA.index(s["stratum"]), nonce)
        assert (nonce.hex(), leaf.hex()) == (s["nonce"], s["leaf"])
        assert v.subject_key(seed, expected["salt"], leaf).hex() == s["key"]
        leaves[s["tree_index"]] = leaf
    assert v.tree_root([leaves[i] for i in range(len(leaves))]).hex() == expected["pool_root"]
    assert v.digest_of(expected["commitment"]) == expected["commitment_digest"]
    for uscc, data in expected["openings"].items():
        checks = v.Checks()
        v.public_checks(checks, expected["bundle"], expected["commitment"])
        v.subject_checks(checks, expected["bundle"], data, uscc)
        assert checks.first_failure() is None, (uscc, checks.first_failure())
    # the excerpt in the specification is this example
    spec = (REPO / "docs" / "draw-algorithm.md").read_text(encoding="utf-8")
    first = expected["subjects"][0]
    for value in (
        expected["task_digest"],
        first["leaf"],
        first["key"],
        expected["pool_root"],
        expected["commitment_digest"],
    ):
        assert value in spec
    # the example exercises a real choice: A draws 1 of 2, B 1 of 2; the A_lead subject is drawn
    by_stratum = {}
    for s in expected["subjects"]:
        by_stratum.setdefault(s["stratum"], []).append(s["drawn"])
    assert sorted(by_stratum["A"]) == [False, True] and sorted(by_stratum["B"]) == [False, True]
    assert by_stratum["A_lead"] == [True]
    # …an empty stratum (k = 0, sealed all the same), drawn-set paths, and the general-item cap
    key_task, general = expected["commitment"]["tasks"]
    assert [s["pool_size"] for s in key_task["strata"]] == [2, 1, 2, 0, 2]
    assert key_task["strata"][3]["draw"] == 0 and expected["strata"][3]["threshold"] is None
    assert set(expected["bundle"]["tasks"][0]["seals"]) == set(STRATA)
    assert any(t["drawn_path"] for o in expected["openings"].values() for t in o["tasks"])
    assert not general["key_item"]
    assert [s["ratio_ppm"] for s in general["strata"]] == [10_000] * 5  # capped to the floor
    assert [s["ratio_ppm"] for s in key_task["strata"]][4] == 1_000_000


if __name__ == "__main__":  # regenerate docs/draw-v2-vectors.json
    sys.stdout.write(json.dumps(tiny_example(), indent=1, ensure_ascii=False) + "\n")
