"""`tiers plan …` commands: JSON output, MATCH/MISMATCH exit codes, bad input → exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import serving.cli.plan  # noqa: F401  (registers `tiers plan`)
from serving.cli.app import app

runner = CliRunner()


def _plan(*args: str):
    """``tiers plan ARGS`` in this process (stdout and stderr apart)."""
    return runner.invoke(app, ["plan", *args])


def _without_seed(task_file: Path) -> None:
    """The task fixes seed_hex; drop it so `commit` generates a fresh secret seed."""
    text = task_file.read_text(encoding="utf-8")
    task_file.write_text(
        "\n".join(x for x in text.splitlines() if not x.startswith("seed_hex")), encoding="utf-8"
    )


def test_v1_commit_create_verify_export(task_file: Path, tmp_path: Path) -> None:
    seed_file, commitment = tmp_path / "seed.hex", tmp_path / "commitment.json"
    _without_seed(task_file)
    result = _plan("commit", "--task", str(task_file), "--algorithm", "v1", "--seed-out", str(seed_file),
                   "--json")
    assert result.exit_code == 0, result.output
    commitment.write_text(result.stdout, encoding="utf-8")
    published = json.loads(result.stdout)
    assert len(seed_file.read_text().strip()) == 64

    plan_file = tmp_path / "plan.json"
    result = _plan("create", "--task", str(task_file), "--algorithm", "v1", "--seed-file", str(seed_file),
                   "--out", str(plan_file), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # only JSON on stdout
    assert summary["draw_seed_commitment"] == published["draw_seed_commitment"]
    assert summary["visits"] + summary["visits_saved"] == summary["draws_total"]

    result = _plan("verify", str(plan_file), "--commitment", str(commitment))
    assert result.exit_code == 0 and result.stdout.strip() == "MATCH"

    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    victim = plan["tasks"][0]["drawn"][0]
    plan["tasks"][0]["drawn"][0] = next(
        p[0] for p in plan["tasks"][0]["pool"] if p[0] not in plan["tasks"][0]["drawn"]
    )
    plan["tasks"][0]["drawn"].sort()
    (tmp_path / "bad.json").write_text(json.dumps(plan), encoding="utf-8")
    result = _plan("verify", str(tmp_path / "bad.json"))
    assert result.exit_code == 1 and result.stdout.startswith("MISMATCH") and victim in result.stdout

    result = _plan("export", str(plan_file), "--csv", str(tmp_path / "p.csv"), "--xlsx",
                   str(tmp_path / "p.xlsx"))
    assert result.exit_code == 0 and (tmp_path / "p.xlsx").stat().st_size > 0

    result = _plan("ratios", "--task", str(task_file), "--json")
    assert result.exit_code == 0
    assert {r["item"] for r in json.loads(result.stdout)} == {"MKT-01", "MKT-02", "FIRE-01"}


def test_bad_input_exits_2_naming_field_and_value(task_file: Path, tmp_path: Path) -> None:
    text = task_file.read_text(encoding="utf-8")
    task_file.write_text(text.replace("period_end = 2026-12-31", "period_end = 2026-11-01"), encoding="utf-8")
    result = _plan("create", "--task", str(task_file), "--out", str(tmp_path / "p.json"))
    assert result.exit_code == 2
    assert "period_end 2026-11-01" in result.stderr and "period_start" in result.stderr
    result = _plan("create", "--task", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2 and "does not exist" in result.stderr


def _create_v1(task_file: Path, folder: Path) -> Path:
    """A v1 plan drawn with the task's fixed seed."""
    plan_file = folder / "plan.json"
    args = ["create", "--task", str(task_file), "--algorithm", "v1", "--out", str(plan_file), "--json"]
    assert _plan(*args).exit_code == 0
    return plan_file


def test_results_template_round_trip(task_file: Path, tmp_path: Path) -> None:
    import pandas as pd

    plan_file = _create_v1(task_file, tmp_path)
    template = tmp_path / "template.csv"
    result = _plan("export", str(plan_file), "--results-template", str(template))
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(template, dtype=str, keep_default_na=False)
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    assert len(rows) == sum(len(v["items"]) for v in plan["visits"])  # every visit item, none lost
    rows["inspected_on"], rows["outcome"] = "2026-12-03", "no_problem"
    rows.to_csv(tmp_path / "filled.csv", index=False)
    result = _plan("results", str(tmp_path / "filled.csv"), "--records-out", str(tmp_path / "records.csv"),
                   "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["records"] == len(rows)


def test_results_command_writes_contract_records(tmp_path: Path, city) -> None:
    rows = [
        {
            "plan_id": "P1",
            "uscc": u,
            "department": "market",
            "inspection_item": "MKT-01",
            "inspected_on": "2026-10-01",
            "outcome": o,
            "published_on": "2026-10-15",
        }
        for u, o in zip(city["subjects"]["uscc"][:3], ["no_problem", "corrected", "case_opened"], strict=True)
    ]
    import pandas as pd

    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    result = _plan("results", str(tmp_path / "results.csv"), "--records-out", str(tmp_path / "records.csv"),
                   "--public-out", str(tmp_path / "public.csv"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"records": 3, "publication_status": {"published": 3}}
    records = pd.read_csv(tmp_path / "records.csv", dtype=str, keep_default_na=False)
    assert (records["kind"] == "inspection").all() and len(records) == 3
    rows[0]["outcome"] = "fined"
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    result = _plan("results", str(tmp_path / "results.csv"), "--records-out", str(tmp_path / "records.csv"))
    assert result.exit_code == 2 and "row 1" in result.stderr and "fined" in result.stderr


def test_v2_commit_salt_create_publish_open_verify(task_file: Path, tmp_path: Path) -> None:
    _without_seed(task_file)
    f = {
        name: str(tmp_path / name)
        for name in ("secrets.json", "c.json", "salt.json", "plan.json", "b.json", "o.json")
    }
    source = "福彩3D 第2026325期开奖号码"
    result = _plan("commit", "--task", str(task_file), "--secret-out", f["secrets.json"])
    assert result.exit_code == 2 and "--salt-source" in result.stderr
    result = _plan("commit", "--task", str(task_file), "--secret-out", f["secrets.json"], "--salt-source",
                   source, "--salt-pattern", r"\d \d \d", "--out", f["c.json"], "--json")
    assert result.exit_code == 0, result.output
    commitment = json.loads(result.stdout)
    assert commitment["format"] == "tiers-draw-v2/commitment" and Path(f["c.json"]).is_file()
    assert oct(Path(f["secrets.json"]).stat().st_mode)[-3:] == "600"
    assert "seed" not in result.stdout.replace("seed_commitment", "")  # the secret stays in its file

    salt = ["salt", "--commitment", f["c.json"], "--value", "5 8 1", "--entered-by", "李四", "--out",
            f["salt.json"]]
    draw = ["create", "--task", str(task_file), "--secret-file", f["secrets.json"], "--commitment",
            f["c.json"]]
    result = _plan(*draw, "--out", f["plan.json"])
    assert result.exit_code == 2 and "needs the public salt" in result.stderr  # no salt, no draw
    result = _plan(*salt, "--source", source, "--known-at", "2020-01-01T00:00:00+08:00")
    assert result.exit_code == 2 and "not after the commitment" in result.stderr
    result = _plan(*salt, "--source", "上证指数收盘")
    assert result.exit_code == 2 and "not the source named in the commitment" in result.stderr
    result = _plan(*salt, "--source", source)
    assert result.exit_code == 0, result.output
    result = _plan(*draw, "--salt-file", f["salt.json"], "--out", f["plan.json"], "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["draw_seed_commitment"] == commitment["seed_commitment"]

    assert _plan("publish", f["plan.json"], "--out", f["b.json"]).exit_code == 0
    result = _plan("verify", f["b.json"], "--commitment", f["c.json"])
    assert result.exit_code == 0 and result.stdout.strip() == "MATCH", result.output
    result = _plan("verify", f["plan.json"], "--commitment", f["c.json"], "--bundle", f["b.json"])
    assert result.exit_code == 0 and result.stdout.strip() == "MATCH", result.output

    bundle = json.loads(Path(f["b.json"]).read_text(encoding="utf-8"))
    subject = bundle["tasks"][0]["drawn"][0]
    assert _plan("opening", f["plan.json"], "--subject", subject, "--out", f["o.json"]).exit_code == 0
    result = _plan("verify", f["b.json"], "--subject", subject, "--opening", f["o.json"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "MATCH" and any(
        line.startswith(f"{bundle['tasks'][0]['department']}/") and "drawn" in line for line in lines
    )
    result = _plan("opening", f["plan.json"], "--subject", "91320102MA1XXXXXX0")
    assert result.exit_code == 2 and "in no pool" in result.stderr
    result = _plan("verify", f["b.json"], "--subject", subject)
    assert result.exit_code == 2 and "go together" in result.stderr

    bundle["seed"] = "0" * 64
    Path(f["b.json"]).write_text(json.dumps(bundle), encoding="utf-8")
    result = _plan("verify", f["b.json"])
    assert result.exit_code == 1 and result.stdout.startswith("MISMATCH: seed_commitment")


def test_v1_plans_have_no_bundle(task_file: Path, tmp_path: Path) -> None:
    plan_file = _create_v1(task_file, tmp_path)
    result = _plan("publish", str(plan_file), "--out", str(tmp_path / "b.json"))
    assert result.exit_code == 2 and "tiers-draw-v1" in result.stderr
    assert _plan("verify", str(plan_file)).stdout.strip() == "MATCH"
