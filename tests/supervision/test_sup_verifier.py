"""The standard-library verifier (verifier/tiers_draw_verify.py) is independent of the project and
agrees with `tiers plan verify` check by check: on MATCH and on every tampering, for the public,
subject and auditor checks. It runs as a subprocess in isolated mode (``python -I``: no
PYTHONPATH, no site packages of ours)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sup_v2_fixtures import swap, tampered_bundles, task_members
from typer.testing import CliRunner

import serving.cli.plan  # noqa: F401  (registers `tiers plan`)
from serving.cli.app import app
from supervision.plan_v2 import publish_bundle, subject_openings

VERIFIER = Path(__file__).resolve().parents[2] / "verifier" / "tiers_draw_verify.py"
runner = CliRunner()


def stdlib_verify(*args: str) -> tuple[int, dict | str]:
    done = subprocess.run(
        [sys.executable, "-I", str(VERIFIER), *args, "--json"], capture_output=True, text=True, timeout=300
    )
    return done.returncode, json.loads(done.stdout) if done.returncode in (0, 1) else done.stderr


def tiers_verify(*args: str) -> tuple[int, dict | str]:
    result = runner.invoke(app, ["plan", "verify", *args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.exit_code in (0, 1) else result.stderr


def assert_agree(*args: str) -> dict:
    """Both verifiers give the same exit code and the same checks (names, pass/fail) in order."""
    ours, theirs = tiers_verify(*args), stdlib_verify(*args)
    assert ours[0] == theirs[0], (args, ours, theirs)
    if ours[0] == 2:
        return {}
    assert [(c["name"], c["ok"]) for c in ours[1]["checks"]] == [
        (c["name"], c["ok"]) for c in theirs[1]["checks"]
    ]
    return ours[1]


def test_the_verifier_uses_only_the_standard_library() -> None:
    tree = ast.parse(VERIFIER.read_text(encoding="utf-8"))
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


@pytest.fixture(scope="module")
def files(v2_plan, tmp_path_factory: pytest.TempPathFactory):
    commitment, _, plan = v2_plan
    where = tmp_path_factory.mktemp("verifier")
    paths = {
        "commitment": where / "commitment.json",
        "plan": where / "plan.json",
        "bundle": where / "bundle.json",
    }
    paths["commitment"].write_text(commitment.model_dump_json(indent=1), encoding="utf-8")
    paths["plan"].write_text(plan.model_dump_json(indent=1), encoding="utf-8")
    paths["bundle"].write_text(publish_bundle(plan).model_dump_json(indent=1), encoding="utf-8")
    return where, paths


def test_agree_on_match(v2_plan, files) -> None:
    _, _, plan = v2_plan
    where, paths = files
    assert assert_agree(str(paths["bundle"]), "--commitment", str(paths["commitment"]))["match"]
    assert assert_agree(
        str(paths["plan"]), "--commitment", str(paths["commitment"]), "--bundle", str(paths["bundle"])
    )["match"]
    usccs = sorted({u for td in plan.tasks for u, *_ in td.pool})
    for uscc, opening in list(subject_openings(plan, usccs).items())[::40]:
        path = where / f"{uscc}.json"
        path.write_text(opening.model_dump_json(), encoding="utf-8")
        assert assert_agree(str(paths["bundle"]), "--subject", uscc, "--opening", str(path))["match"]


def test_agree_on_every_tampering(v2_plan, files) -> None:
    _, _, plan = v2_plan
    where, paths = files
    drawn, undrawn, stratum = task_members(plan)
    _, out, newcomer = swap(plan)
    watchers = {out, newcomer, drawn[-1], undrawn[-1], next(u for u, s in stratum.items() if s == "C")}
    openings = subject_openings(plan, watchers)
    for uscc, opening in openings.items():
        (where / f"{uscc}.json").write_text(opening.model_dump_json(), encoding="utf-8")
    for name, (data, public_failure) in tampered_bundles(plan).items():
        path = where / "tampered.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        alone = assert_agree(str(path))
        assert alone["match"] == (public_failure is None), name
        assert (
            not assert_agree(str(path), "--commitment", str(paths["commitment"]))["match"]
            or public_failure is None
        )
        subject_verdicts = [
            assert_agree(str(path), "--subject", u, "--opening", str(where / f"{u}.json"))["match"]
            for u in watchers
        ]
        assert not all(subject_verdicts), name  # some subject of the task always sees it


def test_agree_on_tampered_plans_and_openings(v2_plan, files) -> None:
    _, _, plan = v2_plan
    where, paths = files
    data = json.loads(paths["plan"].read_text(encoding="utf-8"))
    td = data["tasks"][1]
    newcomer = next(u for u, *_ in td["pool"] if u not in td["drawn"])
    td["drawn"] = sorted([newcomer, *td["drawn"][1:]])
    tampered = where / "tampered-plan.json"
    tampered.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    result = assert_agree(str(tampered))
    assert result["first_difference"].startswith("drawn market/MKT-02")
    # the auditor, given a published bundle that is not the plan's
    bundle = json.loads(paths["bundle"].read_text(encoding="utf-8"))
    bundle["tasks"][1]["drawn"] = td["drawn"]
    swapped = where / "swapped-bundle.json"
    swapped.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    assert assert_agree(str(paths["plan"]), "--bundle", str(swapped))["first_difference"].startswith("bundle")
    # a grade changed in the full plan: the pool no longer has the committed root
    data = json.loads(paths["plan"].read_text(encoding="utf-8"))
    row = data["tasks"][0]["pool"][0]
    row[1] = "D" if row[1] != "D" else "C"
    tampered.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert assert_agree(str(tampered))["first_difference"].startswith("pool_root market/MKT-01")
    # the nonce key changed: same
    data = json.loads(paths["plan"].read_text(encoding="utf-8"))
    data["draw_v2"]["nonce_key"] = "0" * 64
    tampered.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    assert assert_agree(str(tampered))["first_difference"].startswith("pool_root market/MKT-01")
    # an opening given to another subject, or with another stratum
    uscc = plan.tasks[0].drawn[0]
    opening = json.loads(subject_openings(plan, [uscc])[uscc].model_dump_json())
    forged = where / "forged.json"
    other = plan.tasks[0].drawn[1]
    forged.write_text(json.dumps(opening), encoding="utf-8")
    assert assert_agree(str(paths["bundle"]), "--subject", other, "--opening", str(forged))[
        "first_difference"
    ].startswith("opening")
    opening["tasks"][0]["stratum"] = "A" if opening["tasks"][0]["stratum"] != "A" else "B"
    forged.write_text(json.dumps(opening), encoding="utf-8")
    result = assert_agree(str(paths["bundle"]), "--subject", uscc, "--opening", str(forged))
    assert result["first_difference"].startswith("pool_membership market/MKT-01")


def test_both_refuse_malformed_documents(files) -> None:
    where, paths = files
    data = json.loads(paths["bundle"].read_text(encoding="utf-8"))
    data["tasks"][0]["grade"] = "A"  # an extra field: not a bundle
    bad = where / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    assert tiers_verify(str(bad))[0] == stdlib_verify(str(bad))[0] == 2
    data = json.loads(paths["bundle"].read_text(encoding="utf-8"))
    data["commitment"]["tasks"][0]["strata"][0]["draw"] = 1.0  # 1.0 is not the integer 1
    bad.write_text(json.dumps(data), encoding="utf-8")
    assert tiers_verify(str(bad))[0] == stdlib_verify(str(bad))[0] == 2
