"""The record store: staged batches are invisible, publication is one step, a failure at any step
leaves the store as it was, and the incremental current state gives the profiles of the history."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from feat_fixtures import (
    INGESTED_AT,
    code,
    inject_store_failure,
    published_versions,
    record,
    records_frame,
    store_tree,
    subject,
    subjects_frame,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import features.store as store_module
from features.ingest import ingest
from features.profiles import build_profiles, conform_records, conform_subjects
from features.schema import RECORD_COLUMNS, SUBJECT_COLUMNS
from features.store import (
    StoreError,
    add_batch,
    compact,
    discard,
    publish,
    read_latest,
    snapshot,
    stage_batch,
    staged_batches,
    staged_snapshot,
)

AS_OF = date(2026, 6, 30)
ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def write_batch(store: Path, where: Path, *, subjects: list[dict] = (), records: list[dict] = (),
                versions: dict[str, int] | None = None) -> Path:
    """A batch directory in the store's layout, as ingestion writes it (no validation: the store's
    own checks are under test). Versions follow the published ones unless ``versions`` says otherwise."""
    where.mkdir(parents=True)
    con = duckdb.connect()
    for table, rows, key, conform, columns in (
        ("subjects", subjects, "uscc", conform_subjects, SUBJECT_COLUMNS),
        ("records", records, "record_id", conform_records, RECORD_COLUMNS),
    ):
        if not rows:
            continue
        frame = conform(pd.DataFrame(list(rows), columns=list(columns)))
        known = published_versions(store, table).groupby(key)["version"].max() if store.exists() else pd.Series()
        frame["version"] = [
            (versions or {}).get(k, int(known.get(k, 0)) + 1) for k in frame[key]
        ]
        frame["content_hash"] = "x"
        frame["ingested_at"] = pd.Timestamp("2026-11-22")
        frame["batch_id"] = where.name
        frame["source_file"] = f"{table}.csv"
        frame["source_row"] = range(1, len(frame) + 1)
        con.register("f", frame)
        dates = [c for c in frame.columns if c.endswith(("_date", "_on", "_end"))]
        cast = ", ".join(["CAST(version AS INTEGER) AS version", "CAST(ingested_at AS TIMESTAMP) AS ingested_at",
                          *(f"CAST({c} AS DATE) AS {c}" for c in dates)])
        if table == "subjects":
            (where / "subjects").mkdir()
            con.execute(f"COPY (SELECT * REPLACE ({cast}) FROM f) TO '{where / 'subjects' / 'part-0.parquet'}' "
                        "(FORMAT parquet)")
        else:
            con.execute(f"COPY (SELECT * REPLACE ({cast}), year(decision_date) AS decision_year FROM f) "
                        f"TO '{where / 'records'}' (FORMAT parquet, PARTITION_BY (decision_year))")
        con.unregister("f")
    con.close()
    (where / "summary.json").write_text("{}", encoding="utf-8")
    return where


def history_profiles(store: Path, as_of: date = AS_OF) -> pd.DataFrame:
    """Profiles from the current-state SQL run as views over the published history."""
    return build_profiles(dataclasses.replace(snapshot(store), segments=()), as_of=as_of)


def current_rows(store: Path) -> pd.DataFrame:
    """Every visible current record, with its subject's uscc instead of the key (keys differ
    between a compacted base and deltas, nothing else may)."""
    con = duckdb.connect()
    assert store_module.create_current_views(con, store)
    out = con.execute("SELECT * EXCLUDE (subject_key) FROM current_records ORDER BY record_id").df()
    subjects = con.execute("SELECT * EXCLUDE (subject_key) FROM current_subjects ORDER BY uscc").df()
    con.close()
    return pd.concat([out, subjects], keys=["records", "subjects"])


def assert_same_profiles(store: Path, expected: pd.DataFrame, as_of: date = AS_OF) -> None:
    pd.testing.assert_frame_equal(build_profiles(store, as_of=as_of), expected, check_exact=True)


@pytest.fixture
def store(sim_store, tmp_path) -> Path:
    """A copy of the simulated city's store (base current state, repairs, revocations, versions)."""
    out = tmp_path / "store"
    shutil.copytree(sim_store, out)
    return out


def _a_penalty_batch(store: Path, where: Path, amount: float = 5000.0) -> Path:
    """New subject + a serious penalty on it + a penalty on an existing subject."""
    known = read_latest(store, "subjects")["uscc"].iloc[0]
    return write_batch(store, where, subjects=[subject(990_001)], records=[
        record("S-NEW-1", code(990_001), "admin_penalty", "2026-03-01", severity="serious", amount=amount),
        record("S-NEW-2", known, "admin_penalty", "2026-04-01", amount=amount),
    ])


# --------------------------------------------------------------------------------------------
# staged → published, or discarded
# --------------------------------------------------------------------------------------------
def test_a_staged_batch_is_invisible_until_published(store, tmp_path):
    before_profiles, before_tree = build_profiles(store, as_of=AS_OF), store_tree(store)
    before_latest = read_latest(store, "records").sort_values("record_id", ignore_index=True)
    staged = stage_batch(store, _a_penalty_batch(store, tmp_path / "b1"))
    assert [s.batch_id for s in staged_batches(store)] == ["b1"] and (staged.records, staged.subjects) == (2, 1)
    # invisible to every reader: the manifest, the history, the current state, the profiles
    assert "b1" not in snapshot(store).batch_ids
    pd.testing.assert_frame_equal(read_latest(store, "records").sort_values("record_id", ignore_index=True),
                                  before_latest)
    assert_same_profiles(store, before_profiles)
    assert {k: v for k, v in store_tree(store).items() if not k.startswith(("batches/b1/", "current/delta-", "staged/"))} \
        == before_tree
    # a gate can look at the state the batch would make before releasing it
    preview = build_profiles(staged_snapshot(store, "b1"), as_of=AS_OF).set_index("uscc")
    assert preview.loc[code(990_001), "n_serious_penalty_36m"] == 1
    published = publish(store, staged)
    assert "b1" in published.batch_ids and staged_batches(store) == []
    after = build_profiles(store, as_of=AS_OF).set_index("uscc")
    assert after.loc[code(990_001), "n_serious_penalty_36m"] == 1
    assert len(after) == len(before_profiles) + 1
    pd.testing.assert_frame_equal(after.reset_index(), history_profiles(store), check_exact=True)
    pd.testing.assert_frame_equal(after, preview, check_exact=True)


def test_discard_leaves_the_store_as_it_was(store, tmp_path):
    before_profiles, before_tree = build_profiles(store, as_of=AS_OF), store_tree(store)
    stage_batch(store, _a_penalty_batch(store, tmp_path / "b1"))
    discard(store, "b1")
    assert staged_batches(store) == [] and store_tree(store) == before_tree
    assert_same_profiles(store, before_profiles)
    with pytest.raises(StoreError, match="not staged"):
        publish(store, "b1")


def test_a_batch_id_is_staged_or_published_once(store, tmp_path):
    stage_batch(store, _a_penalty_batch(store, tmp_path / "b1"))
    again = write_batch(store, tmp_path / "x" / "b1", subjects=[subject(990_002)])
    with pytest.raises(StoreError, match="already published or staged"):
        stage_batch(store, again)
    assert again.is_dir()  # the caller's directory is left where it was


# --------------------------------------------------------------------------------------------
# a failure at any step leaves the store as it was, and says why
# --------------------------------------------------------------------------------------------
def _expect_unchanged(store: Path, before_profiles: pd.DataFrame, before_tree: dict, batch_dir: Path | None) -> None:
    assert store_tree(store) == before_tree
    assert staged_batches(store) == []
    assert_same_profiles(store, before_profiles)
    if batch_dir is not None:
        assert batch_dir.is_dir()  # handed back to the caller, not lost
    # and the store still takes the next batch
    add_batch(store, write_batch(store, batch_dir.parent / "next" if batch_dir else Path(str(store) + "-next"),
                                 subjects=[subject(990_009)]))
    assert code(990_009) in set(build_profiles(store, as_of=AS_OF)["uscc"])


@pytest.mark.parametrize("amount,reason", [(float("inf"), "amounts must be finite"),
                                           # finite, but no BIGINT holds its cents: the current-state SQL fails
                                           (1e300, "deriving the current state failed")])
def test_an_amount_the_current_state_cannot_hold_is_refused_before_anything_is_visible(store, tmp_path, amount,
                                                                                        reason):
    before_profiles, before_tree = build_profiles(store, as_of=AS_OF), store_tree(store)
    batch = _a_penalty_batch(store, tmp_path / "b1", amount=amount)
    with pytest.raises(StoreError, match=reason):
        add_batch(store, batch)
    _expect_unchanged(store, before_profiles, before_tree, batch)


@pytest.mark.parametrize("step,target", [
    ("stage: writing the delta segment", "_finish_segment"),
    ("stage: syncing the batch", "_fsync_tree"),
    ("stage: writing the staged manifest", "_write_json"),
    ("publish: replacing the manifest", "os.replace"),
])
def test_a_disk_error_at_any_step_leaves_the_store_as_it_was(store, tmp_path, monkeypatch, step, target):
    before_profiles, before_tree = build_profiles(store, as_of=AS_OF), store_tree(store)
    batch = _a_penalty_batch(store, tmp_path / "b1")
    inject_store_failure(monkeypatch, target)
    with pytest.raises(OSError, match="No space left"):
        add_batch(store, batch)
    monkeypatch.undo()
    _expect_unchanged(store, before_profiles, before_tree, batch if step.startswith("stage") else None)


def test_ingesting_a_fine_of_inf_never_wedges_the_store(tmp_path):
    """The outside test's finding: a fine of ``inf`` was committed, writing the current state then
    failed, and every later ingest and profile failed. Now ingestion quarantines the row with the rule
    (and the store would refuse the batch: the test above) and the store keeps working."""
    subjects_frame([subject(1), subject(2)]).to_csv(tmp_path / "subjects.csv", index=False)
    records_frame([record("R1", code(1), "admin_penalty", "2026-02-01")]).to_csv(tmp_path / "r1.csv", index=False)
    st_dir = tmp_path / "store"
    ingest(store=st_dir, subjects=tmp_path / "subjects.csv", records=tmp_path / "r1.csv", ingested_at=INGESTED_AT)
    before = build_profiles(st_dir, as_of=AS_OF)
    records_frame([record("R2", code(2), "admin_penalty", "2026-03-01", amount="inf")]).to_csv(
        tmp_path / "r2.csv", index=False)
    summary = ingest(store=st_dir, records=tmp_path / "r2.csv", ingested_at=INGESTED_AT + timedelta(days=1))
    assert (summary.read, summary.accepted, summary.quarantined) == (1, 0, 1)
    assert pd.read_csv(summary.quarantine_path)["rule"].tolist() == ["amount_out_of_range"]
    pd.testing.assert_frame_equal(build_profiles(st_dir, as_of=AS_OF), before, check_exact=True)
    records_frame([record("R3", code(2), "admin_penalty", "2026-04-01")]).to_csv(tmp_path / "r3.csv", index=False)
    ingest(store=st_dir, records=tmp_path / "r3.csv", ingested_at=INGESTED_AT + timedelta(days=2))
    after = build_profiles(st_dir, as_of=AS_OF).set_index("uscc")
    assert after.loc[code(2), "n_penalty_36m"] == 1
    pd.testing.assert_frame_equal(after.reset_index(), history_profiles(st_dir), check_exact=True)


_CRASH = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    import features.store as s
    store, batch, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    def die(*a, **k):
        os.kill(os.getpid(), signal.SIGKILL)
    real_write_json = s._write_json
    def write_json(path, content):
        real_write_json(path, content)
        if point == "after the staged manifest" and path.parent.name == "staged":
            die()
    s._write_json = write_json
    if point == "after moving the batch in":
        s._derive = die
    elif point == "while writing the delta":
        s._finish_segment = die
    elif point == "in the manifest replace":
        real = os.replace
        def replace(src, dst):
            if Path(dst).name == "manifest.json":
                die()
            real(src, dst)
        s.os.replace = replace
    elif point == "after the manifest replace":
        s._collect_garbage = die
    staged = s.stage_batch(store, batch)
    if point == "between stage and publish":
        die()
    s.publish(store, staged)
""")


@pytest.mark.parametrize("point", ["after moving the batch in", "while writing the delta", "after the staged manifest",
                                   "between stage and publish", "in the manifest replace",
                                   "after the manifest replace"])
def test_a_writer_killed_at_any_point_leaves_a_readable_store(store, tmp_path, point):
    before_profiles = build_profiles(store, as_of=AS_OF)
    before_manifest = (store / "manifest.json").read_bytes()
    batch = _a_penalty_batch(store, tmp_path / "b1")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", _CRASH, str(store), str(batch), point], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    published = point == "after the manifest replace"
    # readers see the manifest before or after, whole, never a half state
    assert ((store / "manifest.json").read_bytes() == before_manifest) is not published
    if published:
        assert build_profiles(store, as_of=AS_OF).set_index("uscc").loc[code(990_001), "n_serious_penalty_36m"] == 1
    else:
        assert_same_profiles(store, before_profiles)
    staged = [s.batch_id for s in staged_batches(store)]
    # a batch staged before the crash is still staged: a later process publishes (or discards) it
    assert staged == (["b1"] if point in ("after the staged manifest", "between stage and publish",
                                          "in the manifest replace") else [])
    if staged:
        publish(store, "b1")
    # the next writer works and clears the leftovers; every state gives the profiles of the history
    add_batch(store, write_batch(store, tmp_path / "b2", subjects=[subject(990_009)]))
    assert not [p for p in (store / "current").iterdir() if p.name.startswith(".tmp")]
    assert set((store / "batches").iterdir()) == {store / "batches" / b for b in snapshot(store).batch_ids}
    pd.testing.assert_frame_equal(build_profiles(store, as_of=AS_OF), history_profiles(store), check_exact=True)


# --------------------------------------------------------------------------------------------
# publication order: a batch staged for a while (a data-quality gate) meets newer batches
# --------------------------------------------------------------------------------------------
def test_a_batch_staged_before_another_was_published_is_rederived_on_top_of_it(store, tmp_path):
    known = read_latest(store, "subjects")["uscc"].iloc[3]
    stage_batch(store, _a_penalty_batch(store, tmp_path / "b1"))
    add_batch(store, write_batch(store, tmp_path / "b2", records=[
        record("S-OTHER", known, "admin_enforcement", "2026-02-01")]))
    publish(store, "b1")
    assert snapshot(store).batch_ids[-2:] == ["b2", "b1"]
    profiles = build_profiles(store, as_of=AS_OF)
    pd.testing.assert_frame_equal(profiles, history_profiles(store), check_exact=True)
    assert code(990_001) in set(profiles["uscc"])


@pytest.mark.parametrize("rebuild", [False, True], ids=["delta", "rebuild"])
def test_a_staged_batch_whose_keys_changed_meanwhile_is_refused_with_the_reason(store, tmp_path, monkeypatch,
                                                                                 rebuild):
    if rebuild:  # every batch rebuilds the base from the history instead of adding a delta
        monkeypatch.setattr(store_module, "MAX_DELTA_SEGMENTS", 0)
    stage_batch(store, _a_penalty_batch(store, tmp_path / "b1"))
    # another feed published version 1 of the same record first
    add_batch(store, write_batch(store, tmp_path / "b2", records=[
        record("S-NEW-2", read_latest(store, "subjects")["uscc"].iloc[0], "admin_penalty", "2026-04-02")]))
    before_profiles, before_tree = build_profiles(store, as_of=AS_OF), store_tree(store)
    with pytest.raises(StoreError, match=r"S-NEW-2.*discard it and ingest its files again"):
        publish(store, "b1")
    assert store_tree(store) == before_tree
    assert_same_profiles(store, before_profiles)
    discard(store, "b1")


# --------------------------------------------------------------------------------------------
# the current state: deltas, compaction, older stores
# --------------------------------------------------------------------------------------------
def test_deltas_are_compacted_into_one_base_past_the_limit(store, tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "MAX_DELTA_SEGMENTS", 2)
    base = snapshot(store).segments[0].name
    for i in range(3):
        add_batch(store, write_batch(store, tmp_path / f"b{i}", subjects=[subject(990_100 + i)]))
    names = [s.name for s in snapshot(store).segments]
    assert len(names) == 1 and names[0] != base  # the third batch rebuilt one base
    add_batch(store, write_batch(store, tmp_path / "b3", subjects=[subject(990_200)]))
    assert not (store / "current" / base).exists()  # kept while the state before named it
    pd.testing.assert_frame_equal(build_profiles(store, as_of=AS_OF), history_profiles(store), check_exact=True)
    compacted = compact(store)
    assert len(compacted.segments) == 1 and compacted.sequence == snapshot(store).sequence


def test_the_previous_state_stays_readable_for_builds_already_under_way(store, tmp_path):
    add_batch(store, write_batch(store, tmp_path / "b1", subjects=[subject(990_001)]))
    first = snapshot(store)  # base + delta
    second = compact(store)  # a new base: a build that took `first` may still be reading it
    pd.testing.assert_frame_equal(build_profiles(first, as_of=AS_OF), build_profiles(second, as_of=AS_OF))
    add_batch(store, write_batch(store, tmp_path / "b2", subjects=[subject(990_002)]))
    # two publications on, the segments only `first` named are gone; `second`'s are kept
    assert not any((store / "current" / s.name).exists() for s in first.segments)
    assert code(990_001) in set(build_profiles(second, as_of=AS_OF)["uscc"])


def test_a_store_written_before_manifests_is_adopted_as_it_was(store, tmp_path):
    expected = build_profiles(store, as_of=AS_OF)
    for name in ("manifest.json", "manifests", "current"):
        path = store / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert not snapshot(store).has_current and snapshot(store).batch_ids  # every batch directory, read as history
    assert_same_profiles(store, expected)
    add_batch(store, write_batch(store, tmp_path / "b1", subjects=[subject(990_001)]))
    snap = snapshot(store)
    assert snap.has_current and len(snap.batch_ids) == 2
    pd.testing.assert_frame_equal(build_profiles(store, as_of=AS_OF), history_profiles(store), check_exact=True)


def test_integer_codes_and_columns_of_a_delta_are_the_base_ones(store, tmp_path):
    add_batch(store, _a_penalty_batch(store, tmp_path / "b1"))
    snap = snapshot(store)
    con = duckdb.connect()
    base, delta = (con.execute(f"DESCRIBE SELECT * FROM read_parquet('{snap.segment_path(s, 'records')}')").fetchall()
                   for s in snap.segments)
    assert base == delta
    keys = con.execute(f"SELECT subject_key FROM read_parquet('{snap.segment_path(snap.segments[1], 'subjects')}')"
                       ).fetchall()
    assert keys == [(snap.segments[0].subjects + 1,)]  # the new subject: the next free key
    con.close()


# --------------------------------------------------------------------------------------------
# property: base + deltas, a compacted base and the history views give the same profiles
# --------------------------------------------------------------------------------------------
KINDS = ["admin_penalty", "admin_enforcement", "list_abnormal_operation", "inspection", "arrears", "complaint",
         "commitment_broken", "commitment_kept", "repair", "revocation"]
DAY0 = date(2021, 1, 1)


@st.composite
def batches_strategy(draw):
    """2–4 batches over 6 subjects: new records, later versions of earlier ones (other content, other
    subject), repairs and revocations of existing, later or unknown records, and subject changes."""
    ids: list[str] = []
    out = []
    for b in range(draw(st.integers(2, 4))):
        subjects = [subject(i, industry=draw(st.sampled_from("CFG")), registered_on="2015-01-01")
                    for i in draw(st.lists(st.integers(1, 6), unique=True, min_size=1 if b == 0 else 0, max_size=3))]
        if b == 0:
            subjects += [subject(i, registered_on="2015-01-01") for i in range(1, 7)
                         if code(i) not in {s["uscc"] for s in subjects}]
        records = []
        for _ in range(draw(st.integers(1 if b == 0 else 0, 6))):
            kind = draw(st.sampled_from(KINDS))
            reuse = ids and draw(st.booleans()) and draw(st.booleans())
            rid = draw(st.sampled_from(ids)) if reuse else f"R{len(ids) + len(records)}-{b}"
            if rid in {r["record_id"] for r in records}:
                continue
            extra = {}
            if kind in ("repair", "revocation"):
                extra["ref_record_id"] = draw(st.sampled_from([*ids, "R-NOWHERE"])) if ids else "R-NOWHERE"
            if kind == "admin_penalty":
                extra["severity"] = draw(st.sampled_from(["minor", "general", "serious"]))
            records.append(record(rid, code(draw(st.integers(1, 6))), kind,
                                  DAY0 + timedelta(days=draw(st.integers(0, 2000))), **extra))
        ids += [r["record_id"] for r in records if r["record_id"] not in ids]
        out.append((subjects, records))
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(batches=batches_strategy(), as_of=st.sampled_from([date(2023, 6, 30), date(2026, 6, 30)]))
def test_base_plus_deltas_compacted_and_history_give_the_same_profiles(tmp_path_factory, batches, as_of):
    tmp = tmp_path_factory.mktemp("prop")
    st_dir = tmp / "store"
    for i, (subjects, records) in enumerate(batches):
        add_batch(st_dir, write_batch(st_dir, tmp / f"b{i}", subjects=subjects, records=records))
    snap = snapshot(st_dir)
    assert snap.has_current and len(snap.segments) >= 1
    incremental, rows = build_profiles(st_dir, as_of=as_of), current_rows(st_dir)
    pd.testing.assert_frame_equal(incremental, history_profiles(st_dir, as_of), check_exact=True)
    compact(st_dir)
    assert len(snapshot(st_dir).segments) == 1
    pd.testing.assert_frame_equal(build_profiles(st_dir, as_of=as_of), incremental, check_exact=True)
    pd.testing.assert_frame_equal(current_rows(st_dir), rows, check_exact=True)


def test_the_current_state_rows_are_the_same_after_deltas_and_after_compaction(store, tmp_path):
    """Not only the profiles: every current row (repair and revocation dates, codes, cents) but the
    subject keys, through a delta that re-versions a record, moves it to another subject, repairs and
    revokes existing records and adds a repair of a record that arrives later."""
    latest = read_latest(store, "records")
    penalties = latest[latest["kind"] == "admin_penalty"].head(3)
    others = read_latest(store, "subjects")["uscc"]
    moved = {**penalties.iloc[0][list(RECORD_COLUMNS)].to_dict(), "uscc": others.iloc[-1], "amount": 1.5}
    moved["decision_date"] = str(moved["decision_date"])[:10]
    add_batch(store, write_batch(store, tmp_path / "b1", records=[
        moved,
        record("REP-1", penalties.iloc[1]["uscc"], "repair", "2026-05-01", ref_record_id=penalties.iloc[1]["record_id"]),
        record("REV-1", penalties.iloc[2]["uscc"], "revocation", "2026-05-02",
               ref_record_id=penalties.iloc[2]["record_id"]),
        record("REP-LATER", others.iloc[0], "repair", "2026-05-03", ref_record_id="P-LATER"),
    ]))
    add_batch(store, write_batch(store, tmp_path / "b2", records=[
        record("P-LATER", others.iloc[0], "admin_penalty", "2026-01-03")]))
    incremental = current_rows(store)
    assert incremental.loc["records"].set_index("record_id").loc["P-LATER", "repaired_on"] == pd.Timestamp("2026-05-03")
    # the subjects whose rows changed got new keys: their old rows stay, under keys no subject has
    con = duckdb.connect()
    store_module.create_current_views(con, store, exact=False)
    everything = con.execute("SELECT count(*) FROM current_records").fetchone()[0]
    con.close()
    assert everything > len(incremental.loc["records"])
    compact(store)
    pd.testing.assert_frame_equal(incremental, current_rows(store), check_exact=True)


def test_profiles_are_the_same_from_every_reader_of_one_published_state(store):
    snap = snapshot(store)
    pd.testing.assert_frame_equal(build_profiles(snap, as_of=AS_OF), build_profiles(store, as_of=AS_OF))
