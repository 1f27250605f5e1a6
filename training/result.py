"""What a training run returns: the validated model (`training.trained.TrainedModel`), then with its
report (`TrainingResult`). The report is a stage of its own (`training.report.build_report`), so a
result is never seen without one."""

from __future__ import annotations

from dataclasses import dataclass, fields

from training.report import ValidationReport
from training.trained import TrainedModel

__all__ = ["TrainedModel", "TrainingResult"]


@dataclass(frozen=True)
class TrainingResult(TrainedModel):
    """A `TrainedModel` with its validation report (`training.report.ValidationReport`)."""

    report: ValidationReport

    @classmethod
    def of(cls, trained: TrainedModel, report: ValidationReport) -> TrainingResult:
        return cls(**{f.name: getattr(trained, f.name) for f in fields(TrainedModel)}, report=report)
