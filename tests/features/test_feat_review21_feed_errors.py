"""Outside review of issue 21 (reviewer 21, written without reading the gate rules): feed errors a
credit office's 双公示 exports really make, which the ingest path published without a word.

Each test ingests a small city's clean history month by month through the CLI's own path
(`serving.workflows.ingest.ingest_files`, gates on), then one bad July batch, and states what an
office needs: the error is held, warned (a finding naming the feed) or its rows quarantined, never
published silently. The clean July batch of the same city passes without a hold (the control).
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feat_fixtures import code, record, records_frame, subject, subjects_frame

pytestmark = pytest.mark.xdist_group("feat_review21")

N_SUBJECTS = 400
# department/kind → records per month (small feeds, as a district-level office sends them)
FEEDS = {
    ("samr", "admin_penalty"): 60,
    ("emergency", "admin_check"): 30,
    ("fire", "admin_check"): 26,
    ("tax", "arrears"): 40,
    ("utilities", "arrears"): 40,
}
_DOC_PREFIX = {"samr": "宁市监罚", "emergency": "宁应急检", "fire": "宁消检"}
# emergency/admin_check as the review's simulated city had it, 2025-01 … 2026-07: a small, uneven feed
# (2025-07 … 2026-06: median 21.5, max 32)
_EMERGENCY_CHECKS = [18, 25, 14, 22, 19, 27, 20, 12, 17, 21, 22, 10, 32, 23, 21, 30, 31, 23, 28]


def _month_records(year: int, month: int, rng: np.random.Generator, start_id: int) -> pd.DataFrame:
    """One month of clean records of every feed."""
    rows = []
    rid = start_id
    days = pd.Period(f"{year}-{month:02d}").days_in_month
    for (dept, kind), n in FEEDS.items():
        if (dept, kind) == ("emergency", "admin_check"):
            n = _EMERGENCY_CHECKS[(year - 2025) * 12 + month - 1]
        for _ in range(n):
            rid += 1
            uscc = code(int(rng.integers(N_SUBJECTS)))
            day = date(year, month, int(rng.integers(1, days + 1)))
            extra = {"department": dept}
            if kind == "admin_penalty":
                amount = float(round(np.exp(rng.normal(np.log(5000), 1.0)), -1))
                severity = "minor" if amount <= 3000 else "serious" if amount >= 100_000 else "general"
                extra.update(amount=amount, severity=severity, document_no=f"宁市监罚〔{year}〕{rid}号")
            elif kind == "arrears":
                extra.update(
                    subkind="tax" if dept == "tax" else "water",
                    amount=float(round(np.exp(rng.normal(np.log(2000), 0.8)), 2)),
                )
            else:
                extra.update(document_no=f"{_DOC_PREFIX[dept]}〔{year}〕{rid}号")
            rows.append(record(f"R{rid:012d}", uscc, kind, day, **extra))
    return records_frame(rows)


def _history_months():
    months = [(2025, m) for m in range(1, 13)] + [(2026, m) for m in range(1, 7)]
    return months


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """A store holding 2025 (one first load) and 2026-01…06 (monthly batches), and July's clean files."""
    from serving.workflows.ingest import ingest_files

    root = tmp_path_factory.mktemp("review21")
    rng = np.random.default_rng(21)
    subjects = subjects_frame([subject(i) for i in range(N_SUBJECTS)])
    store = root / "store"
    frames = {}
    next_id = 0
    for y, m in _history_months():
        frames[(y, m)] = _month_records(y, m, rng, next_id)
        next_id += 10_000
    first = pd.concat([frames[(2025, m)] for m in range(1, 13)])
    sub_path, rec_path = root / "subjects.csv", root / "hist.csv"
    subjects.to_csv(sub_path, index=False)
    first.to_csv(rec_path, index=False)
    s = ingest_files(
        store=store, subjects=sub_path, records=[rec_path], ingested_at=datetime(2026, 1, 1, 2, tzinfo=UTC)
    )
    assert s.status == "published"
    for m in range(1, 7):
        path = root / f"2026-{m:02d}.csv"
        frames[(2026, m)].to_csv(path, index=False)
        s = ingest_files(
            store=store, subjects=None, records=[path], ingested_at=datetime(2026, m + 1, 1, 2, tzinfo=UTC)
        )
        assert s.status == "published", s.findings
    july = _month_records(2026, 7, rng, next_id)
    history = pd.concat(frames.values())
    return {"store": store, "subjects": subjects, "july": july, "history": history}


def _ingest_july(city, tmp_path: Path, records: pd.DataFrame, subjects: pd.DataFrame | None = None):
    from serving.workflows.ingest import ingest_files

    store = tmp_path / "store"
    shutil.copytree(city["store"], store)
    rec_path = tmp_path / "july.csv"
    records.to_csv(rec_path, index=False)
    sub_path = None
    if subjects is not None:
        sub_path = tmp_path / "subjects_july.csv"
        subjects.to_csv(sub_path, index=False)
    return ingest_files(
        store=store, subjects=sub_path, records=[rec_path], ingested_at=datetime(2026, 8, 1, 2, tzinfo=UTC)
    )


def _feeds_named(summary) -> set[str]:
    return {f["feed"] for f in summary.findings}


def test_clean_july_is_not_held(city, tmp_path):
    """The control: the same city's clean July passes (so what follows is the error, not the city)."""
    s = _ingest_july(city, tmp_path, city["july"])
    assert s.status == "published"
    assert not [f for f in s.findings if f["action"] == "hold"]


def test_fines_all_zero_are_not_published_silently(city, tmp_path):
    """An export that lost the fine column's values (every 罚款金额 0): fines_36m of every fined subject
    drops; seen in the review's city as 33 subjects' profiles changed with no finding."""
    july = city["july"].copy()
    pen = july.kind == "admin_penalty"
    july.loc[pen, "amount"] = 0.0
    s = _ingest_july(city, tmp_path, july)
    assert "samr/admin_penalty" in _feeds_named(s), s.findings


def test_every_decision_dated_on_the_export_day_is_not_published_silently(city, tmp_path):
    """The export's own date written into 处罚决定日期 for a whole month's penalties (all on 07-31):
    publicity windows and recency features shift; passed with no finding in the review's city."""
    july = city["july"].copy()
    pen = july.kind == "admin_penalty"
    july.loc[pen, "decision_date"] = "2026-07-31"
    s = _ingest_july(city, tmp_path, july)
    assert "samr/admin_penalty" in _feeds_named(s), s.findings


def test_a_month_labelled_with_another_department_is_not_published_silently(city, tmp_path):
    """Fire's month sent under the emergency bureau's code (a shared export template): fire's feed
    vanishes, emergency's more than doubles, every document number still says 宁消检. Caught here
    (emergency/admin_check volume_surge); in the review's simulated city the same relabelling said
    nothing (a 2.5× month of that feed stayed under the surge allowance there, and a department
    absent from a batch is not silence): a guard, passing today."""
    july = city["july"].copy()
    fire = july.department == "fire"
    july.loc[fire, "department"] = "emergency"
    s = _ingest_july(city, tmp_path, july)
    named = _feeds_named(s)
    assert any(f.startswith(("emergency/", "fire/")) for f in named), s.findings


def test_a_district_code_table_change_is_not_published_silently(city, tmp_path):
    """The registry re-sends every subject after a code-table change: a quarter of them move district,
    some to a code that is no district of the city. District is a profile feature and the draw's
    stratum; the review's city saw 459 subjects' district change with no finding."""
    subjects = city["subjects"].copy()
    moved = subjects.index[: N_SUBJECTS // 4]
    subjects.loc[moved[::2], "district_code"] = "320199"
    subjects.loc[moved[1::2], "district_code"] = "320104"
    s = _ingest_july(city, tmp_path, city["july"], subjects=subjects)
    assert s.findings or s.quarantined, "a quarter of the registry changed district without a finding"


def test_a_registry_marking_every_subject_revoked_is_held(city, tmp_path):
    """A registry export bug: every subject's status 吊销 as of the export day. The profile of the
    review's city fell from 2,303 subjects to 74, published with no finding."""
    subjects = city["subjects"].copy()
    subjects["status"] = "revoked"
    subjects["status_date"] = "2026-07-31"
    s = _ingest_july(city, tmp_path, city["july"], subjects=subjects)
    assert s.status == "held", s.findings


def test_revocations_pointing_at_another_subjects_record_are_not_accepted_silently(city, tmp_path):
    """信用修复/撤销 rows whose ref_record_id was shifted onto other subjects' penalties: each revokes a
    penalty of a subject that asked for nothing (35 subjects' profiles changed in the review's city)."""
    hist = city["history"]
    pens = hist[hist.kind == "admin_penalty"].head(10)
    rows = []
    for i, (_, p) in enumerate(pens.iterrows()):
        other = code((int(p.uscc[-8:-1]) + 1) % N_SUBJECTS)  # a different subject than the record's
        assert other != p.uscc
        rows.append(
            record(
                f"V{i:012d}",
                other,
                "revocation",
                "2026-07-15",
                subkind="department",
                ref_record_id=p.record_id,
                department="samr",
            )
        )
    july = pd.concat([city["july"], records_frame(rows)], ignore_index=True)
    s = _ingest_july(city, tmp_path, july)
    assert s.quarantined >= len(rows) or s.findings, (
        "revocations of other subjects' records accepted silently"
    )


def test_excel_serial_dates_for_a_whole_department_are_reported(city, tmp_path):
    """A department's export writes dates as Excel serials (46204…): every row is quarantined
    date_invalid, rightly, but the batch then publishes the department as silent for the month
    without a finding (the decimal-comma case, quarantined under value_invalid, did warn)."""
    july = city["july"].copy()
    samr = july.department == "samr"
    july.loc[samr, "decision_date"] = [
        str((pd.Timestamp(d) - pd.Timestamp("1899-12-30")).days) for d in july.loc[samr, "decision_date"]
    ]
    s = _ingest_july(city, tmp_path, july)
    assert s.quarantined == int(samr.sum())
    assert "samr/admin_penalty" in _feeds_named(s), s.findings


def test_a_day_month_swap_in_one_feed_is_not_published_silently(city, tmp_path):
    """Dates read month-first where the office wrote day-first: every date with a day ≤ 12 swaps
    (07-05 → 05-07), the rest stay right. Some land in the future and are quarantined; the rest
    move months back, published without a finding."""
    july = city["july"].copy()
    feed = (july.department == "utilities") & (july.decision_date.str[8:].astype(int) <= 12)
    july.loc[feed, "decision_date"] = [f"{d[:4]}-{d[8:]}-{d[5:7]}" for d in july.loc[feed, "decision_date"]]
    s = _ingest_july(city, tmp_path, july)
    assert "utilities/arrears" in _feeds_named(s), s.findings


def test_a_later_batch_loses_no_record_to_a_batch_still_held(city, tmp_path):
    """July is held (its fines sent in 分, ×100) and holds a subject registered in July; August, sent
    while July waits, has that subject's first penalty. August publishes with the record quarantined
    unknown_subject (no finding says why), and releasing July does not bring it back: the store then
    differs from ingesting July and August in order (11 records of the review's city were lost so)."""
    from features.gates import release
    from features.store import read_latest
    from serving.workflows.ingest import ingest_files

    july = city["july"].copy()
    pen = july.kind == "admin_penalty"
    july.loc[pen, "amount"] = july.loc[pen, "amount"] * 100
    newcomer = subject(N_SUBJECTS + 1, registered_on="2026-07-10")
    held = _ingest_july(city, tmp_path, july, subjects=subjects_frame([newcomer]))
    assert held.status == "held", held.findings
    store = tmp_path / "store"
    august = records_frame(
        [
            record(
                "A000000000001",
                newcomer["uscc"],
                "admin_penalty",
                "2026-08-12",
                document_no="宁市监罚〔2026〕1号",
            )
        ]
    )
    aug_path = tmp_path / "august.csv"
    august.to_csv(aug_path, index=False)
    ingest_files(
        store=store, subjects=None, records=[aug_path], ingested_at=datetime(2026, 9, 1, 2, tzinfo=UTC)
    )
    release(store, held.batch_id, by="reviewer21", reason="the 分 were checked with the office")
    current = read_latest(store, "records")
    assert "A000000000001" in set(current.record_id), "August's record of July's new subject was lost"



def test_a_day_month_swap_in_a_small_feed_is_held(city, tmp_path):
    """The same month-first parse in a small feed (last review: small feeds escaped the partial swap
    rule). Of fire's 20-odd July checks a handful have a day 1–6 (they land in January–June on the
    7th, published) and a handful a day 8–12 (they land in August–December, quarantined as future):
    here three and three, each alone below the rules' counts; both halves are the same error's rows."""
    july = city["july"].copy()
    feed = july.index[(july.department == "fire") & (july.kind == "admin_check")]
    days = [2, 4, 6, 8, 10, 12] + [13 + i % 18 for i in range(len(feed) - 6)]
    july.loc[feed, "decision_date"] = [f"2026-07-{d:02d}" for d in days]
    swap = feed[:6]
    july.loc[swap, "decision_date"] = [f"{d[:4]}-{d[8:]}-{d[5:7]}" for d in july.loc[swap, "decision_date"]]
    s = _ingest_july(city, tmp_path, july)
    assert s.status == "held", s.findings
    assert ("fire/admin_check", "date_swap") in {(f["feed"], f["rule"]) for f in s.findings}, s.findings


def _rules_named(summary) -> set[tuple[str, str]]:
    return {(f["feed"], f["rule"]) for f in summary.findings}


def test_a_file_cut_in_the_middle_is_not_published_silently(city, tmp_path):
    """An export sorted by date whose transfer stopped half way: July's records end on the 15th, every
    feed at about half its volume (above any silence threshold); the second half of the month is absent
    and the profiles would say July was quiet."""
    july = city["july"].sort_values("decision_date")
    s = _ingest_july(city, tmp_path, july[july.decision_date <= "2026-07-15"])
    assert ("*", "volume_cut") in _rules_named(s), s.findings


def test_one_feed_cut_short_is_named(city, tmp_path):
    """One department's file cut: samr's penalties stop on the 12th, the other feeds are whole."""
    july = city["july"]
    cut = (july.department == "samr") & (july.decision_date > "2026-07-12")
    s = _ingest_july(city, tmp_path, july[~cut])
    assert ("samr/admin_penalty", "volume_cut") in _rules_named(s), s.findings
