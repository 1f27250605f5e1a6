"""MLflow registry, promotion gate and audit, and loading the champion in a fresh process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trn_synthetic import TRAIN_AS_OF, VALIDATE_AS_OF

from training.pipeline import TrainingConfig, register_result, train_model
from training.promotion import PromotionRefused, promote
from training.registry import CHALLENGER, CHAMPION, ModelRegistry, PromotionEvent
from training.sector_policy import TrainingPolicy

FAST = TrainingConfig(train_as_of=TRAIN_AS_OF, validate_as_of=VALIDATE_AS_OF, candidates=("gbm_additive",), n_boot=50)
KEY_FEATURES = ("penalties_general", "penalties_serious", "inspection_problems")
# One worker trains the module's models once (xdist --dist loadgroup).
pytestmark = pytest.mark.xdist_group("trn_registry")


@pytest.fixture(scope="module")
def trained(synthetic_dataset, feature_metas):
    """A good model, a deliberately worse one (key features removed) and a second good one."""
    good = train_model(synthetic_dataset, feature_metas, config=FAST)
    worse = train_model(synthetic_dataset, feature_metas, config=FAST,
                        policy=TrainingPolicy(exclude_features=KEY_FEATURES), champion=good.model)
    return good, worse


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema created once (MLflow's migrations take seconds)."""
    root = tmp_path_factory.mktemp("mlflow-template")
    ModelRegistry.in_directory(root).model_names()
    return root / "mlflow.db"


@pytest.fixture
def registry(tmp_path: Path, empty_store: Path) -> ModelRegistry:
    (tmp_path / "mlflow").mkdir()
    shutil.copy(empty_store, tmp_path / "mlflow" / "mlflow.db")
    return ModelRegistry.in_directory(tmp_path / "mlflow")


def test_first_version_is_champion_then_challengers(registry, trained) -> None:
    good, worse = trained
    first = register_result(registry, good)
    second = register_result(registry, worse)
    assert (first.version, first.aliases) == (1, (CHAMPION,))
    assert (second.version, second.aliases) == (2, (CHALLENGER,))
    params = registry.run_params("tiers-general", 1)
    assert params["validate_as_of"] == VALIDATE_AS_OF.isoformat()
    assert params["train_as_of"] == ",".join(d.isoformat() for d in TRAIN_AS_OF)
    assert params["data_sha256"] == good.data_hash
    report = json.loads(registry.load_text("tiers-general", 1, "report/validation_report.json"))
    assert report["data"]["data_sha256"] == good.data_hash
    assert "Validation report" in registry.load_text("tiers-general", 1, "report/validation_report.html")


def test_gate_refuses_worse_accepts_better_and_audits_both(registry, trained, tmp_path: Path) -> None:
    good, worse = trained
    events: list[PromotionEvent] = []  # the sink (the service writes its database; here a list)
    audit = events.append
    register_result(registry, worse)  # v1: champion (first model)
    register_result(registry, good)  # v2: challenger, better
    register_result(registry, worse)  # v3: challenger, worse than v2
    outcome = promote(registry, "tiers-general", 2, user="sector-h", reason="quarterly retrain", audit=audit)
    assert outcome.gate.passed and registry.alias_version("tiers-general", CHAMPION) == 2
    with pytest.raises(PromotionRefused, match="auc") as refused:
        promote(registry, "tiers-general", 3, user="sector-h", reason="try", audit=audit)
    assert not refused.value.gate.passed
    assert registry.alias_version("tiers-general", CHAMPION) == 2
    assert [(e.from_version, e.to_version, e.gate_passed, e.forced) for e in events] == [(1, 2, True, False), (2, 3, False, False)]
    assert events[1].gate["figures"]["auc_difference"] < -0.01
    assert events[0].user == "sector-h" and events[0].at


def test_forced_promotion_needs_a_reason_and_is_audited_as_forced(registry, trained, tmp_path: Path) -> None:
    good, worse = trained
    events: list[PromotionEvent] = []
    audit = events.append
    register_result(registry, good)
    register_result(registry, worse)
    with pytest.raises(ValueError, match="reason"):
        promote(registry, "tiers-general", 2, user="admin", reason="", audit=audit, force=True)
    promote(registry, "tiers-general", 2, user="admin", reason="rollback drill", audit=audit, force=True)
    assert registry.alias_version("tiers-general", CHAMPION) == 2
    last = events[-1]
    assert last.forced and last.gate_passed is False and last.reason == "rollback drill"


def test_champion_loaded_in_a_fresh_process_gives_the_training_probabilities(registry, trained, tmp_path: Path) -> None:
    good, _ = trained
    register_result(registry, good)
    frame_path = tmp_path / "oot.parquet"
    good.validation.to_parquet(frame_path)
    script = (
        "import sys, json, pandas as pd\n"
        "from training.registry import ModelRegistry\n"
        "reg = ModelRegistry(sys.argv[1])\n"
        "model = reg.load_model('models:/tiers-general@champion')\n"
        "p = model.predict_proba(pd.read_parquet(sys.argv[2]))[:, 1]\n"
        "print(json.dumps(p.tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, registry.tracking_uri, str(frame_path)],
                         capture_output=True, text=True, check=True, timeout=120)
    loaded = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_array_equal(loaded, good.validation["p_adverse_12m"].to_numpy())


def test_unknown_alias_is_a_clear_lookup_error(registry) -> None:
    with pytest.raises(LookupError, match="no version with alias"):
        registry.resolve("models:/tiers-general@champion")
