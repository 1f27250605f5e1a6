"""Findings of the outside-in review of tiers-draw-v2 (issue 18): an auditor's verifier written
from docs/draw-algorithm.md alone. One test per finding; each failed before its fix."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import random

import pytest
from sup_v2_fixtures import SALT_SOURCE, T0, draw_v2, stdlib_verifier
from typer.testing import CliRunner

import serving.cli.plan  # noqa: F401  (registers `tiers plan`)
from serving.cli.app import app
from supervision.bundle import DrawCommitmentV2, PublicBundle
from supervision.inspection_policy import canonical_json
from supervision.plan import load_plan_inputs, load_task, resolve_policy
from supervision.plan_v2 import DrawV2Error, accept_salt, publish_bundle, subject_openings
from supervision.verify_v2 import audit_plan, verify_bundle
from uscc import is_valid_uscc

V = stdlib_verifier()


def _bundle(plan) -> dict:
    return json.loads(publish_bundle(plan).model_dump_json())


def _stdlib(bundle: dict, opening: dict | None = None, uscc: str | None = None) -> str:
    """The standard-library verifier's verdict: MATCH, MISMATCH: <check>, or error."""
    try:
        V.check_bundle(copy.deepcopy(bundle))
        if opening is not None:
            V.check_opening(copy.deepcopy(opening))
    except V.Malformed:
        return "error"
    checks = V.Checks()
    V.public_checks(checks, copy.deepcopy(bundle), None)
    if opening is not None:
        V.subject_checks(checks, bundle, opening, uscc)
    failure = checks.first_failure()
    return "MATCH" if failure is None else f"MISMATCH: {failure['name']}"


def _project(bundle: dict) -> str:
    """``tiers plan verify``'s verdict on the same bytes (read as the CLI reads them)."""
    try:
        parsed = PublicBundle.model_validate_json(json.dumps(bundle))
    except ValueError:
        return "error"
    result = verify_bundle(parsed)
    return "MATCH" if result.match else "MISMATCH: " + result.first_difference.split(":")[0]


def _rehash_policy(bundle: dict, policy) -> dict:
    """The bundle with another policy text, honestly re-committed (its hash in the commitment)."""
    b = copy.deepcopy(bundle)
    b["policy_json"] = policy if isinstance(policy, str) else json.dumps(policy)
    b["commitment"]["policy_hash"] = hashlib.sha256(b["policy_json"].encode("utf-8")).hexdigest()
    return b


# --------------------------------------------------------------------------- 1. salt spelling


@pytest.mark.parametrize("spelling", ["581", "5,8,1", "５ ８ １", "5 8 1 ", " 5 8 1", "5  8 1"])
def test_a_salt_spelled_otherwise_than_committed_fails_both_verifiers(v2_plan, spelling) -> None:
    _, _, plan = v2_plan
    bundle = _bundle(plan)
    assert bundle["commitment"]["salt_pattern"] == r"\d \d \d"
    bundle["salt"]["value"] = spelling
    assert _stdlib(bundle) in ("error", "MISMATCH: salt_format")
    assert _project(bundle) in ("error", "MISMATCH: salt_format")


def test_salt_entry_normalises_to_the_committed_format_or_refuses(v2_plan) -> None:
    commitment, _, _ = v2_plan
    times = {"known_at": T0 + dt.timedelta(hours=13), "entered_at": T0 + dt.timedelta(hours=14)}
    typed = accept_salt(commitment, value="５ ８ １", source=SALT_SOURCE, entered_by="李四", **times)
    assert typed.value == "5 8 1"  # NFKC, then the committed pattern
    for wrong in ("581", "5,8,1", "5 8"):
        with pytest.raises(DrawV2Error, match="salt_pattern"):
            accept_salt(commitment, value=wrong, source=SALT_SOURCE, entered_by="李四", **times)


def test_a_salt_pattern_outside_the_portable_grammar_is_refused(v2_plan) -> None:
    commitment, _, _ = v2_plan
    data = json.loads(commitment.model_dump_json())
    for pattern in (r"\d+", r".*", r"(\d) \1", r"\w{3}", r"\d{3,2}", "[9-0]", ""):
        data["salt_pattern"] = pattern
        with pytest.raises(ValueError):
            DrawCommitmentV2.model_validate(data)
        with pytest.raises(V.Malformed):
            V.check_commitment(copy.deepcopy(data))


# --------------------------------------------------------------------------- 2. register


def test_auditor_finds_a_pool_with_a_subject_left_out(task_file) -> None:
    """The office commits to a pool without one eligible subject (every other check passes);
    checking the plan against the register it was built from names the missing subject."""
    task = load_task(task_file).model_copy(update={"seed_hex": None})
    inputs, policy = load_plan_inputs(task, task_file.parent), resolve_policy(task, task_file.parent)
    left_out = inputs.grades["uscc"].iloc[3]
    forged = inputs.model_copy(update={"subjects": inputs.subjects[inputs.subjects["uscc"] != left_out]})
    _, _, plan = draw_v2(task, forged, policy)
    assert audit_plan(plan).match  # nothing in the plan itself shows it
    result = audit_plan(plan, register=(task, inputs))
    assert not result.match
    assert result.first_difference.startswith("register ")
    assert left_out in result.first_difference
    _, _, honest = draw_v2(task, inputs, policy)
    assert audit_plan(honest, register=(task, inputs)).match
    # padded (a subject the register does not make eligible): checked against the smaller register
    padded = audit_plan(honest, register=(task, forged)).first_difference
    assert "not eligible by the register" in padded and left_out in padded


# --------------------------------------------------------------------------- 3. policy validity


def _policy(plan) -> dict:
    return json.loads(plan.draw_v2.policy_json)


def test_policy_validity_is_exactly_section_17_in_both_verifiers(v2_plan) -> None:
    _, _, plan = v2_plan
    bundle, policy = _bundle(plan), _policy(plan)
    invalid = []
    for field in ("departments", "items"):
        p = copy.deepcopy(policy)
        del p[field]
        invalid.append(p)
    for rule in ("a_no_visit_without_lead", "lead_window_days", "key_item"):
        p = copy.deepcopy(policy)
        del p["defaults"][rule]
        invalid.append(p)
    for field in ("name", "version"):
        p = copy.deepcopy(policy)
        p[field] = ""
        invalid.append(p)
    p = copy.deepcopy(policy)
    p["version"] = 3
    invalid.append(p)
    p = copy.deepcopy(policy)
    p["defaults"]["lead_window_days"] = 365.0
    invalid.append(p)
    p = copy.deepcopy(policy)
    p["items"] = {"X-1": {"grade_ratios": {"B": None}}}
    invalid.append(p)
    for p in invalid:
        b = _rehash_policy(bundle, p)
        assert _stdlib(b) == "MISMATCH: policy", p
        assert _project(b) == "MISMATCH: policy", p
    # a partial override with nulls is valid in both
    p = copy.deepcopy(policy)
    p["departments"] = {"nobody": {"floor_ratio": None, "grade_ratios": {"D": 1.0}}}
    b = _rehash_policy(bundle, p)
    assert _stdlib(b) == _project(b) == "MATCH"


def test_the_committed_key_item_is_final(v2_plan) -> None:
    """An item override's key_item cannot change the committed one: a general item (cap) stays
    general in the ratio check whatever the policy's override says."""
    _, _, plan = v2_plan
    bundle, policy = _bundle(plan), _policy(plan)
    task = bundle["commitment"]["tasks"][0]
    policy["items"] = {**policy["items"], task["item"]: {"key_item": not task["key_item"]}}
    b = _rehash_policy(bundle, policy)
    assert _stdlib(b) == _project(b) == "MATCH"


def test_policy_json_has_a_length_limit(v2_plan) -> None:
    _, _, plan = v2_plan
    b = _rehash_policy(_bundle(plan), _policy(plan) | {"name": "x"})
    b["policy_json"] += " " * 100_001
    b["commitment"]["policy_hash"] = hashlib.sha256(b["policy_json"].encode()).hexdigest()
    assert _stdlib(b) == _project(b) == "error"


# --------------------------------------------------------------------------- 4. one verdict


def _mutations(bundle: dict, rng: random.Random, n: int):
    """Seeded random mutations of a bundle: values retyped, nudged, removed, added, respelled."""

    def leaves(node, path=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from leaves(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from leaves(v, (*path, i))
        yield path, node

    def retype(v):
        if isinstance(v, bool):
            return rng.choice([int(v), str(v).lower(), not v, None])
        if isinstance(v, int):
            return rng.choice([float(v), v + 1, v - 1, str(v), True, None])
        if isinstance(v, float):
            return rng.choice([int(v), str(v), v * 2, None])
        if isinstance(v, str):
            return rng.choice(
                [v + " ", v.upper(), v[:-1], v.replace("0", "０"), v + "\x85", v + "\x7f", "", 5, None]
            )
        return rng.choice([None, {}, [], "x"])

    all_leaves = [p for p, _ in leaves(bundle) if p]
    for _ in range(n):
        b = copy.deepcopy(bundle)
        path = rng.choice(all_leaves)
        node = b
        for k in path[:-1]:
            node = node[k]
        roll = rng.random()
        if roll < 0.15 and isinstance(node, dict):
            del node[path[-1]]
        elif roll < 0.25 and isinstance(node, dict):
            node["extra"] = 1
        else:
            node[path[-1]] = retype(node[path[-1]])
        yield f"{path}", b


def _policy_mutations(bundle: dict, rng: random.Random, n: int):
    """The policy changed and honestly re-hashed, so the policy check itself is compared."""
    policy = json.loads(bundle["policy_json"])
    for name, b in _mutations({"p": policy}, rng, n):
        yield f"policy {name}", _rehash_policy(bundle, b.get("p"))


def test_both_verifiers_reach_the_same_verdict_on_mutated_documents(v2_plan) -> None:
    _, _, plan = v2_plan
    bundle = _bundle(plan)
    rng = random.Random(18)  # noqa: S311  (seeded, reproducible test mutations; no secret)
    corpus = [("untouched", bundle), *_mutations(bundle, rng, 250), *_policy_mutations(bundle, rng, 150)]
    # the review's named cases
    corpus += [
        (
            "lead_window_days 365.0",
            _rehash_policy(
                bundle, _policy(plan) | {"defaults": {**_policy(plan)["defaults"], "lead_window_days": 365.0}}
            ),
        ),
        ("policy 1e-2", _rehash_policy(bundle, bundle["policy_json"].replace("0.01", "1e-2"))),
        ("policy not canonical", _rehash_policy(bundle, json.dumps(_policy(plan), indent=1))),
        ("time with full-width digit", {**bundle, "drawn_at": bundle["drawn_at"].replace("0", "０", 1)}),
        ("C1 control character", {**bundle, "salt": {**bundle["salt"], "entered_by": "李四\x85"}}),
    ]
    differ = [(name, _stdlib(b), _project(b)) for name, b in corpus if _stdlib(b) != _project(b)]
    assert not differ, differ[:5]


# --------------------------------------------------------------------------- 5. smaller findings


def test_controls_c0_del_and_c1_are_refused_in_text(v2_plan) -> None:
    _, _, plan = v2_plan
    for char in ("\x1f", "\x7f", "\x85", "\x9f"):
        b = _bundle(plan)
        b["salt"]["entered_by"] = "李四" + char
        assert _stdlib(b) == _project(b) == "error", repr(char)


def test_times_are_ascii_digits_only(v2_plan) -> None:
    _, _, plan = v2_plan
    b = _bundle(plan)
    b["drawn_at"] = b["drawn_at"].replace("2", "２", 1)
    assert _stdlib(b) == _project(b) == "error"


def test_a_uscc_must_start_with_a_registration_authority_code() -> None:
    from stdnum.cn import uscc as stdnum_uscc

    stem = "01320102MA1000001"
    code = stem + stdnum_uscc.calc_check_digit(stem)
    assert not is_valid_uscc(code)
    assert not V.valid_uscc(code)
    for first in "123456789ANY":
        stem = first + "1320102MA100000"[:16]
        assert is_valid_uscc(stem + stdnum_uscc.calc_check_digit(stem)) == V.valid_uscc(
            stem + stdnum_uscc.calc_check_digit(stem)
        )


def test_openings_with_a_repeated_task_or_a_drawn_path_for_an_undrawn_subject_are_refused(v2_plan) -> None:
    from supervision.bundle import SubjectOpening

    _, _, plan = v2_plan
    openings = subject_openings(plan, [u for u, _, _ in plan.tasks[0].pool][:40])
    drawn = set(plan.tasks[0].drawn)
    undrawn = next(o for u, o in openings.items() if u not in drawn)
    data = json.loads(undrawn.model_dump_json())
    repeated = copy.deepcopy(data)
    repeated["tasks"].append(repeated["tasks"][0])
    pathful = copy.deepcopy(data)
    pathful["tasks"][0]["drawn_path"] = ["0" * 64]
    for bad in (repeated, pathful):
        with pytest.raises(ValueError):
            SubjectOpening.model_validate(bad)
        with pytest.raises(V.Malformed):
            V.check_opening(copy.deepcopy(bad))


def test_verify_prints_what_the_docs_say(v2_plan, tmp_path) -> None:
    _, _, plan = v2_plan
    path = tmp_path / "bundle.json"
    path.write_text(canonical_json(_bundle(plan)), encoding="utf-8")
    result = CliRunner().invoke(app, ["plan", "verify", str(path)])
    assert result.exit_code == 0
    assert result.stdout == "MATCH\n"
    code, text = V.run([str(path)])
    assert (code, text) == (0, "MATCH")
