"""`tiers fit` through Typer's CliRunner: JSON metrics per fold, clear refusals with exit code 2."""

import json

import numpy as np
import pytest
import typer
from mod_fixtures import make_credit_frame
from typer.testing import CliRunner

import serving.cli.fit  # noqa: F401  (registers `tiers fit` on the shared app)
from serving.cli.app import app


def _invoke(args):
    # A callback keeps `fit` a sub-command even while it is the only stage registered on `app`.
    group = typer.Typer()
    group.callback()(lambda: None)
    group.registered_commands.extend(app.registered_commands)
    return CliRunner().invoke(group, args)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    X, y = make_credit_frame(300, 50)
    frame = X.assign(bad=y)
    path = tmp_path_factory.mktemp("fit") / "small.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_fit_prints_per_fold_and_mean_metrics_as_json(small_csv):
    path, _ = small_csv
    result = _invoke(["fit", "--data", str(path), "--target", "bad", "--model", "auto", "--cv", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out["results"]) == {"scorecard", "gbm", "blend", "blend-shallow", "gam"}
    beating = [n for n, m in out["selection"]["over_default"].items() if m["beats_default"]]
    assert out["chosen"] == (max(beating, key=lambda n: out["results"][n]["mean"]["auc"]) if beating else "gam")
    for res in out["results"].values():
        assert [f["fold"] for f in res["folds"]] == [1, 2]
        for f in res["folds"]:
            assert 0.5 < f["auc"] <= 1 and 0 <= f["ks"] <= 1 and 0 <= f["brier"] <= 0.25
        assert res["mean"]["auc"] == pytest.approx(sum(f["auc"] for f in res["folds"]) / 2)


def test_auto_is_validated_by_nested_cv_and_says_who_won_by_how_much(small_csv):
    path, _ = small_csv
    result = _invoke(["fit", "--data", str(path), "--target", "bad", "--model", "auto", "--cv", "3",
                      "--inner-cv", "2", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    sel, nested = out["selection"], out["nested"]
    # the rule: the GAM unless another candidate beats it by more than one corrected standard error,
    # with a Brier no higher
    assert "standard error" in sel["rule"] and sel["default"] == "gam"
    assert set(sel["over_default"]) == set(out["results"]) - {"gam"}
    beating = [n for n, m in sel["over_default"].items() if m["auc"] > m["se"] and m["brier"] <= 0]
    assert [n for n, m in sel["over_default"].items() if m["beats_default"]] == beating
    mean_auc = {n: out["results"][n]["mean"]["auc"] for n in out["results"]}
    assert sel["winner"] == out["chosen"] == (max(beating, key=mean_auc.get) if beating else "gam")
    for name, m in sel["over_default"].items():
        gaps = [a["auc"] - b["auc"] for a, b in zip(out["results"][name]["folds"], out["results"]["gam"]["folds"],
                                                     strict=True)]
        assert m["auc"] == pytest.approx(sum(gaps) / 3)
        # the corrected standard error, its fold variance floored by the rows' (DeLong) variance
        assert m["se"] >= np.std(gaps, ddof=1) * np.sqrt(1 / 3 + 1 / 2) - 1e-12
        assert m["brier"] == pytest.approx(out["results"][name]["mean"]["brier"] - out["results"]["gam"]["mean"]["brier"])
    others = sorted((n for n in out["results"] if n != sel["winner"]), key=lambda n: -mean_auc[n])
    assert sel["runner_up"] == others[0]
    gaps = [a["auc"] - b["auc"] for a, b in zip(out["results"][sel["winner"]]["folds"],
                                                 out["results"][others[0]]["folds"], strict=True)]
    assert sel["margin"]["auc"] == pytest.approx(sum(gaps) / 3) and sel["margin"]["low"] <= sel["margin"]["auc"]
    assert [f["fold"] for f in nested["folds"]] == [1, 2, 3]
    for f in nested["folds"]:
        # chosen on the inner folds of the outer training part; scored on the outer test fold
        assert set(f["inner_auc"]) == set(out["results"]) and f["default"] == "gam"
        inner_beating = [n for n, m in f["margins"].items() if m["beats_default"]]
        assert f["chosen"] == (max(inner_beating, key=f["inner_auc"].get) if inner_beating else "gam")
        assert f["auc"] == pytest.approx(out["results"][f["chosen"]]["folds"][f["fold"] - 1]["auc"])
        # Platt only if, cross-fitted on the inner folds, it clearly lowered their Brier (never on the
        # GAM, which calibrates itself); it never reorders
        assert not f["calibrated"] or (f["chosen"] != "gam" and f["inner_brier"]["calibrated"] < f["inner_brier"]["raw"])
        if not f["calibrated"]:
            assert f["brier"] == out["results"][f["chosen"]]["folds"][f["fold"] - 1]["brier"]
    assert nested["mean"]["auc"] == pytest.approx(sum(f["auc"] for f in nested["folds"]) / 3)


def test_fit_renders_a_table_without_json(small_csv):
    path, _ = small_csv
    result = _invoke(["fit", "--data", str(path), "--target", "bad", "--model", "gbm", "--cv", "2"])
    assert result.exit_code == 0, result.output
    assert "AUC" in result.stdout and "mean" in result.stdout and "Brier" in result.stdout
    # the summary says it in Chinese first, as the refusals do
    assert "平均" in result.stdout and "折交叉验证" in result.stdout and "选用模型" in result.stdout


def test_auto_summary_states_the_rule_in_chinese_then_english(small_csv):
    from training.selection import RULE, RULE_ZH

    path, _ = small_csv
    result = _invoke(["fit", "--data", str(path), "--target", "bad", "--model", "auto", "--cv", "2",
                      "--inner-cv", "2"])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.stdout.split())  # rich wraps long lines
    dense = "".join(result.stdout.split())  # and Chinese anywhere, spaces or not
    assert "".join(f"规则：{RULE_ZH}".split()) in dense and "".join(f"rule: {RULE}".split()) in dense
    assert flat.index("规则：") < flat.index("rule: ")
    assert "嵌套交叉验证" in flat and "nested CV" in flat


@pytest.mark.parametrize(
    ("mutate", "args", "expected"),
    [
        (lambda f: f.assign(bad=f["bad"].map({0: "good", 1: "bad"})), [], ["'bad'", "good", "0/1"]),
        (lambda f: f.assign(bad=f["bad"] * 2), [], ["'bad'", "2", "0/1"]),
        (lambda f: f, ["--target", "nope"], ["'nope'", "no such column"]),
        (lambda f: f, ["--model", "forest"], ["forest", "scorecard"]),
        (lambda f: f, ["--cv", "1"], ["--cv", "≥ 2"]),
        (lambda f: f, ["--inner-cv", "1"], ["--inner-cv", "≥ 2"]),
    ],
)
def test_bad_input_is_refused_naming_field_value_and_rule(small_csv, tmp_path, mutate, args, expected):
    _, frame = small_csv
    path = tmp_path / "bad.csv"
    mutate(frame).to_csv(path, index=False)
    base = ["fit", "--data", str(path), "--target", "bad"]
    for k in range(0, len(args), 2):  # later options override the base ones
        if args[k] in base:
            base[base.index(args[k]) + 1] = args[k + 1]
        else:
            base += args[k:k + 2]
    result = _invoke(base)
    assert result.exit_code == 2
    for text in expected:
        assert text in result.output


def test_missing_file_is_refused(tmp_path):
    result = _invoke(["fit", "--data", str(tmp_path / "absent.csv"), "--target", "bad"])
    assert result.exit_code == 2 and "no such file" in result.output
