"""Group commit across worker processes (``serving.services.querylog_spool``): a writer that finds
the log's lock taken offers its group, the lock's holder commits it with its own, and the
offering writer answers only once the database holds its entries; otherwise it commits them
itself. Two writers on two engines of one SQLite file stand for two workers (each has its own
open lock file, so their ``flock``s exclude each other as two processes' do)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select
from srv_fixtures import principal

from serving.db.session import make_engine
from serving.db.tables import QueryLogEntry
from serving.services import querylog, querylog_spool
from serving.services.querylog_check import check_chain


@pytest.fixture
def two_workers(database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("offers are SQLite's: PostgreSQL groups concurrent commits itself")
    engines = [make_engine(database_url) for _ in range(2)]
    writers = [querylog.GroupCommitWriter(e) for e in engines]
    yield writers
    for e in engines:
        e.dispose()
    shutil.rmtree(writers[0]._spool._dir, ignore_errors=True)  # in /dev/shm: not under tmp_path


def _entry(k: int, i: int) -> querylog.LoggedRead:
    return querylog._new_entry(principal("reg_samr"), f"91320100{k:02d}{i:08d}", "allowed", "跨进程", "GET /t", False)


def _spool_files(writer: querylog.GroupCommitWriter) -> list[str]:
    directory = writer._spool._dir
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) if directory.exists() else []


def _holder_turn(writer: querylog.GroupCommitWriter, entries) -> None:
    """The lock holder's next turn (its lock file already holds the lock): raises its error."""
    batch = querylog._Batch(entries, event=threading.Event())
    outcomes, carried = writer._round([batch], None)
    assert carried is None
    for _, error in outcomes:
        if error is not None:
            raise error


def _append_in_thread(writer: querylog.GroupCommitWriter, entries) -> tuple[threading.Thread, dict]:
    """``writer.append(entries)`` in a thread; the box gets ``ok`` or the ``error`` it raised."""
    box: dict = {}

    def run() -> None:
        try:
            writer.append(entries)
            box["ok"] = True
        except Exception as exc:  # the test reads it
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def _offer_while_held(holder: querylog.GroupCommitWriter, offerer: querylog.GroupCommitWriter, entries):
    """``holder`` holds the log's lock (through its own lock file); ``offerer`` appends ``entries``
    in a thread, finds the lock taken and offers them. Returns the thread's outcome box."""
    spool = holder._spool
    spool._lock_file = spool._lock_path.open("a")
    fcntl.flock(spool._lock_file, fcntl.LOCK_EX)
    thread, outcome = _append_in_thread(offerer, entries)
    deadline = time.monotonic() + 10
    while not _spool_files(offerer) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _spool_files(offerer), "the offer never appeared"
    outcome["thread"] = thread
    return outcome


def test_the_lock_holder_commits_the_offered_group_with_its_own_in_one_transaction(two_workers, session,
                                                                                   monkeypatch):
    a, b = two_workers
    commits: list[int] = []
    real = querylog._chain_and_commit

    def counted(raw, engine, entries, key):
        commits.append(len(entries))
        return real(raw, engine, entries, key)

    monkeypatch.setattr(querylog, "_chain_and_commit", counted)
    offered = [_entry(1, 0), _entry(1, 1)]
    outcome = _offer_while_held(a, b, offered)
    own = [_entry(0, 0)]
    _holder_turn(a, own)
    outcome["thread"].join(10)
    assert outcome == {"ok": True, "thread": outcome["thread"]}
    assert commits == [3]  # one transaction for both workers' reads; b never committed
    assert [e.seq for e in own] == [1] and [e.seq for e in offered] == [2, 3]
    result = check_chain(session)
    assert result.ok and result.entries == 3
    stored = session.execute(select(QueryLogEntry.seq, QueryLogEntry.uscc).order_by(QueryLogEntry.seq)).all()
    assert [u for _, u in stored] == [e.uscc for e in own + offered]
    assert _spool_files(b) == []  # the offer is gone once resolved


def test_a_failed_commit_of_the_holder_fails_its_reads_and_the_offerer_commits_its_own(two_workers, session,
                                                                                       monkeypatch):
    a, b = two_workers
    real = querylog._chain_and_commit
    failures: list[int] = []

    def first_fails(raw, engine, entries, key):
        if not failures:
            failures.append(len(entries))
            raise OSError("No space left on device")
        return real(raw, engine, entries, key)

    monkeypatch.setattr(querylog, "_chain_and_commit", first_fails)
    offered = [_entry(1, 0)]
    outcome = _offer_while_held(a, b, offered)
    with pytest.raises(OSError):
        _holder_turn(a, [_entry(0, 0)])  # the holder's reads are not answered
    outcome["thread"].join(10)
    assert outcome.get("ok") and failures == [2]  # the offered read was in the failed transaction …
    result = check_chain(session)  # … and then logged by its own worker, alone
    assert result.ok and result.entries == 1
    assert session.scalar(select(QueryLogEntry.uscc)) == offered[0].uscc


def test_no_answer_when_neither_commit_succeeds(two_workers, session, monkeypatch):
    a, b = two_workers

    def disk_full(raw, engine, entries, key):
        raise OSError("No space left on device")

    monkeypatch.setattr(querylog, "_chain_and_commit", disk_full)
    outcome = _offer_while_held(a, b, [_entry(1, 0)])
    with pytest.raises(OSError):
        _holder_turn(a, [_entry(0, 0)])
    outcome["thread"].join(10)
    assert isinstance(outcome.get("error"), OSError) and "ok" not in outcome
    assert check_chain(session).entries == 0


def test_a_forged_taken_mark_is_not_believed(two_workers, session):
    a, b = two_workers
    offered = [_entry(1, 0)]
    outcome = _offer_while_held(a, b, offered)
    path = b._spool._dir / _spool_files(b)[0]
    group = json.loads(path.read_bytes().partition(b"\n")[2])["group"]
    path.write_text(json.dumps({"kind": "taken", "group": group, "last_seq": 1, "prev_hash": "0" * 64}))
    a._spool.release()  # nobody committed anything: b must find its entry missing and log it
    outcome["thread"].join(10)
    assert outcome.get("ok")
    result = check_chain(session)
    assert result.ok and result.entries == 1 and offered[0].seq == 1


def test_an_offer_without_the_key_is_never_chained(two_workers, session):
    a, _ = two_workers
    spool = a._spool
    spool._dir.mkdir(exist_ok=True)
    row = ["2026-01-01T00:00:00+00:00", "intruder", "regulator", "person", "913201000000000099", "伪造", "GET /x",
           "allowed", False]
    payload = json.dumps({"kind": "offer", "group": "x-1", "entries": [row]}).encode()
    (spool._dir / "00000001-forged").write_bytes(b"0" * 64 + b"\n" + payload)
    a.append([_entry(0, 0)])
    assert session.scalars(select(QueryLogEntry.actor)).all() == ["reg_samr"]
    assert check_chain(session).ok


def test_concurrent_reads_of_two_workers_are_all_logged_once_in_one_chain(two_workers, session, monkeypatch):
    """Threads of two writers append at once on a slow disk: every entry is in the log once, the
    chain checks, and some groups were committed by the other writer (offers were taken)."""
    real = querylog._chain_and_commit

    def slow_disk(raw, engine, entries, key):
        time.sleep(0.01)
        return real(raw, engine, entries, key)

    monkeypatch.setattr(querylog, "_chain_and_commit", slow_disk)
    taken: list[int] = []
    real_taken = querylog.GroupCommitWriter._was_taken

    def was_taken(self, offer, group):
        found = real_taken(self, offer, group)
        if found:
            taken.append(len(group))
        return found

    monkeypatch.setattr(querylog.GroupCommitWriter, "_was_taken", was_taken)

    def work(writer, k: int) -> None:
        for i in range(12):
            writer.append([_entry(k, i)])

    pool = [threading.Thread(target=work, args=(w, k), daemon=True)
            for k, w in enumerate(two_workers * 3)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    assert not any(t.is_alive() for t in pool)
    result = check_chain(session)
    assert result.ok and result.entries == 72
    usccs = session.scalars(select(QueryLogEntry.uscc)).all()
    assert sorted(usccs) == sorted({_entry(k, i).uscc for k in range(6) for i in range(12)})
    assert taken, "no group was ever committed by the other writer"


def test_reads_queued_during_a_commit_are_offered_before_the_lock_is_released(two_workers, session, monkeypatch):
    """The holder offers what queued during its commit before it lets go of the lock: the other
    worker's next commit carries them, and the holder answers them once it has checked that."""
    a, b = two_workers
    real = querylog._chain_and_commit
    commits: list[int] = []
    late = querylog._Batch([_entry(0, 1)], event=threading.Event())

    def arriving(raw, engine, entries, key):
        if not commits:
            a._queue.append(late)  # a read arrives while a's first commit is under way
        commits.append(len(entries))
        return real(raw, engine, entries, key)

    monkeypatch.setattr(querylog, "_chain_and_commit", arriving)
    first = querylog._Batch([_entry(0, 0)], event=threading.Event())
    outcomes, carried = a._round([first], None)
    assert outcomes == [([first], None)] and carried is not None and carried[1] is not None
    assert carried[0] == [late] and not late.event.is_set()
    b_outcomes, _ = b._round([querylog._Batch([_entry(1, 0)], event=threading.Event())], None)
    assert [e for _, e in b_outcomes] == [None]
    outcomes, again = a._round(*carried)  # a's next turn: its offer was taken, checked, answered
    assert outcomes == [] and again is None and late.event.is_set() and late.error is None
    assert commits == [1, 2]  # b's commit carried a's late read: two fsyncs for three reads
    result = check_chain(session)
    assert result.ok and result.entries == 3


def test_no_offer_into_a_directory_others_can_read(two_workers, session):
    a, _ = two_workers
    spool = a._spool
    spool._dir.mkdir(mode=0o755, exist_ok=True)
    spool._dir.chmod(0o755)  # an offer says who read which subject
    assert spool.offer([_entry(0, 0)]) is None and _spool_files(a) == []
    a.append([_entry(0, 1)])  # the read is logged all the same, by its own commit
    assert check_chain(session).entries == 1


# --- wake-ups instead of polling ---------------------------------------------------------------


@pytest.fixture
def no_polling(monkeypatch):
    """An offering writer that is not woken would wait 30 s before it looks again."""
    monkeypatch.setattr(querylog_spool, "WAIT_S", 30.0)


def _release_after(holder: querylog.GroupCommitWriter, outcome: dict, monkeypatch) -> dict:
    """Make ``holder``'s next release wait (≤ 5 s) for ``outcome``; the box says whether the
    offerer had answered before the lock was given back."""
    seen: dict = {}
    real = holder._spool.release

    def release() -> None:
        outcome["thread"].join(5)
        seen["answered_while_held"] = not outcome["thread"].is_alive()
        real()

    monkeypatch.setattr(holder._spool, "release", release)
    return seen


def test_the_holder_wakes_the_offerer_when_it_marks_its_group_taken(two_workers, session, no_polling, monkeypatch):
    a, b = two_workers
    offered = [_entry(1, 0)]
    outcome = _offer_while_held(a, b, offered)
    assert (b._spool._dir / f".{b._spool._own}.wake").is_socket()  # bound before the offer was visible
    seen = _release_after(a, outcome, monkeypatch)
    started = time.monotonic()
    _holder_turn(a, [_entry(0, 0)])
    assert seen == {"answered_while_held": True} and outcome.get("ok")
    assert time.monotonic() - started < 5  # woken by the mark, not by its own 30 s look
    assert check_chain(session).entries == 2 and offered[0].seq == 2


def test_a_wake_up_without_a_valid_mark_is_not_believed(two_workers, session, no_polling):
    """Anyone of the account can send to the socket: a wake-up only makes the offerer look again.
    Without a mark it waits on; with a forged one it checks the database and logs its read itself."""
    a, b = two_workers
    offered = [_entry(1, 0)]
    outcome = _offer_while_held(a, b, offered)
    for _ in range(3):
        a._spool._wake(b._spool._own)
    outcome["thread"].join(0.3)
    assert outcome["thread"].is_alive() and "ok" not in outcome  # still waiting for the lock
    path = b._spool._dir / b._spool._own
    group = json.loads(path.read_bytes().partition(b"\n")[2])["group"]
    path.write_text(json.dumps({"kind": "taken", "group": group, "last_seq": 1, "prev_hash": "0" * 64}))
    a._spool._wake(b._spool._own)
    outcome["thread"].join(0.3)
    assert outcome["thread"].is_alive()  # not believed: nothing is chained there; waits for the lock
    a._spool.release()  # whose wake-up lets it take the lock at once
    outcome["thread"].join(5)
    assert outcome.get("ok") and check_chain(session).entries == 1 and offered[0].seq == 1


def test_giving_the_lock_back_wakes_an_offer_the_holder_did_not_take(two_workers, session, no_polling):
    a, b = two_workers
    outcome = _offer_while_held(a, b, [_entry(1, 0)])
    started = time.monotonic()
    a._spool.release()  # a never committed: b, woken, takes the lock and commits its own group
    outcome["thread"].join(5)
    assert outcome.get("ok") and time.monotonic() - started < 5
    assert check_chain(session).entries == 1


def test_without_a_wake_up_socket_an_offerer_still_polls(two_workers, session, monkeypatch):
    a, b = two_workers
    def no_socket(*args, **kwargs):
        raise OSError("no sockets here")

    monkeypatch.setattr(querylog_spool.socket, "socket", no_socket)
    outcome = _offer_while_held(a, b, [_entry(1, 0)])
    assert b._spool._wake_socket is None
    _holder_turn(a, [_entry(0, 0)])
    outcome["thread"].join(5)
    assert outcome.get("ok") and check_chain(session).entries == 2


def test_an_idle_writer_closes_its_socket_and_leaves_no_directory(database_url, session):
    if not database_url.startswith("sqlite"):
        pytest.skip("offers are SQLite's")
    engines = [make_engine(database_url) for _ in range(2)]
    a, b = (querylog.GroupCommitWriter(e, idle_s=0.05) for e in engines)
    try:
        outcome = _offer_while_held(a, b, [_entry(1, 0)])
        _holder_turn(a, [_entry(0, 0)])
        a._spool.release()
        outcome["thread"].join(5)
        deadline = time.monotonic() + 5
        while b._thread is not None and time.monotonic() < deadline:  # b's writer falls idle: tidy
            time.sleep(0.01)
        a._spool.tidy()
        assert b._spool._wake_socket is None and not b._spool._dir.exists()
    finally:
        for e in engines:
            e.dispose()
        shutil.rmtree(a._spool._dir, ignore_errors=True)


def test_a_dead_processs_wake_socket_does_not_keep_the_directory(database_url, session):
    """A worker killed before it could close its wake-up socket leaves it in the directory; the next
    writer to fall idle removes it (its process is gone) and the directory with it."""
    if not database_url.startswith("sqlite"):
        pytest.skip("offers are SQLite's")
    engine = make_engine(database_url)
    writer = querylog.GroupCommitWriter(engine, idle_s=0.05)
    spool = writer._spool
    try:
        spool._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dead = spool._dir / f".{int(gone):08d}-{'0' * 12}.wake"
        live = spool._dir / f".{os.getpid():08d}-{'1' * 12}.wake"
        for path in (dead, live):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(os.fspath(path))
            sock.close()  # the file stays, as a killed process's does
        spool.tidy()
        assert not dead.exists() and live.exists() and spool._dir.exists()  # a live process's is kept
        live.unlink()
        spool.tidy()
        assert not spool._dir.exists()
    finally:
        engine.dispose()
        shutil.rmtree(spool._dir, ignore_errors=True)


def test_the_subject_index_pages_of_a_group_are_read_before_the_lock_is_taken(two_workers, session, monkeypatch):
    """Each entry goes into the log's index by subject where reads of random subjects spread it:
    on a log of millions, a page the OS may have to read from disk. That read happens before the
    cross-process lock (which every worker's log commits wait for), not inside the commit."""
    from sqlalchemy import event

    writer = two_workers[0]
    engine = writer._engine()
    trace: list[str] = []

    @event.listens_for(engine, "connect")
    def _traced(dbapi_conn, _record):
        dbapi_conn.set_trace_callback(trace.append)

    engine.dispose()  # new connections, traced
    acquire = writer._spool.acquire
    monkeypatch.setattr(writer._spool, "acquire", lambda *a, **k: (trace.append("<lock>"), acquire(*a, **k))[1])
    entries = [_entry(7, i) for i in range(3)]
    writer.append(entries)
    lock = trace.index("<lock>")
    before = " ".join(trace[:lock])
    assert all(e.uscc in before for e in entries), trace[:lock]  # each subject's place, read first
    assert any(s.lstrip().upper().startswith("INSERT INTO QUERY_LOG ") for s in trace[lock:])
    assert session.scalar(select(QueryLogEntry.seq).where(QueryLogEntry.uscc == entries[-1].uscc)) == entries[-1].seq
