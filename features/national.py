"""National 双公示 and list files: recognised by their header, mapped onto the contract's records.

One TOML mapping file per layout (``features/layouts/*.toml``, validated by :class:`LayoutSpec`):
which header spellings (aliases) feed which source field, which are required, which are known but
not used. A city adds its own variant by dropping a TOML file in a directory (``layouts_dir``,
``tiers ingest --layouts DIR``), without code. Headers are compared after normalisation
(:func:`normalise_header`: NFKC, brackets, ``_``/``＿``/``-``, spaces, trailing colons, case).

What a national file lacks, the mapping derives (docs/data-contract.md, "National formats"):
``record_id`` is a stable hash of the layout's kind, the USCC and the decision's document number;
``severity`` of a penalty comes from its types (Administrative Penalty Law 2021, art. 9) and amounts
by the rules of ``severity.toml``; ``department`` from the authority's name (``departments.toml``),
else its USCC. Rows about natural persons are quarantined, and none of their data are kept.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from configfile import parse_toml
from features.catalogue import Policy
from features.schema import RECORD_COLUMNS, SEVERITY_VALUES, Verdict
from uscc import valid_uscc_mask

# The source fields a layout may map columns to, and what each becomes.
SOURCE_FIELDS: dict[str, str] = {
    "subject_name": "行政相对人名称 (checked against nothing; the subject comes from the registry)",
    "subject_category": "行政相对人类别: 自然人 → quarantined (natural_person)",
    "uscc": "uscc",
    "id_type": "证件类型: 身份证 without a USCC → natural_person",
    "id_number": "证件号码: an identity-card number without a USCC → natural_person (never stored)",
    "document_no": "document_no",
    "penalty_types": "severity (derived by severity.toml); several columns are joined",
    "penalty_content": "description; severity when the types are empty; a fine written in it",
    "penalty_name": "description when there is no content",
    "violation_type": "description when there is no content or name",
    "severity_text": "severity, when the file states it (轻微/一般/严重)",
    "fine_wan": "amount (万元 × 10,000 → yuan)",
    "fine_yuan": "amount (yuan)",
    "confiscation_wan": "severity of a confiscation (万元 × 10,000)",
    "decision_date": "decision_date",
    "publicity_end": "publicity_end",
    "valid_until": "end_date",
    "authority": "department (departments.toml, else the authority's USCC)",
    "authority_uscc": "department when the name matches no department",
    "license_type": "subkind is not used; description",
    "license_content": "description",
    "removed_on": "end_date (list exit)",
    "reason": "description (list entry reason)",
    "removal_reason": "description (list exit reason)",
    "year": "decision_date = 30 April of the next year (tax credit results are fixed in April)",
    "rated_on": "decision_date (when the file gives the rating date)",
    "level": "subkind (tax credit level A/B/M/C/D)",
}
Family = Literal["penalty", "license", "list", "tax_credit"]


class LayoutError(ValueError):
    """A mapping file is not TOML or breaks the layout schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayoutSpec(_Strict):
    """One national layout: its name, what record kind it carries and which headers feed what."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title_zh: str
    title_en: str
    family: Family
    kind: str
    record_id_prefix: str = Field(pattern=r"^[A-Z]{2,6}$")
    department: str | None = None  # fixed department code (e.g. court for 失信被执行人)
    required: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]
    ignore: tuple[str, ...] = ()

    @field_validator("columns")
    @classmethod
    def _known_targets(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = sorted(set(value) - set(SOURCE_FIELDS))
        if unknown:
            raise ValueError(f"columns maps to unknown source fields {unknown}; known: {sorted(SOURCE_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _required_are_columns(self) -> LayoutSpec:
        missing = [r for r in self.required if r not in self.columns]
        if missing:
            raise ValueError(f"required {missing} have no aliases under [columns]")
        if "uscc" not in self.columns:
            raise ValueError("a layout must map a column to uscc")
        return self


class CategoryRule(_Strict):
    """One category of penalty (行政处罚法 art. 9) and how severe it is."""

    label: str
    patterns: tuple[str, ...] = Field(min_length=1)
    severity: Literal["minor", "general", "serious", "by_amount"]
    amount: Literal["fine", "confiscation"] | None = None

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for p in value:
            re.compile(p)
        return value


class Thresholds(_Strict):
    """Amounts in yuan: at most ``minor_max`` is minor, at least ``serious_min`` is serious."""

    minor_max: float = Field(ge=0)
    serious_min: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.minor_max >= self.serious_min:
            raise ValueError(f"minor_max {self.minor_max} must be below serious_min {self.serious_min}")
        return self


class SeverityRules(_Strict):
    """How a penalty's severity is derived (severity.toml)."""

    separators: str
    not_penalties: tuple[str, ...] = ()
    categories: dict[str, CategoryRule] = Field(min_length=1)
    default_thresholds: Thresholds
    departments: dict[str, Thresholds] = Field(default_factory=dict)
    stated: dict[str, Literal["minor", "general", "serious"]] = Field(default_factory=dict)


class Departments(_Strict):
    """Authority names → department codes (departments.toml): the first pattern found in the name wins."""

    patterns: dict[str, str]


# --------------------------------------------------------------------------------------------
# headers
# --------------------------------------------------------------------------------------------
_SEPARATORS = re.compile(r"[\s\u3000]+")
_DASHES = re.compile(r"[-－—–‐_＿]+")


def normalise_header(text: str) -> str:
    """A header as compared: NFKC (full-width → half-width), no spaces, ``（）【】[]`` → ``()``,
    ``-``/``＿``/``—`` → ``_``, no trailing colon or leading ``*``, ASCII lower-cased."""
    t = unicodedata.normalize("NFKC", str(text)).replace("\ufeff", "")
    t = _SEPARATORS.sub("", t)
    t = t.replace("【", "(").replace("】", ")").replace("[", "(").replace("]", ")")
    t = _DASHES.sub("_", t)
    t = t.strip(":：*").lower()
    return t


def _base(text: str) -> str:
    return text.split("(", 1)[0]


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def _read_toml(text: str, where: str) -> dict:
    return parse_toml(text, where, LayoutError)


def _validated(model, data: dict, where: str):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise LayoutError(f"{where}: {loc}: {first['msg']}") from exc


def load_layouts(layouts_dir: str | Path | None = None) -> dict[str, LayoutSpec]:
    """The packaged layouts, plus (overriding by name) every ``*.toml`` layout in ``layouts_dir``."""
    layouts: dict[str, LayoutSpec] = {}
    package = resources.files("features.layouts")
    sources = [(p.name, p.read_text(encoding="utf-8")) for p in package.iterdir() if p.name.endswith(".toml")]
    if layouts_dir is not None:
        sources += [(str(p), p.read_text(encoding="utf-8")) for p in sorted(Path(layouts_dir).glob("*.toml"))]
    for where, text in sorted(sources, key=lambda s: (Path(s[0]).parent != Path("."), s[0])):
        data = _read_toml(text, where)
        if "family" not in data:
            continue  # severity.toml, departments.toml
        spec = _validated(LayoutSpec, data, where)
        layouts[spec.name] = spec
    return layouts


def _load_config(name: str, model, layouts_dir: str | Path | None):
    path = Path(layouts_dir) / name if layouts_dir is not None else None
    if path is not None and path.is_file():
        return _validated(model, _read_toml(path.read_text(encoding="utf-8"), str(path)), str(path))
    text = resources.files("features.layouts").joinpath(name).read_text(encoding="utf-8")
    return _validated(model, _read_toml(text, name), name)


def load_severity_rules(layouts_dir: str | Path | None = None) -> SeverityRules:
    return _load_config("severity.toml", SeverityRules, layouts_dir)


def load_departments(layouts_dir: str | Path | None = None) -> Departments:
    return _load_config("departments.toml", Departments, layouts_dir)


# --------------------------------------------------------------------------------------------
# recognising
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """A recognised layout (what the ingest report names)."""

    name: str
    title_zh: str
    title_en: str


def _match(header: list[str], spec: LayoutSpec) -> tuple[dict[str, list[str]], dict[str, str], int]:
    """(target → columns, column → what it maps to, number of recognised columns)."""
    aliases: dict[str, str] = {}
    for target, names in spec.columns.items():
        for a in names:
            aliases.setdefault(normalise_header(a), target)
    ignored = {normalise_header(a) for a in spec.ignore}
    targets: dict[str, list[str]] = {}
    mapped: dict[str, str] = {}
    for col in header:
        n = normalise_header(col)
        target = aliases.get(n)
        if target is None and "(" in n:
            # "行政相对人代码_1(统一社会信用代码)" also answers to "行政相对人代码_1"; a unit in brackets
            # (万元/元) is part of the alias, so an amount is never matched by its base name
            base = _base(n)
            target = aliases.get(base) if base and not re.search(r"\((万?元)\)", n) else None
        if target is not None:
            targets.setdefault(target, []).append(col)
            mapped[col] = target
        elif n in ignored or (_base(n) in ignored and _base(n)):
            mapped[col] = "ignored"
    return targets, mapped, len(mapped)


def recognise(header: list[str], *, source: str | None, layouts_dir: str | Path | None, policy: Policy,
              contract_columns: tuple[str, ...], jsonl: bool = False) -> tuple[Layout | None, Mapping | None]:
    """(None, None) for a file in the contract's own layout, else the national layout and its mapping.

    ``source`` forces a layout by name (``contract`` for ours). Raises ``ValueError`` saying what is
    missing when no layout fits.
    """
    if source in (None, "contract") and (jsonl or set(header) == set(contract_columns)):
        return None, None
    layouts = load_layouts(layouts_dir)
    if source == "contract":
        missing = [c for c in contract_columns if c not in header]
        unknown = [c for c in header if c not in contract_columns]
        raise ValueError(f"columns do not match the data contract; missing {missing}, unknown {unknown[:10]}")
    if source is not None:
        if source not in layouts:
            raise ValueError(f"--source {source!r} is not a layout; known: {['contract', *sorted(layouts)]}")
        candidates = [layouts[source]]
    else:
        candidates = list(layouts.values())
    scored = []
    notes = []
    for spec in candidates:
        targets, mapped, score = _match(header, spec)
        missing = [r for r in spec.required if r not in targets]
        if missing:
            notes.append(f"{spec.name}: lacks {missing}")
            continue
        scored.append((score, spec, targets, mapped))
    if not scored:
        missing = [c for c in contract_columns if c not in header]
        unknown = [c for c in header if c not in contract_columns]
        raise ValueError("columns match neither the data contract (missing "
                         f"{missing[:6]}, unknown {unknown[:6]}) nor a national layout ({'; '.join(notes)})")
    scored.sort(key=lambda s: -s[0])
    if len(scored) > 1 and scored[0][0] == scored[1][0]:
        raise ValueError(f"header fits layouts {scored[0][1].name} and {scored[1][1].name} equally; "
                         "choose one with --source")
    _, spec, targets, mapped = scored[0]
    mapping = Mapping(spec, header, targets, mapped, load_severity_rules(layouts_dir), load_departments(layouts_dir),
                      policy)
    return Layout(spec.name, spec.title_zh, spec.title_en), mapping


# --------------------------------------------------------------------------------------------
# values
# --------------------------------------------------------------------------------------------
_DATE_PATTERNS = (
    re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T].*)?$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
# a resident identity card number: 18 (or the old 15) digits, or masked with * as courts publish them
_ID_CARD = re.compile(r"^(\d{17}[\dXx]|\d{15}|(?=[\d*Xx]*\*)[\d*]{14,17}[\dXx*])$")
_FINE_IN_TEXT = re.compile(r"罚款(?:人民币)?\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(万?)元")


def _iso_dates(s: pd.Series) -> pd.Series:
    """Dates written as 2024-03-05, 2024/3/5, 2024年3月5日, 20240305 or with a time → ISO text; other
    text is kept as it is, so the contract's check quarantines it as date_invalid."""
    text = s.where(s.isna(), s.astype("string").str.strip().str.normalize("NFKC"))
    out = text.copy()
    for pattern in _DATE_PATTERNS:
        parts = text.str.extract(pattern)
        ok = parts[0].notna()
        out[ok] = parts.loc[ok, 0] + "-" + parts.loc[ok, 1].str.zfill(2) + "-" + parts.loc[ok, 2].str.zfill(2)
    return out.astype(object).where(out.notna(), None)


def _amounts(s: pd.Series, factor: float) -> pd.Series:
    """Amount text (thousands separators, spaces, NFKC digits) × ``factor`` → yuan text; text that is
    not a plain number is kept, so the contract's check quarantines it (value_invalid, out of range)."""
    text = s.where(s.isna(), s.astype("string").str.normalize("NFKC").str.replace(r"[,\s]", "", regex=True))
    number = pd.to_numeric(text, errors="coerce")
    yuan = (number * factor).round(2)
    shown = yuan.map(lambda x: None if pd.isna(x) else (f"{x:.2f}".rstrip("0").rstrip(".")
                                                         if np.isfinite(x) and abs(x) < 1e16 else repr(float(x))))
    return shown.where(number.notna(), text.astype(object)).astype(object).where(s.notna(), None)


def _joined(frame: pd.DataFrame, columns: list[str], sep: str = "；") -> pd.Series:
    if not columns:
        return pd.Series(None, index=frame.index, dtype=object)
    parts = frame[columns].apply(lambda c: c.str.strip())
    out = parts.apply(lambda row: sep.join(v for v in row if isinstance(v, str) and v), axis=1) \
        if len(columns) > 1 else parts[columns[0]]
    out = out.astype(object)
    return out.where(out.notna() & (out != ""), None)


class Mapping:
    """How one file's columns become contract records (see :meth:`to_records`)."""

    def __init__(self, spec: LayoutSpec, header: list[str], targets: dict[str, list[str]], mapped: dict[str, str],
                 severity: SeverityRules, departments: Departments, policy: Policy) -> None:
        if spec.kind not in policy.kinds:
            raise ValueError(f"layout {spec.name} maps to kind {spec.kind!r}, not in policy {policy.version}")
        self.spec, self.header, self.targets, self.mapped = spec, header, targets, mapped
        self.severity, self.departments, self.policy = severity, departments, policy
        self._categories = [(name, rule, re.compile("|".join(f"(?:{p})" for p in rule.patterns)))
                            for name, rule in severity.categories.items()]

    def report(self) -> list[dict[str, str | None]]:
        """Per column of the file: the source field it feeds, ``ignored``, or None (not recognised)."""
        return [{"column": c, "mapped_to": self.mapped.get(c)} for c in self.header]

    def _col(self, frame: pd.DataFrame, target: str) -> pd.Series:
        return _joined(frame, self.targets.get(target, []))

    # -- natural persons ------------------------------------------------------------------------
    def _natural_person(self, frame: pd.DataFrame, uscc: pd.Series) -> np.ndarray:
        category = self._col(frame, "subject_category").fillna("")
        id_type = self._col(frame, "id_type").fillna("")
        id_number = self._col(frame, "id_number").fillna("").str.strip()
        code = uscc.fillna("").str.strip()
        no_uscc = ~valid_uscc_mask(uscc)
        by_category = category.str.contains("自然人")
        by_id = (id_type.str.contains("身份证") | id_number.str.fullmatch(_ID_CARD.pattern)
                 | code.str.fullmatch(_ID_CARD.pattern)) & no_uscc
        return (by_category | by_id).to_numpy(dtype=bool)

    # -- severity ---------------------------------------------------------------------------------
    def _thresholds(self, department: str | None) -> Thresholds:
        return self.severity.departments.get(department or "", self.severity.default_thresholds)

    def _derive_severity(self, types: pd.Series, content: pd.Series, fine: pd.Series, confiscation: pd.Series,
                         department: pd.Series) -> tuple[list[str | None], list[tuple[str, str] | None]]:
        """(severity, why it could not be derived) per row; never a guess: a type the rules do not know,
        or a fine or confiscation whose amount is not given, leaves the severity underivable."""
        split = re.compile(self.severity.separators)
        skip = re.compile("|".join(f"(?:{p})" for p in self.severity.not_penalties) or "(?!)")
        severities: list[str | None] = []
        problems: list[tuple[str, str] | None] = []
        rank = {s: i for i, s in enumerate(SEVERITY_VALUES)}
        for t, c, f, k, d in zip(types, content, fine, confiscation, department, strict=True):
            text = t if isinstance(t, str) and t.strip() else c
            if not isinstance(text, str) or not text.strip():
                severities.append(None)
                problems.append(("处罚类别和处罚内容都为空", "penalty type and content are both empty"))
                continue
            text = unicodedata.normalize("NFKC", text)
            tokens = [tok for tok in split.split(text) if tok.strip()]
            found: list[str] = []
            unknown: list[str] = []
            for tok in tokens:
                if skip.search(tok):
                    continue
                hits = [(name, rule) for name, rule, rx in self._categories if rx.search(tok)]
                if not hits:
                    unknown.append(tok)
                    continue
                for _, rule in hits:
                    if rule.severity != "by_amount":
                        found.append(rule.severity)
                        continue
                    amount = f if rule.amount == "fine" else k
                    if amount is None or not np.isfinite(amount):
                        unknown.append(tok + "*")  # * : the amount is not given
                        continue
                    limits = self._thresholds(d)
                    found.append("minor" if amount <= limits.minor_max else
                                 "serious" if amount >= limits.serious_min else "general")
            if unknown or not found:
                severities.append(None)
                shown = "、".join(unknown) or text
                problems.append((f"无法识别：{shown}（* 未给出金额）", f"not recognised: {shown} (* no amount given)"))
            else:
                severities.append(max(found, key=rank.__getitem__))
                problems.append(None)
        return severities, problems

    # -- departments ----------------------------------------------------------------------------
    def _department(self, frame: pd.DataFrame) -> pd.Series:
        if self.spec.department is not None:
            return pd.Series(self.spec.department, index=frame.index, dtype=object)
        name = self._col(frame, "authority")
        code = pd.Series(None, index=frame.index, dtype=object)
        norm = name.where(name.isna(), name.astype("string").str.normalize("NFKC"))
        for pattern, dept in self.departments.patterns.items():
            hit = code.isna() & norm.str.contains(pattern, regex=True, na=False)
            code[hit.to_numpy()] = dept
        authority_uscc = self._col(frame, "authority_uscc")
        code = code.where(code.notna(), authority_uscc)
        # an authority matching no pattern and giving no code keeps its name: the schema's limits apply
        return code.where(code.notna(), name)

    # -- the records ----------------------------------------------------------------------------
    def to_records(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, Verdict]:
        """Contract record rows (strings) and a verdict holding what the mapping itself found."""
        spec, n = self.spec, len(frame)
        v = Verdict(n)
        out = pd.DataFrame({c: pd.Series([None] * n, index=frame.index, dtype=object) for c in RECORD_COLUMNS})
        uscc = self._col(frame, "uscc")
        uscc = uscc.where(uscc.isna(), uscc.astype("string").str.strip().str.normalize("NFKC").str.upper()).astype(object)
        natural = self._natural_person(frame, uscc)
        v.add("natural_person", natural, "subject",
              "row about a natural person (identity-card number or 自然人, no USCC): quarantined, nothing of it kept",
              "涉及自然人（身份证号或类别为自然人，无统一社会信用代码）：整行隔离，个人信息不入库")
        out["uscc"] = uscc.where(~pd.Series(natural, index=frame.index), None)
        out["kind"] = spec.kind
        document_no = self._col(frame, "document_no")
        out["document_no"] = document_no
        out["department"] = self._department(frame)
        decision = self._col(frame, "decision_date")
        if spec.family == "tax_credit":
            rated = _iso_dates(self._col(frame, "rated_on"))
            year = self._col(frame, "year").str.extract(r"^\s*(\d{4})", expand=False)
            from_year = (year.astype("Int64") + 1).astype("string") + "-04-30"
            decision = rated.where(rated.notna(), from_year.astype(object).where(year.notna(), self._col(frame, "year")))
            level = self._col(frame, "level").str.strip().str.upper()
            out["subkind"] = level
            v.add("value_invalid", (level.notna() & ~level.isin(["A", "B", "M", "C", "D"])).to_numpy(), "subkind",
                  "tax credit level must be A, B, M, C or D", "纳税信用级别须为 A、B、M、C、D")
            v.add("field_missing", level.isna().to_numpy(), "subkind", "tax credit level is required", "纳税信用级别为必填")
        out["decision_date"] = _iso_dates(decision)
        if spec.family == "penalty":
            self._penalty(frame, out, v)
        elif spec.family == "license":
            out["end_date"] = _iso_dates(self._col(frame, "valid_until"))
            out["description"] = self._description(frame, ("license_content", "license_type"))
        elif spec.family == "list":
            out["end_date"] = _iso_dates(self._col(frame, "removed_on"))
            reason, removal = self._col(frame, "reason"), self._col(frame, "removal_reason")
            text = reason.where(removal.isna(), reason.fillna("") + "；移出原因：" + removal.fillna(""))
            out["description"] = text.map(lambda t: t[:500] if isinstance(t, str) else None)
        # the key: stable across re-ingestion, so a corrected row becomes a new version of the same record
        basis = document_no.where(document_no.notna(), out["decision_date"]) if spec.family != "tax_credit" \
            else self._col(frame, "year")
        keys = [None if nat or u is None else
                f"{spec.record_id_prefix}-" + hashlib.sha256(f"{spec.kind}|{u}|{b}".encode("utf-8", "surrogateescape")
                                                             ).hexdigest()[:24]
                for u, b, nat in zip(out["uscc"], basis, natural, strict=True)]
        out["record_id"] = pd.Series(keys, index=frame.index, dtype=object)
        return out.reset_index(drop=True), v

    def _description(self, frame: pd.DataFrame, targets: tuple[str, ...]) -> pd.Series:
        text = pd.Series(None, index=frame.index, dtype=object)
        for t in targets:
            col = self._col(frame, t)
            text = text.where(text.notna(), col)
        return text.map(lambda t: t[:500] if isinstance(t, str) else None)  # a summary, cut: see the docstring

    def _penalty(self, frame: pd.DataFrame, out: pd.DataFrame, v: Verdict) -> None:
        out["publicity_end"] = _iso_dates(self._col(frame, "publicity_end"))
        content = self._col(frame, "penalty_content")
        fine = _amounts(self._col(frame, "fine_wan"), 10_000.0)
        fine = fine.where(fine.notna(), _amounts(self._col(frame, "fine_yuan"), 1.0))
        # a fine written only in the text (处罚内容 "罚款人民币5000元", "罚款0.5万元")
        in_text = content.fillna("").str.normalize("NFKC").str.extract(_FINE_IN_TEXT)
        from_text = pd.to_numeric(in_text[0].str.replace(",", ""), errors="coerce") * np.where(in_text[1] == "万", 1e4, 1.0)
        fine = fine.where(fine.notna(), from_text.round(2).map(lambda x: None if pd.isna(x) else f"{x:.2f}"))
        out["amount"] = fine
        fine_number = pd.to_numeric(fine, errors="coerce")
        confiscation = pd.to_numeric(_amounts(self._col(frame, "confiscation_wan"), 10_000.0), errors="coerce")
        out["description"] = self._description(frame, ("penalty_content", "penalty_name", "violation_type"))
        stated = self._col(frame, "severity_text").str.strip()
        stated_value = stated.map(lambda s: self.severity.stated.get(s, s if s in SEVERITY_VALUES else None)
                                  if isinstance(s, str) else None)
        v.add("severity_invalid", (stated.notna() & stated_value.isna()).to_numpy(), "severity",
              f"the stated severity is not one of {sorted(self.severity.stated)}",
              f"所填情节等级不在 {'、'.join(sorted(self.severity.stated))} 之中")
        derived, problems = self._derive_severity(self._col(frame, "penalty_types"), content,
                                                  fine_number.astype(object).where(fine_number.notna(), None),
                                                  confiscation.astype(object).where(confiscation.notna(), None),
                                                  out["department"])
        severity = stated_value.where(stated_value.notna(), pd.Series(derived, index=frame.index, dtype=object))
        out["severity"] = severity
        problem = pd.Series(problems, index=frame.index, dtype=object)
        underivable = (severity.isna() & problem.notna()).to_numpy()
        v.add("severity_underivable", underivable, "severity",
              np.asarray([p[1] if p else "" for p in problem], dtype=object),
              np.asarray([p[0] if p else "" for p in problem], dtype=object))
