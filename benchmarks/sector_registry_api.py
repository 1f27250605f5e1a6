"""Sector department's model endpoints on a real MLflow SQLite registry (temporary directory).

Trains two small models with training's API on its synthetic data, registers three versions,
then times through TestClient (in-process, median of repeats):

* ``GET /api/v1/models`` against the baseline ``ModelRegistry.model_names()`` (one MLflow query),
* ``GET …/report`` (one artifact download) and the ``/sector`` page,
* ``POST …/promote`` (gate: load two models, score the OOT frame, bootstrap) — refused, so the
  registry is unchanged between repeats.

Usage: .venv/bin/python benchmarks/sector_registry_api.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from api import machine_facts

ROOT = Path(__file__).resolve().parents[1]


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (imports, connection pools)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    sys.path.insert(0, str(ROOT / "tests" / "serving"))
    spec = importlib.util.spec_from_file_location("trn_synthetic", ROOT / "tests" / "training" / "trn_synthetic.py")
    synth = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(synth)

    from fastapi.testclient import TestClient
    from srv_fixtures import principal, seed

    from serving.app import create_app
    from serving.db.migrate import upgrade
    from serving.keys import with_keys
    from serving.security import create_access_token
    from serving.services.model_registry import artifacts_dir_for
    from serving.settings import Settings
    from training.pipeline import TrainingConfig, register_result, train_model
    from training.registry import ModelRegistry
    from training.sector_policy import TrainingPolicy

    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite:///{Path(tmp) / 'tiers.db'}"
        upgrade(db_url)
        seed(db_url)
        uri = f"sqlite:///{Path(tmp) / 'mlflow' / 'mlflow.db'}"
        (Path(tmp) / "mlflow").mkdir()
        registry = ModelRegistry(uri, artifact_location=artifacts_dir_for(uri))
        data = synth.make_dataset(2500, seed=7)
        config = TrainingConfig(train_as_of=synth.TRAIN_AS_OF, validate_as_of=synth.VALIDATE_AS_OF,
                                candidates=("gbm_additive",), n_boot=50)
        good = train_model(data, synth.FEATURES, config=config)
        worse = train_model(data, synth.FEATURES, config=config,
                            policy=TrainingPolicy(exclude_features=("penalties_general", "penalties_serious")))
        register_result(registry, good)
        for result in (good, worse):
            register_result(registry, dataclasses.replace(result, name="tiers-sector-C"))
        settings = with_keys(Settings(database_url=db_url, mlflow_tracking_uri=uri, run_migrations_on_startup=False,
                                      keys_dir=Path(tmp) / "keys"))
        client = TestClient(create_app(settings))
        token, _ = create_access_token(principal("sector_c"), settings.jwt_key, 30)
        headers = {"Authorization": f"Bearer {token}"}

        def promote_refused() -> None:
            r = client.post("/api/v1/models/tiers-sector-C/versions/2/promote", headers=headers, json={"reason": "bench"})
            assert r.status_code == 409, r.text

        baseline = median_ms(registry.model_names, args.repeats)
        listing = median_ms(lambda: client.get("/api/v1/models", headers=headers).raise_for_status(), args.repeats)
        report = median_ms(lambda: client.get("/api/v1/models/tiers-sector-C/versions/1/report",
                                              headers=headers).raise_for_status(), args.repeats)
        gate = median_ms(promote_refused, args.repeats)
        print(machine_facts())
        print(f"registry: 2 models, 3 versions; OOT frame {len(good.validation)} subjects; median of {args.repeats}")
        print(f"baseline ModelRegistry.model_names():       {baseline:8.1f} ms")
        print(f"GET /api/v1/models:                         {listing:8.1f} ms  ({listing / baseline:.1f}× baseline)")
        print(f"GET …/versions/1/report (JSON):             {report:8.1f} ms  ({report / baseline:.1f}× baseline)")
        print(f"POST …/versions/2/promote (gate, refused):  {gate:8.1f} ms  ({gate / baseline:.1f}× baseline)")


if __name__ == "__main__":
    main()
