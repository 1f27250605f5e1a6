"""Property: corrupt a valid file at random and nothing is lost; the store stays readable.

Hypothesis picks rows and damages them (unbalanced or stray quotes, extra or missing fields, bytes
that are not text in the file's encoding, non-finite or huge numbers, control characters, blank
lines, legitimate multi-line fields) in UTF-8, UTF-8 with BOM or GB18030. Whatever it does:
read = accepted + quarantined, every untouched row is accepted, every damaged row is accounted for
(accepted or quarantined with a rule), and the store still profiles and takes the next batch.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from feat_fixtures import INGESTED_AT, code, record, records_frame, subject, subjects_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.ingest import ingest
from features.profiles import build_profiles
from features.schema import RULES
from features.store import read_latest

N_ROWS = 40
DAMAGES = ("open_quote", "stray_quote", "quote_then_text", "extra_field", "missing_field", "bad_bytes", "inf",
           "huge", "control", "blank_line", "multi_line")
ENCODINGS = ("utf-8", "utf-8-sig", "gb18030")


def _valid_lines() -> list[str]:
    rows = [record(f"R{i:03d}", code(1 + i % 4), "admin_penalty" if i % 2 else "admin_reward",
                   f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}", description=f"正常记录{i}") for i in range(N_ROWS)]
    return records_frame(rows).to_csv(index=False, lineterminator="\n").rstrip("\n").split("\n")


def _damage(line: str, how: str) -> str:
    head, last = line.rsplit(",", 1)  # the last field is the description
    fields = line.split(",")
    if how == "open_quote":
        return f'{head},"引号没有闭合{last}'
    if how == "stray_quote":
        return f'{head},销售"三无产品{last}'
    if how == "quote_then_text":
        return f'{head},"被引用"之后还有字{last}'
    if how == "extra_field":
        return line + ",多余"
    if how == "missing_field":
        return ",".join(fields[:-2])
    if how == "bad_bytes":
        return f"{head},\udcff\udcfe坏字节{last}"  # written as the raw bytes FF FE (surrogateescape)
    if how in ("inf", "huge"):
        fields[8] = "inf" if how == "inf" else "1e400"
        return ",".join(fields)
    if how == "control":
        return f"{head},含\x07响铃{last}"
    if how == "blank_line":
        return line + "\n   "
    return f'{head},"第一行\n第二行，{last}"'  # multi_line: a legitimate quoted field over two lines


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(damages=st.dictionaries(st.integers(1, N_ROWS), st.sampled_from(DAMAGES), max_size=4),
       encoding=st.sampled_from(ENCODINGS))
def test_random_damage_loses_nothing_and_never_wedges_the_store(tmp_path_factory, damages, encoding):
    tmp = tmp_path_factory.mktemp("damage")
    subjects_frame([subject(i) for i in range(1, 5)]).to_csv(tmp / "subjects.csv", index=False)
    lines = _valid_lines()
    for i, how in damages.items():
        lines[i] = _damage(lines[i], how)
    text = "\n".join(lines) + "\n"
    (tmp / "records.csv").write_bytes(text.encode(encoding, "surrogateescape"))
    store = tmp / "store"
    summary = ingest(store=store, subjects=tmp / "subjects.csv", records=tmp / "records.csv",
                     ingested_at=INGESTED_AT)
    f = summary.files[-1]
    assert f.read == f.accepted + f.quarantined
    assert f.read >= N_ROWS  # a damaged row is never merged into another one
    stored = set(read_latest(store, "records")["record_id"])
    untouched = {f"R{i - 1:03d}" for i in range(1, N_ROWS + 1) if i not in damages}
    assert untouched <= stored, sorted(untouched - stored)
    q = pd.read_csv(summary.quarantine_path, dtype={"row": "int64", "line": "int64"})
    q = q[q["file"] == "records.csv"]
    assert set(q["rule"]) <= set(RULES) and q["message"].notna().all() and q["message_en"].notna().all()
    # every damaged row is accepted or quarantined at (or, re-split, just after) its own line
    for i, how in damages.items():
        rid = f"R{i - 1:03d}"
        assert rid in stored or (q["line"] >= i + 1).any(), (how, rid)
    for how in ("inf", "huge", "control", "extra_field", "missing_field", "open_quote", "quote_then_text"):
        for i in (k for k, v in damages.items() if v == how):
            assert f"R{i - 1:03d}" not in stored, how
    # the store is not wedged: it profiles, and takes the next batch
    assert len(build_profiles(store, as_of=date(2026, 6, 30))) == 4
    records_frame([record("NEXT", code(1), "admin_reward", "2025-05-01")]).to_csv(tmp / "next.csv", index=False)
    assert ingest(store=store, records=tmp / "next.csv", ingested_at=INGESTED_AT).files[0].accepted == 1
