"""Attack review of the cross-worker offers (``serving.services.querylog_spool``): a local
attacker (another account, or a process of this account without the MAC key) and a faulty peer
against the spool directory, the offers and the marks. Findings are strict xfails (issue 14);
probes that held are plain tests. Two writers on two engines of one SQLite file stand for two
workers, as in ``test_srv_querylog_spool``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time

import pytest
from sqlalchemy import func, select, text
from test_srv_querylog_spool import _append_in_thread, _entry, _holder_turn, _offer_while_held, _spool_files

from serving.db.session import make_engine
from serving.db.tables import QueryLogEntry
from serving.services import querylog
from serving.services.querylog_check import check_chain

FINDING = "attack review finding (issue 14)"


@pytest.fixture
def two_workers(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("offers are SQLite's")
    engines = [make_engine(database_url) for _ in range(2)]
    writers = [querylog.GroupCommitWriter(e, idle_s=0.05) for e in engines]
    shutil.rmtree(writers[0]._spool._dir, ignore_errors=True)
    yield writers
    for e in engines:
        e.dispose()
    shutil.rmtree(writers[0]._spool._dir, ignore_errors=True)  # in /dev/shm: not under tmp_path


def _count(session, uscc: str) -> int:
    return session.scalar(select(func.count()).select_from(QueryLogEntry).where(QueryLogEntry.uscc == uscc))


def _append_one(writer, planted, *, wait: float) -> tuple[bool, dict]:
    """Appends one entry in a thread: (stalled after ``wait`` s, the thread's outcome). Then unblocks
    a thread stuck opening ``planted`` (a writer opening a FIFO lets the reader's open return, then
    EOF; ENXIO: no reader has it open, nothing to unblock) and joins it."""
    thread, box = _append_in_thread(writer, [_entry(0, 0)])
    thread.join(wait)
    stalled = thread.is_alive()
    with contextlib.suppress(OSError):
        os.close(os.open(planted, os.O_WRONLY | os.O_NONBLOCK))
    thread.join(5)
    return stalled, box

def _offer_in_a_holders_turn(holder, offerer) -> str:
    """``offerer`` offers one entry while ``holder`` holds the log, then ``holder`` takes its turn;
    the offer must have returned. Returns the offered entry's uscc."""
    offered = [_entry(1, 0)]
    outcome = _offer_while_held(holder, offerer, offered)
    _holder_turn(holder, [_entry(0, 0)])
    outcome["thread"].join(10)
    assert outcome.get("ok")
    return offered[0].uscc

# --- findings -------------------------------------------------------------------------------


def test_a_fifo_in_a_foreign_spool_directory_does_not_stall_the_log(two_workers, session):
    """Another account pre-creates the spool directory (0777: the service refuses to offer into
    it) and puts a FIFO in it. The holder still lists and reads that directory on every commit
    (``Spool.offered``: ``read_bytes`` on a FIFO blocks in ``open``) while holding the flock: every
    read of every worker waits forever. (A same-account process can do the same in the 0700
    directory; a symlink to /dev/zero or a sparse huge file would exhaust memory instead.)"""
    a, _ = two_workers
    directory = a._spool._dir
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)
    fifo = directory / "00000001-fifo"
    os.mkfifo(fifo)
    stalled, box = _append_one(a, fifo, wait=1.0)
    assert not stalled and box.get("ok")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dir"])
def test_no_blocking_or_endless_file_in_the_services_own_directory(two_workers, session, kind):
    """The same as a same-account process could plant in the 0700 directory: the holder reads
    only regular files of its own, of bounded size, without following symlinks."""
    a, _ = two_workers
    directory = a._spool._dir
    directory.mkdir(mode=0o700)
    planted = directory / "00000001-planted"
    if kind == "fifo":
        os.mkfifo(planted)
    elif kind == "dev-zero":
        planted.symlink_to("/dev/zero")
    else:
        planted.mkdir()
    stalled, box = _append_one(a, planted, wait=5.0)
    assert not stalled and box.get("ok")
    assert check_chain(session).entries == 1


def test_a_replayed_offer_is_not_chained_again(two_workers, session):
    """A process of the service's account without the key copies a genuine offer (it can read
    the 0700 directory) and puts it back later under another name, as often as it likes: each copy
    is chained and MACed by the next holder, out of time order. docs/security.md: someone who can
    write the directory but does not hold the key 'cannot have entries chained (and MACed) by the
    service'. Fix idea: a group id is chained once (e.g. remember taken ids / bind the offer to a
    head seq and reject stale ones)."""
    a, b = two_workers
    offered = [_entry(1, 0)]
    outcome = _offer_while_held(a, b, offered)
    copied = (b._spool._dir / _spool_files(b)[0]).read_bytes()
    _holder_turn(a, [_entry(0, 0)])
    outcome["thread"].join(10)
    assert outcome.get("ok")
    assert _count(session, offered[0].uscc) == 1
    for k in range(3):  # replayed later, three times
        b._spool._dir.mkdir(mode=0o700, exist_ok=True)
        (b._spool._dir / f"99999999-replay{k}").write_bytes(copied)
    a.append([_entry(0, 1)])
    assert check_chain(session).ok  # the check does not notice the copies either
    assert _count(session, offered[0].uscc) == 1


@pytest.mark.parametrize("body", [
    {"kind": "offer", "entries": "ROW"},  # no "group": KeyError outside the try in Spool.offered
    {"kind": "offer", "group": "p-1", "entries": "ROW_BAD_TYPE"},  # uscc not a string: _link fails
], ids=["no-group", "uscc-not-a-string"])
def test_a_malformed_offer_of_a_faulty_peer_does_not_fail_the_holders_reads(two_workers, session, body):
    """A faulty peer (a worker of another version, holding the key) offers a group with a valid
    MAC but a malformed body. The holder should skip it; instead its own commit fails and its own
    reads are refused, on every commit while the file stays (forever if that peer died)."""
    a, _ = two_workers
    spool = a._spool
    spool._dir.mkdir(mode=0o700)
    row = ["2026-01-01T00:00:00+00:00", "peer", "regulator", "person", "913201000000000099", "p", "GET /x",
           "allowed", False]
    if body["entries"] == "ROW_BAD_TYPE":
        row[4] = 913201000000000099
    payload = json.dumps({**body, "made_at": time.time(), "entries": [row]}).encode()  # fresh: checked further
    (spool._dir / "00000001-peer").write_bytes(spool._mac(payload) + b"\n" + payload)
    own = _entry(0, 0)
    a.append([own])  # raises KeyError / TypeError today
    assert _count(session, own.uscc) == 1 and check_chain(session).ok


def test_an_offer_that_cannot_be_encoded_does_not_strand_the_callers(two_workers, session, monkeypatch):
    """Latent (no HTTP path found that puts a lone surrogate in an entry): ``Spool.offer`` catches
    only OSError. Raised in the offer made before the lock is released, any other error
    (UnicodeEncodeError here, MemoryError) escapes ``_round``: the group just committed and the
    queued one are never woken; their callers wait forever."""
    a, _ = two_workers
    real = querylog._chain_and_commit
    late_entry = _entry(0, 1)
    late_entry.purpose = "\ud800"
    late = querylog._Batch([late_entry], event=threading.Event())
    calls: list[int] = []

    def arriving(raw, engine, entries, key):
        if not calls:
            a._queue.append(late)
        calls.append(len(entries))
        return real(raw, engine, entries, key)

    monkeypatch.setattr(querylog, "_chain_and_commit", arriving)
    first = querylog._Batch([_entry(0, 0)], event=threading.Event())
    outcomes, _ = a._round([first], None)  # raises UnicodeEncodeError today: first never answered
    assert outcomes == [([first], None)]


def test_a_file_in_place_of_the_spool_directory_does_not_refuse_every_read(two_workers, session):
    """Another account creates ``/dev/shm/tiers-querylog-<sha256 of the database's path>`` as a
    plain file (a predictable name; /dev/shm is sticky, so the service cannot remove it). Offers
    are refused, rightly, but ``Spool.offered`` catches only FileNotFoundError from ``listdir``:
    NotADirectoryError fails every commit, so every read of every worker is refused until someone
    removes the file. (Likewise, for a service not running as root, PermissionError from a 0700
    directory another account owns.)"""
    a, _ = two_workers
    a._spool._dir.write_bytes(b"")
    try:
        assert a._spool.offer([_entry(0, 0)]) is None
        a.append([_entry(0, 1)])  # NotADirectoryError today: the read is refused
        assert check_chain(session).entries == 1
    finally:
        a._spool._dir.unlink()


# --- probes that held -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["symlink", "other-owner", "group-readable"])
def test_no_offer_into_a_directory_that_is_not_the_services_own(two_workers, session, tmp_path, kind):
    a, _ = two_workers
    directory = a._spool._dir
    if kind == "symlink":
        target = tmp_path / "elsewhere"
        target.mkdir(mode=0o700)
        directory.symlink_to(target)
    else:
        directory.mkdir(mode=0o700)
        if kind == "other-owner":
            if os.getuid() != 0:
                pytest.skip("chown needs root")
            os.chown(directory, 65534, 65534)
        else:
            directory.chmod(0o750)
    try:
        assert a._spool.offer([_entry(0, 0)]) is None
        if kind == "symlink":
            assert list(target.iterdir()) == []
        a.append([_entry(0, 1)])  # logged by its own commit all the same
        assert check_chain(session).entries == 1
    finally:
        if directory.is_symlink():
            directory.unlink()


def test_a_holder_dying_between_commit_and_mark_leaves_the_group_logged_twice_not_lost(two_workers, session,
                                                                                     monkeypatch):
    a, b = two_workers

    def no_mark(self, offered, last_seq, prev_hash):
        raise OSError("killed before the mark")

    monkeypatch.setattr(type(a._spool), "mark_taken", no_mark)
    offered = _offer_in_a_holders_turn(a, b)
    assert _count(session, offered) == 2 and check_chain(session).ok


def test_an_offer_deleted_during_the_holders_commit_is_logged_once(two_workers, session, monkeypatch):
    a, b = two_workers
    real = querylog._chain_and_commit

    def deleting(raw, engine, entries, key):
        for name in _spool_files(b):
            (b._spool._dir / name).unlink()
        return real(raw, engine, entries, key)

    monkeypatch.setattr(querylog, "_chain_and_commit", deleting)
    offered = _offer_in_a_holders_turn(a, b)
    assert _count(session, offered) == 1 and check_chain(session).ok


def test_a_mark_pointing_at_another_groups_entries_is_not_believed(two_workers, session):
    """A faulty peer marks the offer at a real, committed position holding other entries."""
    a, b = two_workers
    a.append([_entry(0, 0), _entry(0, 1)])
    offered = [_entry(1, 0)]
    outcome = _offer_while_held(a, b, offered)
    path = b._spool._dir / _spool_files(b)[0]
    group = json.loads(path.read_bytes().partition(b"\n")[2])["group"]
    head = session.execute(select(QueryLogEntry.seq, QueryLogEntry.prev_hash).order_by(QueryLogEntry.seq.desc())
                           ).first()
    path.write_text(json.dumps({"kind": "taken", "group": group, "last_seq": head.seq, "prev_hash": head.prev_hash}))
    a._spool.release()
    outcome["thread"].join(10)
    assert outcome.get("ok")
    assert _count(session, offered[0].uscc) == 1 and check_chain(session).entries == 3


def test_a_huge_offer_file_without_a_valid_mac_is_skipped(two_workers, session):
    a, _ = two_workers
    a._spool._dir.mkdir(mode=0o700)
    (a._spool._dir / "00000001-huge").write_bytes(b"x" * (8 << 20))  # 8 MiB, no newline
    (a._spool._dir / "00000002-junk").write_bytes(b"\n\xff\xfe{")
    a.append([_entry(0, 0)])
    assert check_chain(session).entries == 1


def test_a_stale_offer_is_not_chained_and_is_removed(two_workers, session):
    """An offer older than OFFER_TTL_S (a copy kept for later, once its record was pruned) is refused."""
    from serving.services.querylog_spool import OFFER_TTL_S

    a, _ = two_workers
    spool = a._spool
    spool._dir.mkdir(mode=0o700)
    row = ["2026-01-01T00:00:00+00:00", "peer", "regulator", "person", "913201000000000098", "p", "GET /x",
           "allowed", False]
    payload = json.dumps({"kind": "offer", "group": "old-1", "made_at": time.time() - 2 * OFFER_TTL_S,
                          "entries": [row]}).encode()
    stale = spool._dir / "00000001-old"
    stale.write_bytes(spool._mac(payload) + b"\n" + payload)
    a.append([_entry(0, 0)])
    assert _count(session, row[4]) == 0 and check_chain(session).entries == 1
    assert not stale.exists()


def test_offers_are_left_to_their_workers_on_a_schema_before_0013(two_workers, session):
    """A holder whose database lacks ``query_log_offers`` commits its own reads and takes no offer."""
    a, b = two_workers
    session.execute(text("DROP TABLE query_log_offers"))
    session.commit()
    offered = _offer_in_a_holders_turn(a, b)
    assert _count(session, offered) == 1 and check_chain(session).entries == 2
