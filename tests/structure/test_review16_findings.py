"""Outside review 16 (issue 16, "one rule, one place"): what the documentation promises about the
structure, checked against the code.

Each test states a promise of README.md or docs/*.md (or of issue 16) that the tree breaks today, and
is marked ``xfail(strict=True)``: it passes as an expected failure now and fails loudly once the
finding is mended (then remove its mark). The checks read the source with ``ast`` or regular
expressions, compare two functions on the same inputs, or run a documented command in ``tmp_path``;
nothing is written into the repository and nothing uses the network.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOWER = ("uscc", "configfile", "stability", "simulation", "features", "models", "training", "supervision",
         "monitoring")


def review16(finding: str):
    return pytest.mark.xfail(strict=True, reason=f"review16: {finding}")


@cache
def _packages() -> tuple[str, ...]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return tuple(p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"])


@cache
def _sources() -> dict[str, str]:
    """Every project module's text, by its path relative to the repository root."""
    return {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8")
            for package in _packages() for p in sorted((ROOT / package).rglob("*.py"))}


@cache
def _tree(rel: str) -> ast.Module:
    return ast.parse(_sources()[rel], rel)


def _imports(rel: str) -> list[tuple[str, str | None]]:
    """(module, imported name or None) of every import statement of ``rel``, inside functions too."""
    found = []
    for node in ast.walk(_tree(rel)):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.module, alias.asname or alias.name) for alias in node.names]
    return found


# --------------------------------------------------------------------------- one rule, one place


def test_the_service_boundary_and_ingestion_agree_on_every_uscc():
    from stdnum.cn import uscc as stdnum_uscc

    from serving.validation import uscc_problem
    from uscc import is_valid_uscc

    bodies = ["91320102MA1XXXXXX",  # a valid body
              "01320102MA1XXXXXX",  # registering authority 0: none such (GB 32100-2015)
              "B1320102MA1XXXXXX",  # registering authority B: none such
              "9A320102MA1XXXXXX"]  # position 2 (entity type) must be a digit
    codes = [body + stdnum_uscc.calc_check_digit(body) for body in bodies]
    disagree = {code: (is_valid_uscc(code), uscc_problem(code)) for code in codes
                if is_valid_uscc(code) != (uscc_problem(code) is None)}
    assert not disagree, f"uscc.is_valid_uscc vs serving.validation.uscc_problem: {disagree}"


def test_only_configfile_parses_toml():
    readers = sorted({rel for rel, text in _sources().items() if "toml" in text for module, _ in _imports(rel)
                      if module.split(".")[0] in {"tomllib", "tomli", "toml"}} - {"configfile/__init__.py"})
    assert not readers, f"modules reading TOML besides configfile/: {readers}"


def test_working_days_are_counted_in_one_module():
    counting = sorted({rel for rel, text in _sources().items() if "chinese_calendar" in text
                       and not rel.startswith("simulation/")
                       for module, _ in _imports(rel) if module.split(".")[0] == "chinese_calendar"})
    assert len(counting) <= 1, f"modules counting statutory working days: {counting}"


def test_the_ks_statistic_is_defined_in_one_module():
    def is_ks(node: ast.AST) -> bool:
        return (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.left, ast.Name)
                and isinstance(node.right, ast.Name) and node.left.id == "tpr" and node.right.id == "fpr")

    modules = sorted({rel for rel, text in _sources().items() if "fpr" in text
                      and any(is_ks(n) for n in ast.walk(_tree(rel)))})
    assert len(modules) <= 1, f"modules computing max(tpr − fpr): {modules}"


def test_the_score_scale_is_written_once():
    pdo = re.compile(r"\b20(?:\.0)?\s*/\s*(?:math|np)\.log\(2|\bSCORE_PDO\s*=\s*20\b|\bpdo\s*:\s*float\s*=\s*20\b")
    modules = sorted(rel for rel, text in _sources().items() if pdo.search(text))
    assert len(modules) <= 1, f"modules writing the PDO of the score scale: {modules}"


def test_packages_that_may_import_models_take_the_grades_from_it():
    spelled = {("A", "B", "C", "D")}

    def spells(node: ast.AST) -> bool:
        if isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) == 4 \
                and all(isinstance(e, ast.Constant) for e in node.elts):
            return tuple(e.value for e in node.elts) in spelled
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"list", "tuple"}
                and len(node.args) == 1 and isinstance(node.args[0], ast.Constant) and node.args[0].value == "ABCD")

    def spelled_outside_literal(tree: ast.Module) -> bool:
        # a typing Literal needs its values written out; every other spelling could import models.GRADES
        in_literal = {id(n) for sub in ast.walk(tree) if isinstance(sub, ast.Subscript)
                      and isinstance(sub.value, ast.Name) and sub.value.id == "Literal" for n in ast.walk(sub.slice)}
        return any(spells(n) and id(n) not in in_literal for n in ast.walk(tree))

    modules = sorted(rel for rel, text in _sources().items() if rel.split("/")[0] in {"monitoring", "training", "serving"}
                     and ('"D"' in text or "ABCD" in text) and spelled_outside_literal(_tree(rel)))
    assert not modules, f"modules spelling out the grades instead of importing models.GRADES: {modules}"


def test_purpose_length_and_id_limit_are_only_in_serving_validation():
    copies = {"purpose length": re.compile(r"min_length=2,\s*max_length=200\b|len\(purpose(?:\.strip\(\))?\)\s*<\s*2"),
              "row-id limit": re.compile(r"2\s*\*\*\s*31")}
    found = sorted(f"{rel}: {what}" for rel, text in _sources().items() if rel.startswith("serving/")
                   and rel != "serving/validation.py" for what, pattern in copies.items() if pattern.search(text))
    assert not found, found


def test_one_function_in_serving_runs_the_promotion_gate():
    callers = []
    for rel, text in _sources().items():
        if not rel.startswith("serving/") or "training.promotion" not in text:
            continue
        if ("training.promotion", "promote") not in _imports(rel):
            continue
        for fn in ast.walk(_tree(rel)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "promote"
                    for n in ast.walk(fn)):
                callers.append(f"{rel}:{fn.name}")
    assert len(callers) <= 1, f"functions calling training.promotion.promote: {callers}"


def test_the_cli_and_the_service_put_a_registrys_artifacts_in_the_same_place(tmp_path):
    # (mended: the CLI's default cannot be a fixed path equal to artifacts_dir_for of every URI, so
    # the check is that the CLI has no fixed default and its registry, --artifacts unset, uses the rule)
    from serving.cli.train import ARTIFACTS, _registry
    from serving.services.model_registry import artifacts_dir_for

    uri = f"sqlite:///{tmp_path / 'registry' / 'mlflow.db'}"
    assert ARTIFACTS.default is None, ARTIFACTS.default
    assert _registry(uri, ARTIFACTS.default).artifact_location == artifacts_dir_for(uri).resolve().as_uri()


# --------------------------------------------------------------------------- the CLI parses and prints


def test_cli_commands_call_only_workflows_and_services():
    calls = {}
    for rel in _sources():
        if not rel.startswith("serving/cli/"):
            continue
        lower = {name for module, name in _imports(rel) if name and module.split(".")[0] in LOWER
                 and not name[0].isupper()}  # functions; classes (errors, value objects) are data
        used = sorted({n.func.id for n in ast.walk(_tree(rel)) if isinstance(n, ast.Call)
                       and isinstance(n.func, ast.Name) and n.func.id in lower})
        if used:
            calls[rel] = used
    assert not calls, f"lower-package functions called from the CLI: {calls}"


def test_cli_does_no_numerical_work():
    numeric = {"numpy", "scipy", "sklearn", "lightgbm", "duckdb"}
    found = sorted({f"{rel}: {module}" for rel in _sources() if rel.startswith("serving/cli/")
                    for module, _ in _imports(rel) if module.split(".")[0] in numeric})
    assert not found, found


# --------------------------------------------------------------------------- routes and schemas


def _route_classes() -> dict[str, list[tuple[str, list[str]]]]:
    out = {}
    for rel in _sources():
        if rel.startswith("serving/routes/"):
            out[rel] = [(n.name, [b.id if isinstance(b, ast.Name) else ast.unparse(b) for b in n.bases])
                        for n in _tree(rel).body if isinstance(n, ast.ClassDef)]
    return out


def test_route_modules_define_no_pydantic_models():
    defined = {}
    for rel, classes in _route_classes().items():
        models = {name for module, name in _imports(rel) if name and (
            (module == "pydantic" and name == "BaseModel") or module == "serving.schemas"
            or module.split(".")[0] == "supervision")}
        local = []
        changed = True
        while changed:
            changed = False
            for name, bases in classes:
                if name not in local and any(b in models or b in local for b in bases):
                    local.append(name)
                    changed = True
        if local:
            defined[rel] = local
    assert not defined, f"pydantic models defined in route modules: {defined}"


def test_route_modules_define_no_error_classes():
    defined = {}
    for rel, classes in _route_classes().items():
        errors = {name for module, name in _imports(rel) if name and module == "serving.errors"}
        mine = [name for name, bases in classes if any(b in errors for b in bases)]
        if mine:
            defined[rel] = mine
    assert not defined, f"error classes defined in route modules: {defined}"


def test_reasons_in_route_schemas_refuse_invisible_text():
    from pydantic import ValidationError

    from serving.schemas import PromoteIn, ResultIn

    invisible = "\u200b\u2060\ufeff"
    accepted = []
    for make in (lambda: PromoteIn(reason=invisible, force=True),
                 lambda: ResultIn(uscc="91320102MA1XXXXXXL", inspection_item="SAMR-01", inspected_on="2026-10-02",
                                  outcome="corrected", correction_reason=invisible)):
        with contextlib.suppress(ValidationError):
            accepted.append(repr(make()))
    assert not accepted, f"invisible reasons accepted: {accepted}"


# --------------------------------------------------------------------------- writes and dead code


def test_only_services_write_subject_and_record_rows():
    found = []
    for rel, text in _sources().items():
        if not rel.startswith("serving/") or rel.startswith(("serving/services/", "serving/migrations/")) \
                or "insert(" not in text:
            continue
        for n in ast.walk(_tree(rel)):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "insert" and n.args \
                    and isinstance(n.args[0], ast.Name) and n.args[0].id in {"Record", "Subject"}:
                found.append(f"{rel}:{n.lineno} insert({n.args[0].id})")
    assert not found, found


def test_no_project_function_is_used_only_by_tests():
    names = {"read_versions": "features/store.py", "store_generation": "features/store.py",
             "store_subjects": "serving/services/subjects.py", "ReportUnreadable": "serving/report_pdf.py"}
    unused = []
    for name, home in names.items():
        word = re.compile(rf"\b{name}\b")
        found = sum(len(word.findall(text)) for text in _sources().values())
        if found and found - 1 < 1:  # less the definition; a name deleted with its tests is mended
            unused.append(f"{home}: {name}")
    assert not unused, f"used by no project module: {unused}"


def test_no_module_is_named_like_the_models_package():
    clashing = sorted(rel for rel in _sources() if Path(rel).name == "models.py")
    assert not clashing, clashing


# --------------------------------------------------------------------------- the documentation


def test_every_repository_path_named_in_the_docs_exists():
    top = {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for quoted in re.findall(r"`([^`\s]+)`", line):
                path = quoted.rstrip(".,;:)")
                if "/" in path and path.split("/")[0] in top and not re.search(r"[<>*{}…]", path) \
                        and not (ROOT / path).exists():
                    missing.append(f"{doc.relative_to(ROOT)}:{number}: {path}")
    assert not missing, missing


def _documented_commit_command() -> list[str]:
    """The `tiers plan commit` command written in the header of data_samples/plan_task.toml."""
    lines = [line.lstrip("#").strip() for line in
             (ROOT / "data_samples/plan_task.toml").read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    start = next(i for i, line in enumerate(lines) if "tiers plan commit" in line)
    words = []
    for line in lines[start:]:
        words += shlex.split(line.split("  #")[0].rstrip("\\"))
        if not line.split("  #")[0].rstrip().endswith("\\"):
            break
    return words


def test_the_example_task_files_commit_command_works(tmp_path):
    import numpy as np
    import pandas as pd

    samples = tmp_path / "data_samples"
    samples.mkdir()
    shutil.copy(ROOT / "data_samples/plan_task.toml", samples / "plan_task.toml")
    (samples / "city").symlink_to(ROOT / "data_samples/city")
    subjects = pd.read_csv(ROOT / "data_samples/city/subjects.csv", usecols=["uscc"], dtype=str)
    rng = np.random.default_rng(16)
    grades = tmp_path / "var/grades/grades_2026-09-30.parquet"  # what `tiers grade` writes (README)
    grades.parent.mkdir(parents=True)
    pd.DataFrame({"uscc": subjects["uscc"], "grade": rng.choice(list("ABCD"), len(subjects), p=[.65, .25, .08, .02]),
                  "as_of": pd.Timestamp("2026-09-30").date(), "model_version": "tiers-general/1"}).to_parquet(grades)
    words = _documented_commit_command()
    assert words[0].endswith("tiers") and words[1:3] == ["plan", "commit"], words
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "serving.cli.main", *words[1:]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, (words, proc.stderr[-800:])
