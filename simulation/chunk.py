"""One chunk of the city as Arrow tables: subjects, records (with scenario and dirt), conflicts, truth.

Pure: the caller (``simulation.generate``) hands the tables to the writer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from simulation.behaviour import LatentBehaviour
from simulation.codes import corrupt_uscc_check, make_uscc
from simulation.config import SimulationConfig
from simulation.engine import SECTIONS, Subjects, TimeGrid, make_subjects
from simulation.records import CityTables, sample_records
from simulation.truth import future_adverse_probability
from simulation.vocab import (
    DESCRIPTION_TEXTS,
    DESCRIPTIONS,
    DOC_ACT,
    DOC_OPTIONAL,
    DOC_REQUIRED,
    EXEMPTIONS,
    KINDS,
    SEVERITIES,
    SUBKINDS,
)

#: the record dirt rules of the contract, in the order their quota is filled
RECORD_RULES = (
    "uscc_invalid", "date_invalid", "date_in_future", "date_order", "kind_unknown", "severity_invalid",
    "duplicate_record_id", "amount_negative", "legal_basis_missing", "text_encoding", "unknown_subject",
)
RULE_FIELD = {
    "uscc_invalid": "uscc", "date_invalid": "decision_date", "date_in_future": "decision_date",
    "date_order": "publicity_end", "kind_unknown": "kind", "severity_invalid": "severity",
    "duplicate_record_id": "record_id", "amount_negative": "amount", "legal_basis_missing": "document_no",
    "text_encoding": "description", "unknown_subject": "uscc",
}
SUBJECT_RULES = ("uscc_invalid", "date_invalid")
UNKNOWN_KINDS = ("admin_warning", "penalty", "行政处罚", "list_blacklist")
BAD_SEVERITIES = (None, "heavy", "严重的", "major")

# organisation-code serial ranges: real subjects below 5·10^7, dirty (ghost) subjects and unknown codes above
GHOST_SERIAL_BASE = 50_000_000
UNKNOWN_SERIAL_BASE = 70_000_000

RECORD_COLUMNS = (
    "record_id", "uscc", "kind", "subkind", "severity", "decision_date", "end_date", "publicity_end", "amount",
    "department", "document_no", "ref_record_id", "verified", "verified_on", "exemption", "inspection_item",
    "description",
)
SUBJECT_COLUMNS = (
    "uscc", "name", "legal_form", "industry", "district_code", "district_name", "registered_on",
    "registered_capital", "employees", "status", "status_date", "legal_rep_name", "legal_rep_id",
)


@dataclass
class ChunkOutput:
    """What one chunk contributes to each file, plus its dirt (rows are 0-based within the chunk)."""

    subjects: pa.Table
    records: pa.Table
    conflicts: pa.Table
    truth: pa.Table
    subject_dirt: list[tuple[int, str, str, str]]  # (row, uscc, field, rule)
    record_dirt: list[tuple[int, int, str, str]]  # (row, record number, field, rule)
    text_encoding_rows: np.ndarray  # record rows whose description the writer must mis-encode
    n_record_ids: int  # record ids consumed (the next chunk starts after them)
    record_number: np.ndarray  # per row, the record id number relative to the chunk's first id
    ref_number: np.ndarray  # per row, the referenced record's relative number, -1 for none

    def records_with_ids(self, first_record_id: int) -> pa.Table:
        """The records table with ``record_id`` and ``ref_record_id`` for ids starting at first_record_id."""
        ids = _record_ids(self.record_number + first_record_id)
        refs = _record_ids(np.maximum(self.ref_number, 0) + first_record_id)
        refs = pc.if_else(pa.array(self.ref_number >= 0), refs, pa.scalar(None, pa.string()))
        columns = {"record_id": ids, **dict(zip(self.records.column_names, self.records.columns, strict=True)),
                   "ref_record_id": refs}
        return pa.table({c: columns[c] for c in RECORD_COLUMNS})

    def record_dirt_with_ids(self, first_record_id: int) -> list[tuple[int, str, str, str]]:
        """record_dirt with the record ids spelled out."""
        numbers = np.array([n for _, n, _, _ in self.record_dirt], dtype=np.int64) + first_record_id
        ids = _record_ids(numbers).to_pylist() if len(numbers) else []
        return [(row, rid, f, rule) for (row, _, f, rule), rid in zip(self.record_dirt, ids, strict=True)]


def _dates(values: np.ndarray) -> pa.Array:
    return pa.array(values.astype("datetime64[D]"), from_pandas=True).cast(pa.string())


def _vocab(vocab: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    table = pa.array([v if v else None for v in vocab], type=pa.string())
    return pc.take(table, pa.array(codes.astype(np.int64)))


def _record_ids(numbers: np.ndarray) -> pa.Array:
    """``R`` + 12-digit zero-padded number."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width=12, padding="0")
    return pc.binary_join_element_wise("R", digits, "")


def _description_lookup() -> tuple[np.ndarray, np.ndarray]:
    """start/count into DESCRIPTION_TEXTS per (kind, subkind, severity) code."""
    shape = (len(KINDS), len(SUBKINDS), len(SEVERITIES))
    start = np.zeros(shape, dtype=np.int64)
    count = np.zeros(shape, dtype=np.int64)
    pos = 0
    for (kind, subkind, severity), texts in DESCRIPTIONS.items():
        start[KINDS.index(kind), SUBKINDS.index(subkind), SEVERITIES.index(severity)] = pos
        count[KINDS.index(kind), SUBKINDS.index(subkind), SEVERITIES.index(severity)] = len(texts)
        pos += len(texts)
    return start, count


def _document_heads(cfg: SimulationConfig, tables: CityTables) -> tuple[pa.Array, pa.Array]:
    """Per (department, kind): the text before the year and between year and number, or null."""
    heads, mids = [], []
    for code in tables.dept_codes:
        dept = cfg.city.department(code)
        for kind in KINDS:
            if kind not in DOC_REQUIRED and kind not in DOC_OPTIONAL:
                heads.append(None)
                mids.append(None)
            elif code == "court":
                heads.append("（")
                mids.append(f"）{cfg.city.court_doc_prefix}执")
            else:
                heads.append(f"{cfg.city.doc_prefix}{dept.doc_abbr}{DOC_ACT[kind]}〔")
                mids.append("〕")
    return pa.array(heads, type=pa.string()), pa.array(mids, type=pa.string())


def build_chunk(
    cfg: SimulationConfig,
    grid: TimeGrid,
    tables: CityTables,
    chunk_index: int,
    first_subject: int,
    n_subjects: int,
    inspector_ids_by_district: list[np.ndarray],
) -> ChunkOutput:
    """Generate chunk ``chunk_index`` (subjects first_subject … first_subject+n_subjects-1).

    Its random stream depends only on (seed, chunk_index), not on how many chunks there are; record ids
    are numbered from 0 and spelled out by ``ChunkOutput.records_with_ids`` once the offset is known, so
    chunks can be built in parallel.
    """
    # independent streams, so that switching dirt on or off changes nothing about the clean city (the fourth
    # draws the future drift paths the truth averages over)
    rng, ghost_rng, dirt_rng, truth_rng = (
        np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(chunk_index, k))) for k in range(4)
    )
    shock_from = None
    if cfg.scenario == "sector_shock":
        sd = np.datetime64(cfg.scenario_date)
        month = int(grid.month_of(np.array([sd]))[0])
        shock_from = month if sd == grid.month_starts[month] else month + 1
    subj = make_subjects(rng, cfg, grid, first_subject + np.arange(n_subjects), shock_from)
    rec = sample_records(rng, cfg, grid, subj, tables)
    cols = rec.columns
    # per-record choices made once per record, so dirty copies agree with their source
    cols["doc_serial"] = rng.integers(1, 3000, len(cols["subj"]))
    cols["desc_u"] = rng.random(len(cols["subj"]))
    truth = _truth(cfg, grid, tables, subj, rec, n_subjects, truth_rng, shock_from)
    conflicts = _conflicts(rng, subj, n_subjects, inspector_ids_by_district)
    if cfg.dirt:
        # dirty subject rows are extra (ghost) subjects with their own records, outside the truth
        n_ghosts = max(1, round(n_subjects * 0.0015))
        ghosts = make_subjects(ghost_rng, cfg, grid, GHOST_SERIAL_BASE + chunk_index * 10_000 + np.arange(n_ghosts),
                               shock_from)
        ghost_cols = sample_records(ghost_rng, cfg, grid, ghosts, tables).columns
        ghost_cols["doc_serial"] = ghost_rng.integers(1, 3000, len(ghost_cols["subj"]))
        ghost_cols["desc_u"] = ghost_rng.random(len(ghost_cols["subj"]))
        ghost_cols["subj"] = ghost_cols["subj"] + n_subjects
        ghost_cols["ref"] = np.where(ghost_cols["ref"] >= 0, ghost_cols["ref"] + len(cols["subj"]), -1)
        cols = {k: np.concatenate([cols[k], ghost_cols[k]]) for k in cols}
        subj = _concat_subjects(subj, ghosts)
    rng = dirt_rng

    # the feed as the departments deliver it: silent_feed drops one department's records from the date
    keep = np.ones(len(cols["subj"]), dtype=bool)
    if cfg.scenario == "silent_feed":
        silent = tables.dept_codes.index(cfg.silent_department)
        keep &= ~((cols["department"] == silent) & (cols["decision"] >= np.datetime64(cfg.scenario_date)))
    kept = np.flatnonzero(keep)
    order = kept[np.lexsort((cols["kind"][kept], cols["decision"][kept], cols["subj"][kept]))]
    n_clean = len(order)

    # dirt: extra copies of clean rows of real subjects, each copy breaking exactly one rule
    copy_src: list[np.ndarray] = []
    copy_rule: list[np.ndarray] = []
    if cfg.dirt:
        real = cols["subj"][order] < n_subjects
        per_rule = max(1, round(cfg.dirt_rate * n_clean / len(RECORD_RULES)))
        kind_sorted = cols["kind"][order]
        eligible = {
            "date_order": ~np.isnat(cols["publicity_end"][order]),
            "severity_invalid": kind_sorted == KINDS.index("admin_penalty"),
            "amount_negative": np.nan_to_num(cols["amount"][order], nan=0.0) > 0,
            "legal_basis_missing": np.isin(kind_sorted, [KINDS.index(k) for k in DOC_REQUIRED]),
        }
        for r, rule in enumerate(RECORD_RULES):
            pool = np.flatnonzero(real & eligible.get(rule, True))
            if len(pool) == 0:
                continue
            pick = np.sort(rng.choice(pool, size=min(per_rule, len(pool)), replace=False))
            copy_src.append(pick)
            copy_rule.append(np.full(len(pick), r))
    src_pos = np.concatenate([np.arange(n_clean), *copy_src])
    rule_of = np.concatenate([np.full(n_clean, -1), *copy_rule])
    final = np.lexsort((rule_of, src_pos))
    src_pos, rule_of = src_pos[final], rule_of[final]
    rows = order[src_pos]  # index into cols of every output row
    n_rows = len(rows)
    is_dup = rule_of == RECORD_RULES.index("duplicate_record_id")

    # record numbers (relative to the chunk's first id): sequential over rows, a duplicate repeats its source's
    record_number = np.cumsum(~is_dup) - 1
    clean_pos_of_row = np.flatnonzero(rule_of == -1)  # row position of each clean sorted record
    record_number[is_dup] = record_number[clean_pos_of_row[src_pos[is_dup]]]
    local_to_clean = np.full(len(cols["subj"]), -1)
    local_to_clean[order] = np.arange(n_clean)
    ref = cols["ref"][rows]
    ref_clean = np.where(ref >= 0, local_to_clean[np.maximum(ref, 0)], -1)
    ref_number = np.where(ref_clean >= 0, record_number[clean_pos_of_row[np.maximum(ref_clean, 0)]], -1)

    # numeric columns, with the dirt that lives in numbers
    amount = cols["amount"][rows].copy()
    neg = rule_of == RECORD_RULES.index("amount_negative")
    amount[neg] = -amount[neg]
    date_cols = {name: cols[key][rows].copy() for name, key in (
        ("decision_date", "decision"), ("end_date", "end_date"), ("publicity_end", "publicity_end"),
        ("verified_on", "verified_on"))}
    future = rule_of == RECORD_RULES.index("date_in_future")
    if future.any():
        shift = (grid.end + 60 + rng.integers(0, 400, int(future.sum()))) - date_cols["decision_date"][future]
        for arr in date_cols.values():
            arr[future] = arr[future] + shift  # shifting every date keeps their order: one rule only

    kind = cols["kind"][rows]
    subkind = cols["subkind"][rows]
    severity = cols["severity"][rows]
    start, count = _description_lookup()
    desc_sev = np.where(kind == KINDS.index("admin_penalty"), severity, 0)
    n_variants = count[kind, subkind, desc_sev]
    if (n_variants == 0).any():
        bad = np.flatnonzero(n_variants == 0)[0]
        raise AssertionError(f"no description for kind {KINDS[kind[bad]]} subkind {SUBKINDS[subkind[bad]]}")
    desc_idx = start[kind, subkind, desc_sev] + (cols["desc_u"][rows] * n_variants).astype(np.int64)
    heads, mids = _document_heads(cfg, tables)
    combo = pa.array(cols["department"][rows].astype(np.int64) * len(KINDS) + kind)
    year = pc.cast(pa.array(date_cols["decision_date"].astype("datetime64[Y]").astype(np.int64) + 1970), pa.string())
    doc_serial = cols["doc_serial"][rows]
    document_no = pc.binary_join_element_wise(
        pc.take(heads, combo), year, pc.take(mids, combo), pc.cast(pa.array(doc_serial), pa.string()), "号", ""
    )
    subj_idx = cols["subj"][rows]
    uscc = pa.array(subj.uscc[subj_idx], type=pa.string())
    verified_code = cols["verified"][rows]
    item = cols["item"][rows]
    record_columns = {
        "uscc": uscc,
        "kind": _vocab(KINDS, kind),
        "subkind": _vocab(SUBKINDS, subkind),
        "severity": _vocab(SEVERITIES, severity),
        "decision_date": _dates(date_cols["decision_date"]),
        "end_date": _dates(date_cols["end_date"]),
        "publicity_end": _dates(date_cols["publicity_end"]),
        "amount": pa.array(amount, from_pandas=True),
        "department": _vocab(tables.dept_codes, cols["department"][rows]),
        "document_no": document_no,
        "verified": pa.array(verified_code == 1, mask=verified_code < 0),
        "verified_on": _dates(date_cols["verified_on"]),
        "exemption": _vocab(EXEMPTIONS, cols["exemption"][rows]),
        "inspection_item": pc.take(pa.array(tables.item_codes), pa.array(item.astype(np.int64), mask=item < 0)),
        "description": pc.take(pa.array(DESCRIPTION_TEXTS), pa.array(desc_idx)),
    }

    # dirt that lives in strings
    record_dirt: list[tuple[int, str, str, str]] = []
    if cfg.dirt:
        overrides: dict[str, tuple[list[int], list]] = {}

        def override(column: str, row: int, value) -> None:
            overrides.setdefault(column, ([], []))
            overrides[column][0].append(row)
            overrides[column][1].append(value)

        uscc_py = subj.uscc
        dirty_rows = np.flatnonzero(rule_of >= 0)
        unknown = make_uscc(np.full(len(dirty_rows), "91"), np.full(len(dirty_rows), int(cfg.city.districts[0].code)),
                            UNKNOWN_SERIAL_BASE + chunk_index * 100_000 + np.arange(len(dirty_rows)))
        for j, row in enumerate(dirty_rows.tolist()):
            rule = RECORD_RULES[rule_of[row]]
            if rule == "uscc_invalid":
                override("uscc", row, corrupt_uscc_check(uscc_py[subj_idx[row]], 1 + int(rng.integers(0, 29))))
            elif rule == "date_invalid":
                y = int(date_cols["decision_date"][row].astype("datetime64[Y]").astype(np.int64)) + 1970
                override("decision_date", row, [f"{y}-02-30", f"{y}-04-31", f"{y}-13-01", f"{y}-06-31"][j % 4])
            elif rule == "date_order":
                before = date_cols["decision_date"][row] - int(rng.integers(1, 200))
                override("publicity_end", row, str(before))
            elif rule == "kind_unknown":
                override("kind", row, UNKNOWN_KINDS[j % len(UNKNOWN_KINDS)])
            elif rule == "severity_invalid":
                override("severity", row, BAD_SEVERITIES[j % len(BAD_SEVERITIES)])
            elif rule == "legal_basis_missing":
                override("document_no", row, None)
            elif rule == "unknown_subject":
                override("uscc", row, unknown[j])
            record_dirt.append((row, int(record_number[row]), RULE_FIELD[rule], rule))
        for column, (idx, values) in overrides.items():
            mask = np.zeros(n_rows, dtype=bool)
            mask[idx] = True
            order_idx = np.argsort(idx)
            record_columns[column] = pc.replace_with_mask(
                record_columns[column], pa.array(mask), pa.array([values[i] for i in order_idx], type=pa.string())
            )
        # every record of a dirty (ghost) subject is an unknown subject once the subject row is quarantined
        ghost_rows = np.flatnonzero((subj_idx >= n_subjects) & (rule_of == -1))
        record_dirt += [(int(r), int(record_number[r]), "uscc", "unknown_subject") for r in ghost_rows]
        record_dirt.sort()
    text_rows = np.flatnonzero(rule_of == RECORD_RULES.index("text_encoding"))
    records = pa.table({c: record_columns[c] for c in RECORD_COLUMNS if c in record_columns})

    subjects, subject_dirt = _subject_table(cfg, subj, n_subjects, rng)
    return ChunkOutput(
        subjects=subjects, records=records, conflicts=conflicts, truth=truth, subject_dirt=subject_dirt,
        record_dirt=record_dirt, text_encoding_rows=text_rows, n_record_ids=int((~is_dup).sum()),
        record_number=record_number, ref_number=ref_number,
    )


def _concat_subjects(a: Subjects, b: Subjects) -> Subjects:
    """Subjects of a followed by those of b."""
    merged = {}
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        merged[name] = x + y if isinstance(x, list) else np.concatenate([x, y])
    return Subjects(**merged)


def _subject_table(cfg: SimulationConfig, subj, n_real: int, rng: np.random.Generator):
    city = cfg.city
    uscc = list(subj.uscc)
    registered = _dates(subj.registered_on)
    dirt = []
    overrides_uscc, overrides_reg = {}, {}
    for j, row in enumerate(range(n_real, len(uscc))):
        rule = SUBJECT_RULES[j % len(SUBJECT_RULES)]
        if rule == "uscc_invalid":
            overrides_uscc[row] = corrupt_uscc_check(uscc[row], 1 + int(rng.integers(0, 29)))
            dirt.append((row, overrides_uscc[row], "uscc", rule))
        else:
            y = int(subj.registered_on[row].astype("datetime64[Y]").astype(np.int64)) + 1970
            overrides_reg[row] = f"{y}-02-30"
            dirt.append((row, uscc[row], "registered_on", rule))
    for row, value in overrides_uscc.items():
        uscc[row] = value
    if overrides_reg:
        mask = np.zeros(len(uscc), dtype=bool)
        mask[list(overrides_reg)] = True
        registered = pc.replace_with_mask(registered, pa.array(mask), pa.array(list(overrides_reg.values())))
    status_date = _dates(subj.status_date)
    table = pa.table({
        "uscc": pa.array(uscc, type=pa.string()),
        "name": pa.array(subj.name, type=pa.string()),
        "legal_form": pa.array(subj.legal_form.tolist(), type=pa.string()),
        "industry": pa.array([SECTIONS[i] for i in subj.industry], type=pa.string()),
        "district_code": pa.array([city.districts[d].code for d in subj.district], type=pa.string()),
        "district_name": pa.array([city.districts[d].name for d in subj.district], type=pa.string()),
        "registered_on": registered,
        "registered_capital": pa.array(subj.registered_capital, type=pa.float64()),
        "employees": pa.array(subj.employees, type=pa.int64()),
        "status": pa.array(subj.status.tolist(), type=pa.string()),
        "status_date": status_date,
        "legal_rep_name": pa.array(subj.legal_rep_name, type=pa.string()),
        "legal_rep_id": pa.array(list(subj.legal_rep_id), type=pa.string()),
    })
    return table, dirt


def _conflicts(rng: np.random.Generator, subj, n_real: int, by_district: list[np.ndarray]) -> pa.Table:
    """Declared conflicts of interest: about 0.5 % of subjects, each with an inspector of its district."""
    k = max(1, round(n_real * 0.005))
    chosen = np.sort(rng.choice(n_real, size=min(k, n_real), replace=False))
    inspectors, usccs, reasons = [], [], []
    reason_pool = ("relative", "former_employee", "shareholding", "business_partner")
    for s in chosen.tolist():
        pool = by_district[subj.district[s]]
        if len(pool) == 0:
            continue
        inspectors.append(pool[int(rng.integers(0, len(pool)))])
        usccs.append(subj.uscc[s])
        reasons.append(reason_pool[int(rng.integers(0, len(reason_pool)))])
    return pa.table({
        "inspector_id": pa.array(inspectors, type=pa.string()),
        "uscc": pa.array(usccs, type=pa.string()),
        "reason": pa.array(reasons, type=pa.string()),
    })


def _truth(cfg: SimulationConfig, grid: TimeGrid, tables: CityTables, subj, rec, n_real: int,
           rng: np.random.Generator, shock_from: int | None) -> pa.Table:
    """True risk per real subject and quarter-end as-of date (see docs/data-contract.md)."""
    cols = rec.columns
    n_months = grid.n_months
    adverse = cols["adverse"] & (cols["subj"] < n_real)
    month = grid.month_of(cols["decision"][adverse])
    hit = np.zeros((n_real, n_months), dtype=bool)
    hit[cols["subj"][adverse], month] = True
    cum_hit = np.concatenate([np.zeros((n_real, 1), dtype=np.int64), np.cumsum(hit, axis=1)], axis=1)
    shocked = subj.industry[:n_real] == SECTIONS.index(cfg.shock_sector)
    month_ends = grid.month_starts[1:n_months + 1] - 1
    quarter_months = [m for m in range(n_months) if (month_ends[m].astype("datetime64[M]").astype(int) % 12) in (2, 5, 8, 11)]
    usccs, as_ofs, p_adv, p_prob, label, label_mask = [], [], [], [], [], []
    for a in quarter_months:
        present = (subj.reg_month[:n_real] <= a) & (subj.exit_month[:n_real] > a)
        idx = np.flatnonzero(present)
        pending = None
        if shock_from is not None and a < shock_from:
            # the scenario's shock starts after the as-of date: unknowable then, so not part of the truth
            starts = (np.arange(a + 1, a + 13) >= shock_from) * LatentBehaviour().shock
            pending = shocked[idx, None] * starts[None, :]
        usccs.append(subj.uscc[idx])
        as_ofs.append(np.full(len(idx), month_ends[a]))
        p_adv.append(future_adverse_probability(rng, subj, idx, a, tables, pending_shock=pending))
        p_prob.append(rec.problem_prob[idx, a])
        observed = a + 12 <= n_months - 1
        if observed:
            label.append((cum_hit[idx, a + 13] - cum_hit[idx, a + 1] > 0).astype(np.int8))
        else:
            label.append(np.zeros(len(idx), dtype=np.int8))
        label_mask.append(np.full(len(idx), not observed))
    return pa.table({
        "uscc": pa.array(np.concatenate(usccs), type=pa.string()),
        "as_of": pa.array(np.concatenate(as_ofs).astype("datetime64[D]")),
        "p_adverse_12m": pa.array(np.concatenate(p_adv)),
        "p_problem_if_inspected": pa.array(np.concatenate(p_prob)),
        "adverse_12m": pa.array(np.concatenate(label), mask=np.concatenate(label_mask), type=pa.int8()),
    })
