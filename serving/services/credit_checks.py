"""联合奖惩 joint checks: for subjects and a matter, the measures of the measures catalogue
(``serving.measures``) that apply, each with the records and list entries behind it and its legal
basis. Never the grade (it is not public).

Which records are in force is the catalogue policy's one rule (``features.evidence.records_in_force``
over ``counted_records.sql``: publicity periods, windows, repair, revocation, exemption, list exit),
run on the service's records with its decisions replayed as the regrader does
(``regrade.change_rows``). That rule is a DuckDB pass costing tenths of a second, so its result is
kept per subject (``credit_check_basis``) with what it depends on: the date, the highest id of the
subject's record rows (a record never changes in place: a correction, repair or revocation is a new
row, so a new id) and the policy version of the subject's section. A check reads that row and
recomputes only subjects whose basis no longer matches (``refresh``); ``refresh_all`` recomputes a
whole city at once (run it after midnight and after an ingest, so checks stay one indexed read).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, Date, and_, bindparam, case, func, select, text
from sqlalchemy.orm import Session

from serving.db.driver import compiled_for
from serving.db.session import connection_of
from serving.db.tables import CreditCheckBasis, Record, Subject, UtcDateTime
from serving.errors import InvalidInput, NotAllowed
from serving.labels import department_name
from serving.measures import Matter, Measure, MeasuresCatalogue
from serving.security import Principal

CHECKER_ROLES = ("regulator", "admin")
MAX_BATCH = 10_000
_CHUNK = 500  # codes per lookup statement (a fixed number of parameters: compiled once)
# the fields of a stored entry, in this order: a measure's kind and severity are then one
# substring of the stored JSON (``_MatterRules.markers``), so most bases are answered unparsed
ENTRY_FIELDS = ("record_id", "kind", "severity", "subkind", "decision_date", "end_date", "department",
                "document_no")
BASIS_FORMAT = "b1"  # stored with the policy version: a basis of another layout is recomputed


@lru_cache(maxsize=64)
def policy_for(section: str | None) -> Any:
    """The catalogue policy of ``section`` (the default policy with its sector overrides)."""
    from features.catalogue import default_policy

    return default_policy().for_sector(section)


def _basis_version(section: str | None) -> str:
    return f"{policy_for(section).version}/{BASIS_FORMAT}"


# --- who may check what ---------------------------------------------------------------------

def open_matter(catalogue: MeasuresCatalogue, matter: str, principal: Principal) -> Matter:
    """The matter ``principal`` may check, or `InvalidInput` (unknown) / `NotAllowed` (not its
    department's), both in Chinese, naming the matter."""
    found = catalogue.matters.get(matter)
    if found is None:
        known = "、".join(f"{code}（{m.name_zh}）" for code, m in catalogue.matters.items())
        raise InvalidInput(f"unknown matter {matter!r} (catalogue {catalogue.version})", field="matter",
                           zh=f"未知的核查事项 {matter!r}；措施清单 {catalogue.version} 的事项有：{known}")
    if principal.role != "admin" and not found.open_to(principal.department):
        open_to = "、".join(department_name(d) if d != "*" else "所有部门" for d in found.departments)
        zh = f"{department_name(principal.department)}不能核查事项「{found.name_zh}」：措施清单只向{open_to}开放。"
        raise NotAllowed(f"{zh} (department {principal.department!r} may not check {matter!r}: the measures "
                         f"catalogue opens it to {', '.join(found.departments)})", zh=zh)
    return found


def logged_purpose(matter: str, purpose: str | None) -> str:
    """The purpose a check is logged with: the matter, and the caller's own words if given."""
    text = f"联合奖惩核查 {matter}" + (f"：{purpose}" if purpose else "")
    return text[:200]


def refused_purpose(code: str, matter: Any, purpose: Any, n_codes: int | None = None) -> str:
    """The purpose a refused check is logged with: the refusal's code first (never cut), the
    matter and the caller's words as far as they were given (anything the caller sent is cleaned
    of control characters and bounded: the request was not validated), and for a batch the
    number of codes sent."""
    matter_text = _printable(matter, 40) if isinstance(matter, str) else "?"
    text = f"拒绝（{code}）联合奖惩核查 {matter_text}"
    if n_codes is not None:
        text += f"，共 {n_codes} 个代码"
    if isinstance(purpose, str) and purpose:
        text += f"：{_printable(purpose, 200)}"
    return text[:200]


def refused_codes(sent: Any) -> list[str]:
    """The codes of a refused check as far as they parse, to be logged: each distinct string as
    a code's characters (letters and digits, at most 18: the log's column), at most
    ``MAX_BATCH`` of them (an allowed batch logs as many); nothing parsed, no code."""
    items = sent if isinstance(sent, list) else [sent]
    codes = dict.fromkeys("".join(c for c in item[:64] if c.isascii() and c.isalnum())[:18]
                          for item in items if isinstance(item, str))
    return [c for c in codes if c][:MAX_BATCH]


def _printable(value: str, limit: int) -> str:
    return "".join(c for c in value[:limit] if c.isprintable())


# --- the basis: records in force per subject ----------------------------------------------------

class Basis(NamedTuple):
    """One subject's records in force on a date, as stored (JSON; ``found`` False: no such
    subject). Parsed only when a measure of the matter may rest on one of its kinds."""

    uscc: str
    found: bool
    raw: str = "[]"

    @property
    def entries(self) -> list[dict[str, Any]]:
        return json.loads(self.raw) if self.raw != "[]" else []


def _lookup_statement(n: int) -> Any:
    # whether the stored basis is of today and of the subject's latest record row, decided in SQL
    # (no date conversion per row); the policy version is compared by the caller
    stamp = select(func.max(Record.id)).where(Record.uscc == Subject.uscc).scalar_subquery()
    fresh = case((and_(CreditCheckBasis.as_of == bindparam("today"),
                       CreditCheckBasis.records_stamp == func.coalesce(stamp, 0)), 1), else_=0)
    return (select(Subject.uscc, Subject.industry, fresh.label("fresh"), CreditCheckBasis.policy_version,
                   CreditCheckBasis.entries)
            .select_from(Subject).outerjoin(CreditCheckBasis, CreditCheckBasis.uscc == Subject.uscc)
            .where(Subject.uscc.in_([bindparam(f"u{i}") for i in range(n)])))


_LOOKUP_ONE = _lookup_statement(1)
_LOOKUP_CHUNK = _lookup_statement(_CHUNK)
_CHUNK_KEYS = tuple(f"u{i}" for i in range(_CHUNK))


def stored_bases(source: Session | Connection, usccs: Sequence[str], today: dt.date
                 ) -> tuple[dict[str, Basis], list[tuple[str, str | None]]]:
    """The bases of ``usccs`` that are still valid today, and the (uscc, industry) of the
    subjects whose basis must be recomputed. Codes of no subject are answered ``found=False``."""
    connection = connection_of(source)
    one, many = compiled_for(_LOOKUP_ONE, connection.dialect), compiled_for(_LOOKUP_CHUNK, connection.dialect)
    day = today.isoformat()  # as the Date column stores it (SQLite); PostgreSQL casts the literal
    versions: dict[str | None, str] = {}
    valid: dict[str, Basis] = {}
    stale: list[tuple[str, str | None]] = []
    for start in range(0, len(usccs), _CHUNK):
        chunk = usccs[start:start + _CHUNK]
        if len(chunk) == 1:
            rows = one.rows(connection, {"today": day, "u0": chunk[0]})
        else:
            params = dict(zip(_CHUNK_KEYS, chunk, strict=False))
            for key in _CHUNK_KEYS[len(chunk):]:
                params[key] = ""
            params["today"] = day
            rows = many.rows(connection, params)
        for uscc, industry, fresh, version, entries in rows:
            wanted = versions.get(industry)
            if wanted is None:
                wanted = versions[industry] = _basis_version(industry)
            if fresh and entries is not None and version == wanted:
                valid[uscc] = Basis(uscc, True, entries)
            else:
                stale.append((uscc, industry))
    if len(valid) + len(stale) < len(usccs):
        seen = set(valid).union(u for u, _ in stale)
        for uscc in usccs:
            if uscc not in seen:
                valid[uscc] = Basis(uscc, False)
    return valid, stale


_CURRENT_COLUMNS = ("id", "record_id", "uscc", "kind", "subkind", "severity", "decision_date", "end_date",
                    "publicity_end", "amount", "department", "document_no", "description", "repaired", "repaired_on",
                    "revoked", "revoked_on", "change_reason")


def refresh(session: Session, subjects: Sequence[tuple[str, str | None]], today: dt.date) -> dict[str, Basis]:
    """Recompute and store the bases of ``subjects`` ((uscc, industry)) as of ``today``: one pass
    of the catalogue's rule per policy (section override) among them. Writes in the session's
    transaction; the caller commits."""
    import pandas as pd

    from features.evidence import records_in_force
    from serving.services.regrade import SERVICE_RECORD_FIELDS, change_rows

    if not subjects:
        return {}
    usccs = [u for u, _ in subjects]
    stamps: dict[str, int] = {}
    current: list[Any] = []
    columns = [getattr(Record, c) for c in _CURRENT_COLUMNS]
    for start in range(0, len(usccs), _CHUNK):
        chunk = usccs[start:start + _CHUNK]
        stamps.update(list(session.execute(select(Record.uscc, func.max(Record.id)).where(Record.uscc.in_(chunk))
                                           .group_by(Record.uscc)).tuples()))
        current.extend(session.execute(select(*columns).where(Record.uscc.in_(chunk), Record.is_current.is_(True))))
    frame = pd.DataFrame([{f: getattr(r, f) for f in SERVICE_RECORD_FIELDS} for r in current],
                         columns=list(SERVICE_RECORD_FIELDS))
    changes = change_rows(current)
    if changes:
        frame = pd.concat([frame.astype(object), pd.DataFrame(changes).astype(object)], ignore_index=True)
    by_policy: dict[str, tuple[Any, list[str]]] = {}
    for uscc, industry in subjects:
        by_policy.setdefault(_basis_version(industry), (policy_for(industry), []))[1].append(uscc)
    entries: dict[str, list[dict[str, Any]]] = {u: [] for u in usccs}
    versions: dict[str, str] = {}
    for version, (policy, members) in by_policy.items():
        versions.update(dict.fromkeys(members, version))
        part = frame[frame["uscc"].isin(members)] if len(by_policy) > 1 else frame
        if part.empty:
            continue
        in_force = records_in_force(part, today, policy)
        for row in in_force.to_dict("records"):
            entries[row["uscc"]].append({f: _plain(row[f]) for f in ENTRY_FIELDS})
    now = dt.datetime.now(dt.UTC)
    raw = {u: json.dumps(entries[u], ensure_ascii=False, separators=(",", ":")) for u in usccs}
    rows = [{"uscc": u, "as_of": today, "records_stamp": stamps.get(u, 0), "policy_version": versions[u],
             "entries": raw[u], "computed_at": now} for u in usccs]
    # an upsert (SQLite and PostgreSQL alike): two workers recomputing the same subject both succeed
    session.execute(_UPSERT, rows)
    return {u: Basis(u, True, raw[u]) for u in usccs}


_UPSERT = text(
    "INSERT INTO credit_check_basis (uscc, as_of, records_stamp, policy_version, entries, computed_at) "
    "VALUES (:uscc, :as_of, :records_stamp, :policy_version, :entries, :computed_at) "
    "ON CONFLICT (uscc) DO UPDATE SET as_of = excluded.as_of, records_stamp = excluded.records_stamp, "
    "policy_version = excluded.policy_version, entries = excluded.entries, computed_at = excluded.computed_at"
).bindparams(bindparam("as_of", type_=Date()), bindparam("computed_at", type_=UtcDateTime()))


def _plain(value: Any) -> Any:
    """JSON-ready: dates as ISO strings, pandas' missing values as None."""
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def bases(session: Session, usccs: Sequence[str], today: dt.date) -> dict[str, Basis]:
    """The bases of ``usccs`` today, recomputing (and storing, committed) the stale ones."""
    valid, stale = stored_bases(session, usccs, today)
    if stale:
        valid.update(refresh(session, stale, today))
        session.commit()
    return valid


def refresh_all(session: Session, today: dt.date, *, chunk: int = 20_000) -> int:
    """Recompute every subject's basis as of ``today`` (the nightly job), ``chunk`` subjects per
    pass and commit; returns the number of subjects."""
    done = 0
    last = ""
    while True:
        subjects = list(session.execute(select(Subject.uscc, Subject.industry).where(Subject.uscc > last)
                                        .order_by(Subject.uscc).limit(chunk)).tuples())
        if not subjects:
            return done
        refresh(session, subjects, today)
        session.commit()
        done += len(subjects)
        last = subjects[-1][0]


# --- the measures that apply ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Rule:
    measure: Measure
    severities: frozenset[str] | None
    subkinds: frozenset[str] | None
    head: dict[str, Any]  # the measure's own fields of the answer

    def matches(self, entry: dict[str, Any]) -> bool:
        return ((self.severities is None or entry.get("severity") in self.severities)
                and (self.subkinds is None or entry.get("subkind") in self.subkinds))


@dataclass(frozen=True, slots=True)
class _MatterRules:
    """A matter's measures prepared for matching: the rules, the rules by record kind, and the
    text each of those kinds has in a stored basis (a basis without any is answered unparsed)."""

    rules: tuple[_Rule, ...]
    by_kind: dict[str, tuple[int, ...]]
    markers: tuple[str, ...]


_RULES: dict[tuple[int, str], tuple[MeasuresCatalogue, _MatterRules]] = {}


def _rules(catalogue: MeasuresCatalogue, matter: str) -> _MatterRules:
    """The measures of ``matter`` prepared for matching (kept per catalogue object and matter;
    the entry holds the catalogue, so its id is never reused while cached)."""
    cached = _RULES.get((id(catalogue), matter))
    if cached is not None and cached[0] is catalogue:
        return cached[1]
    rules: list[_Rule] = []
    by_kind: dict[str, list[int]] = {}
    for i, m in enumerate(catalogue.for_matter(matter)):
        when = m.when
        rules.append(_Rule(m, frozenset(when.severities) if when.severities else None,
                           frozenset(when.subkinds) if when.subkinds else None,
                           {"code": m.code, "type": m.type, "action": m.action, "name_zh": m.name_zh,
                            "name_en": m.name_en, "legal_basis": list(m.legal_basis)}))
        for kind in when.kinds:
            by_kind.setdefault(kind, []).append(i)
    markers = []
    for m in catalogue.for_matter(matter):
        for kind in m.when.kinds:
            for severity in m.when.severities or (None,):  # kind and severity are adjacent in a stored entry
                pair = {"kind": kind, "severity": severity} if severity else {"kind": kind}
                markers.append(json.dumps(pair, ensure_ascii=False, separators=(",", ":"))[1:-1])
    prepared = _MatterRules(tuple(rules), {k: tuple(v) for k, v in by_kind.items()},
                            tuple(dict.fromkeys(markers)))
    if len(_RULES) > 256:  # catalogues come and go in tests only
        _RULES.clear()
    _RULES[(id(catalogue), matter)] = (catalogue, prepared)
    return prepared


def measures_for(catalogue: MeasuresCatalogue, matter: str, basis: Basis) -> list[dict[str, Any]]:
    """The measures of ``matter`` that ``basis`` (records in force) makes apply, in catalogue
    order, each with the list entries and records behind it and its legal basis. Incentives yield
    to any restriction of the matter when the catalogue says so."""
    prepared = _rules(catalogue, matter)
    raw = basis.raw
    if raw == "[]":
        return []
    for marker in prepared.markers:
        if marker in raw:
            break
    else:
        return []  # no record of a kind any measure of the matter rests on
    behind: dict[int, list[dict[str, Any]]] = {}
    for entry in json.loads(raw):
        for i in prepared.by_kind.get(entry["kind"], ()):
            if prepared.rules[i].matches(entry):
                behind.setdefault(i, []).append(entry)
    applied = []
    for i in sorted(behind):
        cited = behind[i]
        applied.append({**prepared.rules[i].head,
                        "list_entries": [e for e in cited if e["kind"].startswith("list_")],
                        "records": [e for e in cited if not e["kind"].startswith("list_")]})
    if catalogue.incentives_yield_to_restrictions and any(m["type"] == "restriction" for m in applied):
        applied = [m for m in applied if m["type"] == "restriction"]
    return applied


def check_result(catalogue: MeasuresCatalogue, matter: str, today: dt.date, basis: Basis) -> dict[str, Any]:
    """One subject's answer (``CreditCheckOut``)."""
    measures = measures_for(catalogue, matter, basis) if basis.found else []
    return {"uscc": basis.uscc, "matter": matter, "matter_name_zh": catalogue.matters[matter].name_zh,
            "checked_on": today.isoformat(), "catalogue_version": catalogue.version, "found": basis.found,
            "blocked": any(m["action"] == "block" for m in measures), "measures": measures}
