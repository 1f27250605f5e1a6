"""The measures catalogue of the joint checks (联合奖惩措施清单): per matter (政府采购, 招标投标,
行政审批, 评优评先, 财政资金 …), the restrictions and incentives that apply to a subject with
records in force of given kinds, each with its legal basis.

Configuration, read through the project's one TOML loader (``configfile.load_toml_file``) and
validated by the pydantic model below: the packaged ``default.toml`` (*local practice*), or a
department's copy (``TIERS_CREDIT_MEASURES_FILE``). A record kind a measure names must be in the
catalogue policy (``features.catalogue``) with the matching polarity: a restriction on negative
kinds, an incentive on positive ones. Which records are in force is never decided here
(``features.evidence.records_in_force``); grades are not public and no measure may depend on one.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from configfile import load_toml_file


class MeasuresError(ValueError):
    """The measures catalogue is missing, not TOML, or breaks a rule of its schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Matter(_Strict):
    """A kind of business a department checks subjects for (办理事项)."""

    name_zh: str = Field(min_length=1, max_length=40)
    name_en: str = Field(min_length=1, max_length=80)
    # departments whose business systems may check this matter ("*": every department)
    departments: tuple[str, ...] = Field(min_length=1)

    def open_to(self, department: str | None) -> bool:
        return "*" in self.departments or (department is not None and department in self.departments)


class Trigger(_Strict):
    """Records in force that make a measure apply: any of ``kinds`` (and, if given, of these
    severities or subkinds)."""

    kinds: tuple[str, ...] = Field(min_length=1)
    severities: tuple[Literal["minor", "general", "serious"], ...] | None = None
    subkinds: tuple[str, ...] | None = None


class Measure(_Strict):
    """One restriction (失信惩戒) or incentive (守信激励) for some matters."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,59}$")
    type: Literal["restriction", "incentive"]
    # block: the business system stops the application (自动拦截); prompt: it warns the officer,
    # who decides with the basis shown (自动提示); benefit: an incentive (容缺受理, 绿色通道 …)
    action: Literal["block", "prompt", "benefit"]
    name_zh: str = Field(min_length=1, max_length=200)
    name_en: str = Field(min_length=1, max_length=200)
    matters: tuple[str, ...] = Field(min_length=1)
    when: Trigger
    legal_basis: tuple[str, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _action_fits_type(self) -> Measure:
        if (self.type == "incentive") != (self.action == "benefit"):
            raise ValueError(f"a {self.type} cannot have action {self.action!r} (incentives: benefit; "
                             "restrictions: block or prompt)")
        return self


class MeasuresCatalogue(_Strict):
    """A validated measures catalogue. Use :func:`load_measures` to read one."""

    version: str = Field(min_length=1, max_length=40)
    issued_on: date
    description: str = ""
    # 守信激励 is not given to a subject a restriction of the same matter applies to
    incentives_yield_to_restrictions: bool = True
    matters: dict[str, Matter] = Field(min_length=1)
    measures: tuple[Measure, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> MeasuresCatalogue:
        codes = [m.code for m in self.measures]
        duplicated = sorted({c for c in codes if codes.count(c) > 1})
        if duplicated:
            raise ValueError(f"measure codes {duplicated} appear more than once")
        for measure in self.measures:
            unknown = [m for m in measure.matters if m not in self.matters]
            if unknown:
                raise ValueError(f"measure {measure.code}: matters {unknown} are not declared under [matters]")
        return self

    def checked_against(self, kinds: dict[str, str], where: str) -> MeasuresCatalogue:
        """Self, if every kind a measure names is in the catalogue policy's ``kinds`` (kind →
        polarity) with the polarity of its type; else `MeasuresError` naming ``where``."""
        wanted = {"restriction": "negative", "incentive": "positive"}
        for measure in self.measures:
            for kind in measure.when.kinds:
                polarity = kinds.get(kind)
                if polarity is None:
                    raise MeasuresError(f"{where}: measure {measure.code}: kind {kind!r} is not in the catalogue "
                                        "policy (features/catalogue)")
                if polarity != wanted[measure.type]:
                    raise MeasuresError(f"{where}: measure {measure.code}: a {measure.type} cannot rest on kind "
                                        f"{kind!r}, whose polarity is {polarity} (a {measure.type} needs "
                                        f"{wanted[measure.type]} records)")
        return self

    def for_matter(self, matter: str) -> tuple[Measure, ...]:
        return tuple(m for m in self.measures if matter in m.matters)


def load_measures(path: str | Path | None = None, policy: object | None = None) -> MeasuresCatalogue:
    """The measures catalogue at ``path`` (the packaged default when None), checked against the
    catalogue ``policy`` (the packaged default when None). Raises `MeasuresError` naming the file,
    the field, the value and the rule."""
    from features.catalogue import default_policy

    catalogue = load_toml_file(MeasuresCatalogue, path, package="serving.measures", name="default.toml",
                               label="measures catalogue", error=MeasuresError)
    kinds = {kind: rule.polarity for kind, rule in (policy or default_policy()).kinds.items()}
    return catalogue.checked_against(kinds, f"measures catalogue {path or 'serving.measures/default.toml'}")


__all__ = ["Matter", "Measure", "MeasuresCatalogue", "MeasuresError", "Trigger", "load_measures"]
