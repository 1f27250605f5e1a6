"""Columns of the input files (docs/data-contract.md) and the quarantine rules, in one place."""

from __future__ import annotations

SUBJECT_COLUMNS: tuple[str, ...] = (
    "uscc", "name", "legal_form", "industry", "district_code", "district_name", "registered_on",
    "registered_capital", "employees", "status", "status_date", "legal_rep_name", "legal_rep_id",
)
RECORD_COLUMNS: tuple[str, ...] = (
    "record_id", "uscc", "kind", "subkind", "severity", "decision_date", "end_date", "publicity_end",
    "amount", "department", "document_no", "ref_record_id", "verified", "verified_on", "exemption",
    "inspection_item", "description",
)
SUBJECT_DATE_COLUMNS = ("registered_on", "status_date")
RECORD_DATE_COLUMNS = ("decision_date", "end_date", "publicity_end", "verified_on")
SUBJECT_REQUIRED = ("uscc", "name", "industry", "registered_on")
RECORD_REQUIRED = ("record_id", "uscc", "kind", "decision_date")

# Columns the store adds to every stored row.
STORE_COLUMNS = ("version", "content_hash", "ingested_at", "batch_id", "source_file", "source_row")

# Quarantine rules in priority order: a row breaking several is reported under the first.
# The first eleven are the contract's dirt table (docs/data-contract.md); the last two are this
# package's extensions for inputs the contract's dirt never produces.
# Why this order: undecodable text makes every other field suspect; a repeated id is rejected
# before its content is judged (the first occurrence carries the record); identity (uscc) comes
# before what the row says; then catalogue, dates, amounts, legal basis.
RULES: tuple[str, ...] = (
    "text_encoding",
    "duplicate_record_id",
    "uscc_invalid",
    "unknown_subject",
    "kind_unknown",
    "severity_invalid",
    "date_invalid",
    "date_in_future",
    "date_order",
    "amount_negative",
    "legal_basis_missing",
    "field_missing",
    "value_invalid",
)
CONTRACT_RULES = frozenset(RULES[:11])

QUARANTINE_COLUMNS = ("file", "row", "key", "field", "value", "rule", "message")

LEGAL_FORMS = frozenset(
    {"llc", "joint_stock", "sole_proprietorship", "partnership", "individual_business", "farmer_coop",
     "branch", "social_org"}
)
SUBJECT_STATUSES = frozenset({"active", "deregistered", "revoked"})
