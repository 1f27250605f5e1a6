"""Group commit of the query log across the worker processes of one SQLite database.

The workers' group writers (``querylog.GroupCommitWriter``) take turns under a ``flock`` on
``<database>-querylog.lock``; each turn is one transaction and one fsync. Without this module a
worker whose writer finds the lock taken waits for the other worker's commit, then commits its
own group: a read can wait for three fsyncs in a row. With it, a worker *offers* its waiting
reads in a spool directory (``spool_directory``: in memory, one file per process, written whole
and renamed into place) when it finds the lock taken, and also, before it releases the lock,
offers the reads that queued during its own commit. Whoever holds the lock next commits its own
reads and every group offered so far in one transaction, then marks each offered group as taken
(its file replaced by the position where the group was chained). So the commits follow each
other back to back, each carrying every read of both workers that was waiting when it started:
a read waits for the commit in progress and, mostly, the next one.

What is promised (and tested):

- **A read is never answered before its entry is committed.** A worker whose group was taken by
  another learns it from the mark, written after the other's commit returned (with SQLite's
  ``synchronous=FULL`` the WAL was fsynced before the rows became visible; with a flush interval,
  ``querylog_flush``, the committing worker's flusher fsyncs it within the interval); it looks for the mark
  while it waits for the lock, and believes it only after checking the database: it chains its own entries, from its memory, onto the marked
  position and the last entry's MAC must equal the ``entry_hash`` stored at that ``seq``. A
  missing, stale or forged mark, or a committer that failed, leaves the group to its own worker,
  which commits it itself (and fails its reads if that commit fails).
- **Only entries of this service's workers are chained, each offer once.** An offer carries an
  HMAC under the log's MAC key; an offer without a valid one is left alone (its worker commits its
  own group). A malformed offer with a valid MAC, or one older than ``OFFER_TTL_S``, is removed.
  The holder records each group it chains in ``query_log_offers`` in the same transaction
  (``querylog._claim_offers``) and skips a group recorded there: a copy put back is not chained.
- **Nothing in the directory stalls or fails the holder.** It reads only from a directory it
  would offer into (its own, 0700, not a symlink), only regular files of its account of at most
  ``MAX_OFFER_BYTES``, opened with ``O_NONBLOCK | O_NOFOLLOW``; any error listing it means no
  offers. Any error while offering means this worker commits its group itself.
- **One chain, in a well-defined order**: each transaction chains the committing worker's group
  first, then the offered groups in the order of their files' names; within a group, the order
  in which its reads were queued. ``tiers querylog check`` is unchanged.
- A reader whose worker dies while its group is offered may still be logged (as a cancelled
  caller's read always was); a worker that dies between another's commit and its mark, or a mark
  that cannot be written, makes the offering worker log that group a second time. A read is
  never logged fewer than once.

A group is offered only when the lock is taken, or just before this worker gives it up, and
only when it is small (``MAX_OFFERED``): a lone worker, and a batch of thousands of checks,
commit as before.

A writer whose group is offered sleeps until it is woken (``Spool._doze``): the holder sends one
byte to the offering process's wake-up socket (a datagram socket bound in the same directory,
``.<process>.wake``) right after it marks that process's group taken, and to every process with an
offer still in the directory just after it releases the lock. A wake-up is only a hint to look
again: the waiter then tries the lock and reads its mark, which it still believes only after the
database check above, so a wake-up sent by anyone else, or lost, changes nothing but when it looks
(at the latest ``WAIT_S`` later; where no socket can be bound it looks every ``POLL_S``, as all
writers did before). Measured on this service's 2-core VM, each 0.5 ms poll cost a sleep and a
wake-up of the writer thread, a ``flock`` and an open and read of the mark (≈ 1 poll per logged
read at 500 reads/s); a wake-up costs the holder a directory listing and a ``sendto`` per turn.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import secrets
import select
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process group commit (see querylog)
    fcntl = None  # type: ignore[assignment]

# A larger group is worth its own fsync, and its offer (JSON of every entry) would cost CPU
MAX_OFFERED = 256
# how long an offer may be taken after it was made: a group waits for one commit or two (ms); an
# older offer is refused (and removed: its worker commits it itself), which bounds the record of
# taken groups (``query_log_offers``) that makes each offer single-use
OFFER_TTL_S = 60.0
# how often a writer whose group is offered looks for its mark while the lock is taken, when it
# has no wake-up socket (a directory whose path is too long for one, a platform without them)
POLL_S = 0.0005
# how long it sleeps on its wake-up socket before it looks by itself (a wake-up lost: a holder
# that died between its commit and its mark, or one of an older version that sends none)
WAIT_S = 0.005
_WAKE = ".{}.wake"  # a process's wake-up socket in the directory (a dot: never read as an offer)
# an offer's file is read only up to this size: generous for MAX_OFFERED entries (≈ 300 bytes
# each as JSON), and a bound on what a planted file (sparse, huge) can make the holder read
MAX_OFFER_BYTES = MAX_OFFERED * 16 * 1024
_OFFER, _TAKEN = "offer", "taken"
_TEXT_FIELDS = ("actor", "actor_role", "actor_kind", "uscc", "purpose", "endpoint", "outcome")
log = logging.getLogger(__name__)
_FIELDS = ("at", "actor", "actor_role", "actor_kind", "uscc", "purpose", "endpoint", "outcome",
           "personal_info_unmasked")


def spool_directory(database: str) -> Path:
    """Where the offers for ``database``'s log are kept: in memory (``/dev/shm``) when the machine
    has it, named by the database's real path so that all its workers meet there; beside the
    database otherwise. Not on the database's disk when avoidable: on ext4 the files created and
    renamed there join the journal commit that the log's own fsync waits for (measured: a
    group's commit went from 2 to 8 ms median with the spool beside the database)."""
    shm = Path("/dev/shm")  # noqa: S108 - our own 0700 directory in it, checked before each offer
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        digest = hashlib.sha256(os.path.realpath(database).encode("utf-8")).hexdigest()[:32]
        return shm / f"tiers-querylog-{digest}"
    return Path(database + "-querylog.spool")


@dataclass(frozen=True, slots=True)
class Offer:
    """A group this process offered, waiting for the lock: its file and its one-time id."""

    path: Path
    group: str


@dataclass(frozen=True, slots=True)
class Offered:
    """Another process's group read from its offer: the entries to chain, and where to mark it."""

    path: Path
    group: str
    entries: list[Any]
    made_at: float  # when it was offered (time.time() of its worker)


class Spool:
    """The cross-process lock of one database's log and its directory of offered groups.

    ``acquire`` returns with the lock held; ``release`` gives it back. Everything else is called
    while holding it.
    """

    def __init__(self, lock_path: Path, directory: Path, mac_key: str, new_entry: Any) -> None:
        self._lock_path = lock_path
        self._dir = directory
        self._key = mac_key.encode("utf-8")
        self._new_entry = new_entry  # LoggedRead (querylog's): how an offered entry is rebuilt
        # one name per process for its life; a random part, as pids repeat across namespaces
        self._own = f"{os.getpid():08d}-{secrets.token_hex(6)}"
        self._counter = 0
        self._lock_file: Any = None
        self._warned = False
        self._wake_socket: socket.socket | None = None  # bound while this process may have an offer out
        self._wake_poll: Any = None
        self._sender: socket.socket | None = None  # unbound: sends the wake-ups of this holder

    def acquire(self, entries: list[Any], offered: Offer | None = None) -> tuple[Offer | None, bool]:
        """Take the lock, or learn that another process took the group. If another process holds
        the lock, first offer ``entries`` (when the group is small) so that its commit can take
        them; with ``offered`` the group was offered already. Returns the offer (None: nothing
        offered) and whether the lock is held: False only when the offer was marked taken before
        the lock came free (check it with ``taken_at``; ``lock`` if it does not hold)."""
        if self._lock_file is None:
            self._lock_file = self._lock_path.open("a")
        if offered is not None:
            return offered, self._wait(offered)
        if self._try_lock():
            return None, True
        offer = self.offer(entries)
        if offer is None:
            self.lock()
            return None, True
        return offer, self._wait(offer)

    def lock(self) -> None:
        """Wait for the lock (blocking)."""
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)

    def _try_lock(self) -> bool:
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _wait(self, offer: Offer) -> bool:
        """Wait until this process holds the lock (True) or ``offer`` is marked taken (False, the
        lock not held), looking again at each wake-up (``_doze``). Not a blocking ``flock``: it
        would learn of the mark only once the lock came free, and the process that took the group,
        about to commit again, often takes the lock back first (measured: offered reads then
        waited a commit longer than without offers)."""
        look = self._wake_poll is None  # with a socket, a mark comes with a wake-up: none yet
        while True:
            if self._try_lock():
                return True
            if look and self.taken_at(offer) is not None:
                return False
            look = True
            self._doze()

    def _doze(self) -> None:
        """Sleep until a wake-up arrives, at most ``WAIT_S`` (``POLL_S`` without a wake-up socket);
        every wake-up waiting is consumed (each means only: look again)."""
        if self._wake_poll is None:
            time.sleep(POLL_S)
            return
        if self._wake_poll.poll(WAIT_S * 1000):
            with contextlib.suppress(OSError):  # BlockingIOError: all consumed
                for _ in range(64):  # bounded: a flood of them is no reason to stay here
                    self._wake_socket.recv(16)

    def _listen(self) -> None:
        """Bind this process's wake-up socket, before its first offer is visible (a holder's
        wake-up must find it). Without one (a path too long for a socket, any error) it polls."""
        if self._wake_socket is not None:
            return
        path = self._dir / _WAKE.format(self._own)
        sock = None
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            sock.bind(os.fspath(path))
            poll = select.poll()
            poll.register(sock, select.POLLIN)
        except (OSError, AttributeError):  # AttributeError: no AF_UNIX or poll on this platform
            if sock is not None:
                sock.close()
            return
        self._wake_socket, self._wake_poll = sock, poll

    def _close_sockets(self) -> None:
        sock, self._wake_socket, self._wake_poll = self._wake_socket, None, None
        if sock is not None:
            sock.close()
            with contextlib.suppress(OSError):
                (self._dir / _WAKE.format(self._own)).unlink()
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

    def _wake(self, name: str) -> None:
        """Send one byte to the wake-up socket of the process whose offer file is ``name``. Never
        blocks; a socket that is not there, or full, is no error (that writer looks by itself)."""
        with contextlib.suppress(OSError):
            if self._sender is None:
                self._sender = socket.socket(socket.AF_UNIX,
                                             socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
            self._sender.sendto(b"!", os.fspath(self._dir / _WAKE.format(name)))

    def _wake_the_waiting(self) -> None:
        """Wake every other process with a file in the directory, once this one has released the
        lock: an offer made after this turn's listing waits for the lock, and so may a new offer
        of a process already woken by its mark in this turn (one file per process). A process
        woken twice looks once more for nothing."""
        try:
            self._check_own_directory()
            names = [n for n in os.listdir(self._dir) if not n.startswith(".") and n != self._own]
        except OSError:
            return
        for name in names:
            self._wake(name)

    def offer(self, entries: list[Any]) -> Offer | None:
        """Offer ``entries`` for the next holder of the lock to commit (None: not offered, as the
        group is too large, or the directory cannot be used)."""
        if not 0 < len(entries) <= MAX_OFFERED:
            return None
        try:
            return self._offer(entries)
        except Exception:  # a full or foreign directory, an entry JSON cannot encode (any error):
            return None  # this group waits for its own turn (its callers are woken either way)

    def tidy(self) -> None:
        """Remove the directory if it is empty (a writer falling idle): no empty directory is left
        in memory per database, and no socket open per idle writer. An offer racing this fails to
        be written, and its writer commits the group itself; a mark is only ever written over an
        offer, which keeps the directory."""
        self._close_sockets()  # bound again with the next offer
        self._sweep_dead_sockets()
        with contextlib.suppress(OSError):  # not empty (another worker's offer, a dead one's mark), or gone
            os.rmdir(self._dir)

    def _sweep_dead_sockets(self) -> None:
        """Remove the wake-up sockets of processes that are gone (killed before they could close
        theirs), so that they do not keep the directory alive. A socket whose process id is in use
        again is left: it is only ever a hint, and its own writer removes it when it falls idle."""
        try:
            self._check_own_directory()
            names = [n for n in os.listdir(self._dir) if n.startswith(".") and n.endswith(".wake")]
        except OSError:
            return
        for name in names:
            try:
                os.kill(int(name[1:].split("-", 1)[0]), 0)
            except ProcessLookupError:
                with contextlib.suppress(OSError):
                    (self._dir / name).unlink()
            except (ValueError, OSError):  # not a name this module wrote, or a process of another user
                continue

    def anything_offered(self) -> bool:
        """Whether the directory holds any file besides this process's (cheap; unverified)."""
        try:
            return any(not n.startswith(".") and n != self._own for n in os.listdir(self._dir))
        except OSError:
            return False

    def release(self) -> None:
        """Give the lock back, then wake the processes whose offers wait in the directory."""
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._wake_the_waiting()

    def taken_at(self, offer: Offer) -> tuple[int, str] | None:
        """Where another process chained ``offer``'s group, by its mark: (seq of its last entry,
        hash before its first), or None if it was not taken. Unverified: see the module's doc."""
        raw = _read_regular(offer.path)
        try:
            mark = json.loads(raw) if raw is not None else None
        except ValueError:
            return None
        if not isinstance(mark, dict) or mark.get("kind") != _TAKEN or mark.get("group") != offer.group:
            return None
        last_seq, prev_hash = mark.get("last_seq"), mark.get("prev_hash")
        if not isinstance(last_seq, int) or not isinstance(prev_hash, str):
            return None
        return last_seq, prev_hash

    def withdraw(self, offer: Offer) -> None:
        """Remove this process's offer (resolved either way)."""
        offer.path.unlink(missing_ok=True)

    def offered(self) -> list[Offered]:
        """The other processes' groups waiting, valid ones only, in the order of their files' names.
        Never raises for what is in (or in place of) the directory: a directory this service would
        not offer into, or one it cannot list, holds no offers (warned once); a file that is not a
        regular file of ours of at most ``MAX_OFFER_BYTES`` is not read (nothing blocks: a FIFO, a
        symlink to a device); an offer whose MAC verifies but whose content is not a well-formed
        group (a faulty peer) is removed, and its worker, finding no mark, commits it itself."""
        try:
            self._check_own_directory()
            names = sorted(n for n in os.listdir(self._dir) if not n.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            self._warn_once(exc)
            return []
        found = []
        for name in names:
            if name == self._own:
                continue
            path = self._dir / name
            raw = _read_regular(path)
            if raw is None:
                continue
            mac, _, payload = raw.partition(b"\n")
            if not hmac.compare_digest(mac, self._mac(payload)):
                continue  # a taken mark, a foreign file, or someone without the key: not chained
            try:
                group, entries, made_at = self._parse(payload)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("query log: an offer %s was removed: %s", name, exc)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            found.append(Offered(path, group, entries, made_at))
        return found

    def _parse(self, payload: bytes) -> tuple[str, list[Any], float]:
        """An offer's group id, entries and time, checked whole (ValueError, KeyError or
        TypeError); an offer older than ``OFFER_TTL_S`` (or as far in the future) is refused."""
        body = json.loads(payload)
        if not isinstance(body, dict) or body.get("kind") != _OFFER:
            raise ValueError("not an offer")
        group, rows, made_at = body["group"], body["entries"], body["made_at"]
        if not isinstance(group, str) or not 0 < len(group) <= 64:
            raise TypeError("an offer's group is a string of at most 64 characters")
        if not isinstance(rows, list) or not 0 < len(rows) <= MAX_OFFERED:
            raise TypeError("an offer's entries are a list of 1 to MAX_OFFERED")
        if not isinstance(made_at, float) or not abs(time.time() - made_at) <= OFFER_TTL_S:
            raise ValueError("an offer older than OFFER_TTL_S (a copy, or its worker stalled)")
        return group, [self._entry(row) for row in rows], made_at

    def _check_own_directory(self) -> None:
        """Raise PermissionError unless the directory is this service's own: a real directory (not
        a symlink), of this account, that no one else can read or write (offers say who read which
        subject, and a holder reads only what this service could have offered)."""
        owner = self._dir.lstat()
        if not stat.S_ISDIR(owner.st_mode) or owner.st_uid != os.getuid() or owner.st_mode & 0o077:
            raise PermissionError(f"{self._dir} is not this service's own (0700) directory")

    def _warn_once(self, exc: OSError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("query log: offers of other workers are not taken (%s): each commits its own", exc)

    def mark_taken(self, offered: Offered, last_seq: int, prev_hash: str) -> None:
        """Tell ``offered``'s process its group is chained (after the commit returned)."""
        mark = {"kind": _TAKEN, "group": offered.group, "last_seq": last_seq, "prev_hash": prev_hash}
        self._write(offered.path, json.dumps(mark).encode("utf-8"))
        self._wake(offered.path.name)

    def _offer(self, entries: list[Any]) -> Offer:
        self._dir.mkdir(mode=0o700, exist_ok=True)
        self._check_own_directory()
        self._counter += 1
        group = f"{self._own}-{self._counter}"
        rows = [[e.at.isoformat() if f == "at" else getattr(e, f) for f in _FIELDS] for e in entries]
        payload = json.dumps({"kind": _OFFER, "group": group, "made_at": time.time(), "entries": rows},
                             ensure_ascii=False).encode("utf-8")
        if len(payload) > MAX_OFFER_BYTES - 100:  # no holder would read it
            raise ValueError("offer too large")
        path = self._dir / self._own
        self._listen()
        self._write(path, self._mac(payload) + b"\n" + payload)
        return Offer(path, group)

    def _mac(self, payload: bytes) -> bytes:
        return hmac.digest(self._key, b"querylog-offer\n" + payload, "sha256").hex().encode("ascii")

    def _entry(self, row: list[Any]) -> Any:
        if not isinstance(row, list):
            raise TypeError("an offered entry is a list")
        values = dict(zip(_FIELDS, row, strict=True))
        if not all(isinstance(values[f], str) for f in ("at", *_TEXT_FIELDS)) or not isinstance(
                values["personal_info_unmasked"], bool):
            raise TypeError("an offered entry's fields are strings and one bool")
        values["at"] = at = dt.datetime.fromisoformat(values["at"])
        if at.tzinfo is None:
            raise ValueError("an offered entry's time has a zone")
        return self._new_entry(**values)

    def _write(self, path: Path, data: bytes) -> None:
        """Replace ``path`` by ``data`` at once (a reader sees the old file or the new, whole)."""
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
        try:
            view = memoryview(data)
            while view:  # no fsync: an offer or a mark only matters while the processes live
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.replace(tmp, path)


def _read_regular(path: Path) -> bytes | None:
    """The content of ``path`` if it is a regular file of this account of at most
    ``MAX_OFFER_BYTES``, else None. Opened without following a symlink and without blocking (a
    FIFO's ``open`` would wait for a writer), checked on the open descriptor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_size > MAX_OFFER_BYTES:
            return None
        chunks, left = [], MAX_OFFER_BYTES + 1
        while left > 0 and (chunk := os.read(fd, left)):
            chunks.append(chunk)
            left -= len(chunk)
        return None if left <= 0 else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
