"""MLflow tracking and model registry, and the promotion events our audit keeps (MLflow keeps no alias history).

Everything goes through an explicit `MlflowClient(tracking_uri=..., registry_uri=...)`: nothing
here sets MLflow's global tracking URI or reads environment variables, so two registries can live
in one process (tests, the service) without stepping on each other.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT = "tiers"

# Pinned so that logging never runs MLflow's slow environment inference; these are the
# libraries needed to unpickle a `GradingModel` (plus this project, installed in the env).
PIP_REQUIREMENTS: tuple[str, ...] = (
    "scikit-learn>=1.5,<1.8",
    "lightgbm>=4.3",
    "optbinning>=0.20",
    "pandas>=2.2,<3",
    "numpy>=1.26,<3",
    "cloudpickle",
)


@dataclass(frozen=True)
class RegisteredVersion:
    """A model version as the registry knows it."""

    name: str
    version: int
    run_id: str
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionEvent:
    """One alias change, kept because MLflow keeps no history of aliases."""

    at: str  # ISO timestamp, UTC
    user: str
    model: str
    alias: str
    from_version: int | None
    to_version: int
    reason: str
    forced: bool
    gate_passed: bool | None
    gate: dict[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Where `training.promotion.promote` writes each attempt (the service database, `serving.services.model_registry.db_audit_sink`).
AuditSink = Callable[[PromotionEvent], None]


def sqlite_uri(directory: str | Path, filename: str = "mlflow.db") -> str:
    """SQLAlchemy URI of the SQLite tracking store in ``directory``."""
    return f"sqlite:///{(Path(directory) / filename).resolve()}"


class ModelRegistry:
    """Tracking + registry on one MLflow backend.

    ``tracking_uri`` is a SQLAlchemy URI (``sqlite:///…/mlflow.db``) or a server URL;
    ``artifact_location`` is where new experiments keep their artifacts (a directory for SQLite
    stores; a tracking server decides for itself when it is None).
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        registry_uri: str | None = None,
        artifact_location: str | Path | None = None,
        experiment: str = EXPERIMENT,
    ) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_location = (
            Path(artifact_location).resolve().as_uri() if artifact_location is not None else None
        )
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    @classmethod
    def in_directory(cls, directory: str | Path, *, experiment: str = EXPERIMENT) -> ModelRegistry:
        """Registry with a SQLite store ``directory/mlflow.db`` and artifacts in ``directory/mlartifacts``."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_uri(root), artifact_location=root / "mlartifacts", experiment=experiment)

    # -- runs ---------------------------------------------------------------------------------

    def _experiment_id(self) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(self.experiment, artifact_location=self.artifact_location)

    def log_model_run(
        self,
        name: str,
        model: Any,
        *,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        input_example: pd.DataFrame,
        artifacts: Mapping[str, str | bytes] | None = None,
        frames: Mapping[str, pd.DataFrame] | None = None,
    ) -> RegisteredVersion:
        """Log one training run and register its model as a new version of ``name``.

        The model is saved with ``mlflow.sklearn`` (so the native ``predict_proba`` survives
        loading) and a signature inferred from ``input_example``. ``artifacts`` are text/bytes
        files (name → content), ``frames`` are Parquet files (name → frame), both under the run.
        The first version of a name becomes ``champion``; later ones become ``challenger``.
        """
        import mlflow.sklearn
        from mlflow.models import infer_signature

        run = self.client.create_run(self._experiment_id(), tags=dict(tags), run_name=name)
        run_id = run.info.run_id
        try:
            for key, value in sorted(params.items()):
                self.client.log_param(run_id, key, str(value)[:6000])
            for key, value in sorted(metrics.items()):
                if value is not None and value == value:  # MLflow rejects NaN in some stores
                    self.client.log_metric(run_id, key, float(value))
            with tempfile.TemporaryDirectory() as tmp:
                tmp_path = Path(tmp)
                files = tmp_path / "files"
                files.mkdir()
                for rel, content in (artifacts or {}).items():
                    target = files / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    if isinstance(content, bytes):
                        target.write_bytes(content)
                    else:
                        target.write_text(content, encoding="utf-8")
                for rel, frame in (frames or {}).items():
                    target = files / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    frame.to_parquet(target, index=False)
                if any(files.iterdir()):
                    self.client.log_artifacts(run_id, str(files))
                model_dir = tmp_path / "model"
                signature = infer_signature(input_example, model.predict_proba(input_example))
                mlflow.sklearn.save_model(
                    model,
                    str(model_dir),
                    signature=signature,
                    pip_requirements=list(PIP_REQUIREMENTS),
                    serialization_format="cloudpickle",
                )
                self.client.log_artifacts(run_id, str(model_dir), artifact_path="model")
            self.client.set_terminated(run_id, "FINISHED")
        except BaseException:
            self.client.set_terminated(run_id, "FAILED")
            raise
        return self.register(name, run_id, tags=tags)

    def register(self, name: str, run_id: str, *, tags: Mapping[str, str] | None = None) -> RegisteredVersion:
        """Register ``runs:/run_id/model`` as a new version; first version → champion, else challenger."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(name)
        except MlflowException:
            self.client.create_registered_model(name)
        source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
        mv = self.client.create_model_version(name, source, run_id=run_id, tags=dict(tags or {}))
        version = int(mv.version)
        alias = CHALLENGER if self.alias_version(name, CHAMPION) is not None else CHAMPION
        self.client.set_registered_model_alias(name, alias, str(version))
        return self.get_version(name, version)

    # -- lookup -------------------------------------------------------------------------------

    def get_version(self, name: str, version: int) -> RegisteredVersion:
        mv = self.client.get_model_version(name, str(version))
        return RegisteredVersion(
            name=name,
            version=int(mv.version),
            run_id=mv.run_id,
            aliases=tuple(sorted(mv.aliases)),
            tags=dict(mv.tags),
        )

    def alias_version(self, name: str, alias: str) -> int | None:
        """Version number carrying ``alias``, or None (also when the model does not exist)."""
        from mlflow.exceptions import MlflowException

        try:
            return int(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def model_names(self) -> list[str]:
        return sorted(m.name for m in self.client.search_registered_models())

    def resolve(self, uri_or_name: str, version_or_alias: str | int | None = None) -> RegisteredVersion:
        """Resolve ``models:/NAME@alias``, ``models:/NAME/3`` or (name, version|alias)."""
        if uri_or_name.startswith("models:/"):
            rest = uri_or_name[len("models:/") :]
            if "@" in rest:
                uri_or_name, version_or_alias = rest.split("@", 1)
            else:
                uri_or_name, version_or_alias = rest.rsplit("/", 1)
        if version_or_alias is None:
            version_or_alias = CHAMPION
        if isinstance(version_or_alias, int) or str(version_or_alias).isdigit():
            return self.get_version(uri_or_name, int(version_or_alias))
        found = self.alias_version(uri_or_name, str(version_or_alias))
        if found is None:
            raise LookupError(f"model {uri_or_name!r} has no version with alias {version_or_alias!r}")
        return self.get_version(uri_or_name, found)

    def load_model(self, uri_or_name: str, version_or_alias: str | int | None = None) -> Any:
        """Load the native model object (with ``predict_proba``) of a registered version."""
        import mlflow.sklearn

        mv = self.resolve(uri_or_name, version_or_alias)
        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(mv.run_id, "model", tmp)
            return mlflow.sklearn.load_model(local)

    def load_frame(self, name: str, version: int, path: str) -> pd.DataFrame:
        """Read a Parquet artifact logged with the run of a version."""
        mv = self.get_version(name, version)
        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(mv.run_id, path, tmp)
            return pd.read_parquet(local)

    def load_text(self, name: str, version: int, path: str) -> str:
        """Read a text artifact logged with the run of a version."""
        mv = self.get_version(name, version)
        with tempfile.TemporaryDirectory() as tmp:
            local = self.client.download_artifacts(mv.run_id, path, tmp)
            return Path(local).read_text(encoding="utf-8")

    def run_params(self, name: str, version: int) -> dict[str, str]:
        return dict(self.client.get_run(self.get_version(name, version).run_id).data.params)

    def set_alias(self, name: str, alias: str, version: int) -> None:
        self.client.set_registered_model_alias(name, alias, str(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self.client.delete_registered_model_alias(name, alias)
