"""The checker's walk over stored rows (``querylog_check._walk``, ``querylog_macs``): its MAC of a
row read as a plain tuple is ``querylog.entry_mac`` of the entry (prepared HMAC pads, cached
canonical pieces, the time as stored); and on a real database, any single edit, deletion,
insertion or swap of entries in a random chain is found by the full check and, after the latest
checkpoint, by the incremental one."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import os
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, delete, insert
from sqlalchemy.orm import Session
from test_sec_querylog_batch import KEY, _entries

from serving.db.tables import QueryLogEntry, QueryLogHead
from serving.services import querylog
from serving.services.checkpoints import Checkpoint, ReadCheckpoint
from serving.services.querylog_check import _walk, check_log
from serving.services.querylog_macs import ROW_COLUMNS, MacPads

GENESIS = "0" * 64


@given(key=st.binary(max_size=200), message=st.binary(max_size=300))
@settings(max_examples=200, derandomize=True)
def test_the_prepared_pads_are_hmac_sha256(key, message):
    assert MacPads(key).hexdigest(message) == hmac.new(key, message, hashlib.sha256).hexdigest()


def _sqlite_text(at: dt.datetime) -> str:
    """``at`` as SQLite stores it (SQLAlchemy's format of the UTC time the column type binds)."""
    u = querylog.stored_time(at)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d} {u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}"


def _chain(entries: list[querylog.LoggedRead], key: str = KEY, keyed_from: int = 1) -> list[querylog.LoggedRead]:
    prev = GENESIS
    for n, entry in enumerate(entries, 1):
        entry.seq, entry.prev_hash = n, prev
        entry.entry_hash = prev = (querylog.entry_mac(key, prev, entry) if n >= keyed_from
                                   else querylog.chain_hash(prev, entry))
    return entries


def _row(entry: querylog.LoggedRead, at: object = None) -> tuple:
    values = dataclasses.asdict(entry)
    values["at"] = _sqlite_text(entry.at) if at is None else at
    return tuple(values[c] for c in ROW_COLUMNS)


@pytest.mark.parametrize("seed", range(4))
def test_the_walks_mac_is_the_entry_mac_of_any_row(seed):
    rng = random.Random(seed)  # noqa: S311 - seeded test data, not a secret
    entries = _chain(_entries(rng, 120), keyed_from=rng.randint(1, 40))
    keyed_from = next(n for n, e in enumerate(entries, 1) if e.entry_hash == querylog.entry_mac(KEY, e.prev_hash, e))
    # the time as stored, or in a form the fast path leaves to the definition (an offset, no
    # microseconds, a datetime as PostgreSQL's driver would give without the text conversion)
    forms = [None, lambda e: str(e.at), lambda e: e.at, lambda e: e.at.isoformat()]
    rows = [_row(e, None if (f := rng.choice(forms)) is None else f(e)) for e in entries]
    walked = _walk([rows[:50], rows[50:]], start=1, keyed_from=keyed_from, mac_key=KEY)
    assert walked.breaks == [] and walked.rewritten == 0, walked.breaks
    assert (walked.count, walked.last_seq, walked.prev) == (120, 120, entries[-1].entry_hash)
    assert walked.legacy == keyed_from - 1


def test_odd_rows_take_the_definition_or_fail_their_mac():
    entry = _chain([querylog.LoggedRead(at=dt.datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), actor="a",
                                        actor_role="r", actor_kind="person", uscc="X", purpose="p", endpoint="e",
                                        outcome="allowed", personal_info_unmasked=True)])[0]
    row = _row(entry)
    assert row[ROW_COLUMNS.index("at")].startswith("0999")  # stored padded, canonical unpadded
    assert _walk([[row]], start=1, keyed_from=1, mac_key=KEY).rewritten == 0
    as_int = (*row[:ROW_COLUMNS.index("personal_info_unmasked")], 1, *row[ROW_COLUMNS.index("purpose"):])
    assert _walk([[as_int]], start=1, keyed_from=1, mac_key=KEY).rewritten == 0  # SQLite's 1
    for column, value in [("actor", None), ("uscc", 7), ("at", None), ("at", "yesterday"), ("at", 3)]:
        i = ROW_COLUMNS.index(column)
        odd = (*row[:i], value, *row[i + 1:])
        walked = _walk([[odd]], start=1, keyed_from=1, mac_key=KEY)
        assert walked.rewritten == 1 and [b.kind for b in walked.breaks] == ["rewritten_row"], (column, value)


# --- tampering a real database ------------------------------------------------------------------

@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """SQLite, or the throw-away PostgreSQL database of ``TEST_DATABASE_URL`` (its log is emptied)."""
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path_factory.mktemp('walk') / 'log.db'}"
    made = create_engine(url)
    QueryLogEntry.__table__.create(made, checkfirst=True)
    QueryLogHead.__table__.create(made, checkfirst=True)
    yield made
    made.dispose()


def _stored_entries(engine, rng: random.Random, n: int) -> list[querylog.LoggedRead]:
    """``_entries`` as the database can hold them (PostgreSQL: no NUL, codes of at most 18 characters)."""
    entries = _entries(rng, n)
    if engine.dialect.name == "postgresql":
        entries = [dataclasses.replace(e, **{f: getattr(e, f).replace("\x00", "")[:18 if f == "uscc" else 80]
                                             for f in ("actor", "uscc", "purpose")}) for e in entries]
    return entries


_TEXT_COLUMNS = ("actor", "actor_role", "actor_kind", "uscc", "purpose", "endpoint", "outcome", "prev_hash",
                 "entry_hash")


def _store(engine, rows: list[dict], head: tuple[int, str]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(QueryLogEntry.__table__))
        conn.execute(delete(QueryLogHead.__table__))
        if rows:
            conn.execute(insert(QueryLogEntry.__table__), rows)
        conn.execute(insert(QueryLogHead.__table__), [{"id": 1, "seq": head[0], "last_hash": head[1],
                                                        "keyed_from": 1}])


def _tamper(rows: list[dict], how: str, i: int, j: int, rng: random.Random) -> list[dict]:
    """One edit of ``rows`` (dicts of columns), at entry index ``i`` (and ``j`` for a swap)."""
    rows = [dict(r) for r in rows]
    if how == "edit":
        column = rng.choice([*_TEXT_COLUMNS, "at", "seq", "personal_info_unmasked"])
        row = rows[i]
        if column == "at":
            row["at"] += dt.timedelta(microseconds=rng.choice([1, -1, 10**6, 3600 * 10**6]))
        elif column == "seq":
            row["seq"] = max(r["seq"] for r in rows) + 1 if i == len(rows) - 1 else row["seq"]
            if i < len(rows) - 1:  # a seq in the middle cannot collide with the next one: swap numbers
                rows[i]["seq"], rows[i + 1]["seq"] = rows[i + 1]["seq"], rows[i]["seq"]
        elif column == "personal_info_unmasked":
            row[column] = not row[column]
        else:
            text = row[column]
            k = rng.randrange(len(text)) if text else 0
            new = rng.choice([c for c in "0af查\"\\x" if c != text[k:k + 1]])
            row[column] = text[:k] + new + text[k + 1:]
    elif how == "delete":
        del rows[i]
    elif how == "insert":
        extra = dict(rows[i], uscc="INSERTED", seq=rows[i]["seq"] + 1)
        for r in rows[i + 1:]:
            r["seq"] += 1
        rows.insert(i + 1, extra)
    elif how == "swap":  # two entries' contents change places (their numbers stay)
        seq_i, seq_j = rows[i]["seq"], rows[j]["seq"]
        rows[i], rows[j] = dict(rows[j], seq=seq_i), dict(rows[i], seq=seq_j)
    return rows


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 24), how=st.sampled_from(["edit", "delete", "insert", "swap"]),
       data=st.data())
@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_any_single_tampering_is_found_by_the_full_and_the_incremental_check(engine, seed, n, how, data):
    rng = random.Random(seed)  # noqa: S311 - seeded test data, not a secret
    entries = _chain(_stored_entries(engine, rng, n))
    rows = [dataclasses.asdict(e) for e in entries]
    anchor = data.draw(st.integers(1, n), label="checkpoint at")
    checkpoint = [ReadCheckpoint(1, Checkpoint(seq=anchor, mac=entries[anchor - 1].entry_hash, at="t", keyed_from=1))]
    head = (n, entries[-1].entry_hash)
    _store(engine, rows, head)
    with Session(engine) as session:
        assert check_log(session, KEY, checkpoint).ok
        assert check_log(session, KEY, checkpoint, incremental=True).ok
    # the incremental check vouches for entries from the checkpoint on: tamper there
    i = data.draw(st.integers(anchor - 1, n - 1), label="at index")
    j = data.draw(st.integers(anchor - 1, n - 1).filter(lambda x: x != i), label="and") if how == "swap" else i
    if how == "swap" and rows[i] == dict(rows[j], seq=rows[i]["seq"], prev_hash=rows[i]["prev_hash"],
                                         entry_hash=rows[i]["entry_hash"]):
        return
    tampered = _tamper(rows, how, i, j, rng)
    _store(engine, tampered, head)
    with Session(engine) as session:
        full = check_log(session, KEY, checkpoint, batch_size=rng.choice([1, 3, 5000]))
        incremental = check_log(session, KEY, checkpoint, incremental=True, batch_size=rng.choice([1, 3, 5000]))
    assert not full.ok, (how, i, j)
    assert not incremental.ok, (how, i, j)


def test_a_truncated_tail_with_the_head_moved_back_is_found_under_a_checkpoint(engine):
    entries = _chain(_stored_entries(engine, random.Random(5), 10))  # noqa: S311 - seeded test data, not a secret
    rows = [dataclasses.asdict(e) for e in entries]
    checkpoint = [ReadCheckpoint(1, Checkpoint(seq=10, mac=entries[-1].entry_hash, at="t", keyed_from=1))]
    _store(engine, rows[:7], (7, entries[6].entry_hash))
    with Session(engine) as session:
        for incremental in (False, True):
            found = check_log(session, KEY, checkpoint, incremental=incremental)
            assert not found.ok and "deleted_tail" in {b.kind for b in found.breaks}, found.breaks


def _many_checkpoints(entries: list[querylog.LoggedRead], lines: int, bad_every: int = 3):
    """``lines`` checkpoint lines as read (a year at the service's interval is millions): valid ones of
    the chain's entries, and every ``bad_every``-th one unreadable. Made lazily, as the file is read."""
    for n in range(1, lines + 1):
        if n % bad_every == 0:
            yield ReadCheckpoint(n, None, "signature does not verify")
        else:
            e = entries[(n - 1) % len(entries)]
            yield ReadCheckpoint(n, Checkpoint(seq=e.seq, mac=e.entry_hash, at=f"line {n}", keyed_from=1))


def test_the_full_check_holds_neither_the_checkpoints_nor_every_break_in_memory(engine):
    import tracemalloc

    entries = _chain(_stored_entries(engine, random.Random(6), 400))  # noqa: S311 - seeded test data, not a secret
    rows = [dataclasses.asdict(e) for e in entries]
    rows = rows[::2]  # every other entry deleted: a break each
    _store(engine, rows, (400, entries[-1].entry_hash))

    def peak(lines: int) -> tuple[int, object]:
        with Session(engine) as session:
            tracemalloc.start()
            found = check_log(session, KEY, _many_checkpoints(entries, lines))
            _, top = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return top, found

    small, few = peak(300)
    big, many = peak(30_000)
    assert not many.ok and many.checkpoints == 20_000 and few.checkpoints == 200
    assert big < small + 1_000_000, (small, big)  # not 30,000 checkpoints (≈ 6 MB): the drivers' caches at most
    kinds = [b.kind for b in many.breaks]
    assert kinds.count("bad_checkpoint") == 100
    assert any("10,000 unreadable lines in all" in b.detail for b in many.breaks)
    assert kinds.count("missing_entry") == 100  # of 199 gaps: every other entry deleted
    assert any("199 breaks of this kind in all" in b.detail for b in many.breaks)


def test_a_replaced_entry_under_any_checkpoint_is_named_at_the_lowest(engine):
    entries = _chain(_stored_entries(engine, random.Random(7), 30))  # noqa: S311 - seeded test data, not a secret
    rows = [dataclasses.asdict(e) for e in entries]
    # an insider with the MAC key rebuilds the log from entry 12 on: a consistent chain, other MACs
    rebuilt = _chain([dataclasses.replace(e, purpose="改写") for e in entries[11:]], key="other" * 13)
    prev = entries[10].entry_hash
    for e in rebuilt:
        e.seq += 11
        e.prev_hash = prev
        e.entry_hash = prev = querylog.entry_mac(KEY, prev, e)
    _store(engine, rows[:11] + [dataclasses.asdict(e) for e in rebuilt], (30, prev))
    lines = [ReadCheckpoint(n, Checkpoint(seq=s, mac=entries[s - 1].entry_hash, at="t", keyed_from=1))
             for n, s in enumerate([25, 5, 14, 30, 12], 1)]  # not in order: several workers append
    with Session(engine) as session:
        full = check_log(session, KEY, iter(lines))
        incremental = check_log(session, KEY, iter(lines), incremental=True)
    assert [(b.kind, b.seq) for b in full.breaks] == [("replaced", 12)]
    assert ("replaced", 12) in [(b.kind, b.seq) for b in incremental.breaks]
