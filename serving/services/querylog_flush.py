"""Bounded-loss durability of the query log on an SQLite file (``Settings.querylog_flush_ms``).

PostgreSQL's ``synchronous_commit = off`` with its WAL writer, for our log: with a flush interval
W > 0 the log's commits run at ``synchronous=NORMAL`` in WAL mode, so a read is answered once its
entry is *committed* (visible, chained and MACed, written to the WAL through the OS: a crash of the
service loses nothing), without waiting for the disk. A ``WalFlusher`` thread per process then
``fdatasync``s the WAL file at most every W ms while this process has commits not yet flushed,
and at once when it has been idle longer than that. A power cut or OS crash can lose the entries
committed in the last W ms (plus the fsync in progress), never corrupt or reorder the chain.

What it relies on (SQLite's documented WAL design, https://sqlite.org/wal.html and
``PRAGMA synchronous``): in WAL mode a commit appends its frames to the ``-wal`` file, the last
one marked as a commit; frames are only ever appended, until a checkpoint has copied every frame
into the database file *and synced it* (NORMAL syncs the WAL before, the database after, every
checkpoint), and only then does a later writer start the WAL again from its beginning. Recovery
replays the longest prefix of valid frames (salted, with chained checksums) up to the last
commit frame. So an fsync of the ``-wal`` file makes durable every commit whose ``write`` returned
before it, and what a power cut loses is a suffix of commits: "WAL mode is always consistent with
synchronous=NORMAL", it loses durability, not consistency. We do not run a PASSIVE checkpoint
instead: it syncs the WAL only when it can copy frames (a reader holding an old snapshot leaves it
nothing to copy, and then nothing is synced), and it writes and syncs the database file as well,
two fsyncs and the pages' copy where one fsync suffices.

The traps of the earlier attempt (docs/performance-notes.md, "Durability") are closed thus:

- **Which file.** The WAL's path is SQLite's own: ``PRAGMA database_list``'s file name (the full
  path SQLite opened, symlinks resolved as SQLite resolves them) plus ``-wal``, as SQLite names it.
- **Which inode.** The flusher keeps one descriptor open on the WAL. Before each commit the writer
  asks ``covers()``: true only when that descriptor is on the file now at the WAL's path (a WAL
  deleted when every connection closed, and made anew, is another inode). Otherwise the commit
  runs at the engine's own setting (FULL: SQLite fsyncs it) and the flusher moves to the new file
  once everything on the old one is flushed.
- **fsync errors.** The descriptor is opened before any commit it covers, so Linux reports to it
  every write-back error of those commits (errors are recorded per open file since 4.13, and an
  error another descriptor saw first is still reported to this one). After any fsync error the
  flusher is failed for good: every later commit of the log raises it (the service refuses reads
  rather than answer them unlogged), and ``tiers serve`` must be restarted.
- **The WAL's growth.** SQLite's automatic checkpoint still runs in the log's commit, as before
  (under NORMAL it syncs the WAL and the database itself): the WAL restarts as it did.

A signed checkpoint of the log's head (``checkpoints``) must never anchor an entry a power cut
could lose (the check would then report a truncated log): the writer anchors only a head this
flusher has flushed (``durable_head``), and flushes first when it falls idle or stops.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from typing import Any

from serving.services.worker_thread import wake_or_start

log = logging.getLogger(__name__)
_sync = getattr(os, "fdatasync", os.fsync)  # data and size, as SQLite's own WAL sync on Linux


class FlushFailed(RuntimeError):
    """The WAL's fsync failed: entries answered since the last flush may not be on disk."""


def wal_path(raw: Any) -> str | None:
    """The WAL file of the main database of the DBAPI (sqlite3) connection ``raw``, as SQLite
    names it (None: an in-memory or temporary database)."""
    cursor = raw.cursor()
    try:
        for _seq, name, file in cursor.execute("PRAGMA database_list").fetchall():
            if name == "main":
                return f"{file}-wal" if file else None
    finally:
        cursor.close()
    return None


def sync_wal(path: str | None) -> None:
    """Fsync the WAL file at ``path`` now, if there is one (before a checkpoint of the log's head
    is signed outside the group writer: ``querylog.anchor_now``)."""
    if path is None:
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:  # no WAL: every commit is in the database file, synced
        return
    try:
        _sync(fd)
    finally:
        os.close(fd)


class WalFlusher:
    """Fsyncs one SQLite WAL file at most every ``interval_s`` while commits are unflushed.

    The writer calls ``covers()`` before a commit at NORMAL and ``committed(head)`` after it;
    ``flush()`` waits until everything committed so far is on disk (idle, shutdown, tests).
    ``fsyncs`` counts the fsyncs done, ``durable_head`` is the newest head they covered.
    """

    def __init__(self, path: str, interval_s: float, idle_s: float = 1.0) -> None:
        if interval_s <= 0:
            raise ValueError("a WalFlusher needs an interval > 0 (0: every commit fsyncs itself)")
        self.path, self.interval_s, self._idle_s = path, interval_s, idle_s
        self._cond = threading.Condition()
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._committed = 0  # commits made at NORMAL, counted …
        self._flushed = 0  # … and how many of them an fsync covered
        self._head: Any = None  # the head of the newest commit, and of the newest flushed one
        self.durable_head: Any = None
        self._urgent = False  # someone waits in ``flush``: no interval
        self._last_start = float("-inf")  # when the last fsync started
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.fsyncs = 0
        _live.add(self)

    def covers(self) -> bool:
        """Whether a commit now may skip its own fsync: the flusher's descriptor is on the file at
        the WAL's path (opened here, before the commit, if need be). Raises ``FlushFailed`` after
        an fsync error."""
        try:
            now = os.stat(self.path)
        except FileNotFoundError:  # no WAL yet: this commit makes it, at FULL
            return False
        with self._cond:
            if self.error is not None:
                raise FlushFailed(f"the query log's WAL could not be synced ({self.error}): restart the "
                                  "service") from self.error
            if self._ino == (now.st_dev, now.st_ino):
                return True
            if self._committed != self._flushed:  # the old file's commits first: this one at FULL
                self._urgent = True
                self._cond.notify_all()
                return False
            if self._fd is not None:
                os.close(self._fd)
                self._fd = self._ino = None
            try:
                fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:  # gone meanwhile, or not ours to open: this commit fsyncs itself
                return False
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != (now.st_dev, now.st_ino):  # replaced meanwhile: next time
                os.close(fd)
                return False
            self._fd, self._ino = fd, (info.st_dev, info.st_ino)
            return True

    def committed(self, head: Any) -> None:
        """A commit at NORMAL returned (``head``: the log's head it made): flush it within the interval."""
        with self._cond:
            self._committed += 1
            self._head = head
            self._thread = wake_or_start(self._cond, self._thread, self._run, "querylog-flusher")

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every commit made so far is flushed (True), or ``timeout_s`` passed, or the
        flusher failed (False)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._committed
            while self._flushed < target and self.error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._urgent = True
                if self._thread is None:  # pragma: no cover - a thread always runs while commits are unflushed
                    break
                self._cond.notify_all()
                self._cond.wait(min(left, 0.05))
            return self._flushed >= target and self.error is None

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._flushed == self._committed:
                    if not self._cond.wait(self._idle_s) and self._flushed == self._committed:
                        self._thread = None  # idle: the next commit starts a new thread
                        return
                while not self._urgent and (wait := self._last_start + self.interval_s - time.monotonic()) > 0:
                    self._cond.wait(wait)  # at most one fsync per interval: commits gather meanwhile
                target, head, fd = self._committed, self._head, self._fd
                assert fd is not None  # noqa: S101 - counted commits were covered by it
                self._urgent = False
                self._last_start = time.monotonic()
            try:
                _sync(fd)  # opened by ``covers`` before the first commit it counts, never closed
            except OSError as exc:  # fail-stop: a later fsync could "succeed" over pages lost now
                log.critical("query log: fsync of %s failed (%s): entries answered in the last %.0f ms may "
                             "be lost; every read is refused until the service is restarted",
                             self.path, exc, self.interval_s * 1000)
                with self._cond:
                    self.error = exc
                    self._thread = None
                    self._cond.notify_all()
                return
            with self._cond:
                self.fsyncs += 1
                self._flushed = max(self._flushed, target)
                self.durable_head = head
                self._cond.notify_all()

_live: weakref.WeakSet[WalFlusher] = weakref.WeakSet()


def flush_all(timeout_s: float = 10.0) -> bool:
    """Flush every flusher of this process (a graceful stop, and the interpreter's exit)."""
    return all([f.flush(timeout_s) for f in list(_live)])


atexit.register(flush_all)
