"""信用承诺事项目录: the commitment matters an enterprise may sign, and what their outcomes become.

The catalogue is TOML (``features/catalogue/commitments.toml``), read through the one loader
(``configfile.load_toml_file``) and checked against the catalogue policy (``features.catalogue``):
each outcome names a record kind of that policy, and a breach a *negative* one, so a broken
commitment is a record the policy counts, for its window, and repairs by its rules
(``Policy.repair_eligible_on``). Nothing here reads the environment or holds state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from configfile import load_toml_file, refuse_repeats
from features.catalogue import Policy, default_policy

CommitmentKind = Literal["审批替代型", "主动公示型", "行业自律型", "信用修复型"]
PUBLIC_KINDS: frozenset[str] = frozenset({"主动公示型"})  # listed without login


class CommitmentCatalogueError(ValueError):
    """The commitment catalogue is missing, not TOML, or breaks a rule (named with the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Outcome(_Strict):
    """The record an outcome writes into the credit file."""

    record_kind: str = Field(min_length=1, max_length=40)
    label: str = Field(default="", max_length=100)


class Matter(_Strict):
    """One commitment matter (承诺事项): its standard text, department and checks."""

    code: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]{1,39}$")
    kind: CommitmentKind
    title: str = Field(min_length=2, max_length=100)
    department: str = Field(pattern=r"^[\w\-]{1,40}$")
    due_days: int = Field(ge=1, le=3650)
    template: str = Field(min_length=10, max_length=4000)
    kept_when: str = Field(min_length=4, max_length=1000)
    made: Outcome
    kept: Outcome
    breaches: dict[str, Outcome] = Field(min_length=1)

    @property
    def public(self) -> bool:
        return self.kind in PUBLIC_KINDS

    def due_on(self, signed_on: dt.date) -> dt.date:
        return signed_on + dt.timedelta(days=self.due_days)


class CommitmentCatalogue(_Strict):
    version: str = Field(min_length=1, max_length=60)
    matters: tuple[Matter, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_codes(self) -> CommitmentCatalogue:
        refuse_repeats([m.code for m in self.matters], "matter codes")
        return self

    def matter(self, code: str) -> Matter | None:
        return next((m for m in self.matters if m.code == code), None)

    def check_against(self, policy: Policy) -> CommitmentCatalogue:
        """Self, if every outcome names a kind of ``policy`` and every breach a negative one
        (so it counts against the subject, with the policy's window and repair rules)."""
        problems = []
        for m in self.matters:
            for where, outcome in [("made", m.made), ("kept", m.kept),
                                   *((f"breaches.{k}", o) for k, o in m.breaches.items())]:
                rule = policy.kinds.get(outcome.record_kind)
                if rule is None:
                    problems.append(f"matters[{m.code}].{where}.record_kind = {outcome.record_kind!r}: not a kind of "
                                    f"the catalogue policy {policy.version}")
                elif where.startswith("breaches") and rule.polarity != "negative":
                    problems.append(f"matters[{m.code}].{where}.record_kind = {outcome.record_kind!r}: a breach must "
                                    f"become a negative record (this kind is {rule.polarity})")
        if problems:
            raise CommitmentCatalogueError("; ".join(problems))
        return self


def load_commitment_catalogue(path: Path | str | None = None, policy: Policy | None = None) -> CommitmentCatalogue:
    """The catalogue at ``path`` (the packaged one when None), checked against ``policy`` (the
    packaged catalogue policy when None); `CommitmentCatalogueError` naming the field and rule."""
    catalogue = load_toml_file(CommitmentCatalogue, path, package="features.catalogue", name="commitments.toml",
                               label="commitment catalogue", error=CommitmentCatalogueError)
    return catalogue.check_against(policy or default_policy())
