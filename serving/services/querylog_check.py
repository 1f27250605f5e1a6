"""``tiers querylog check``: rows, chain, head and signed checkpoints of the query log, and the
name of every break found (docs/security.md, "The query log").

Breaks, by kind:

- ``missing_head``: the head row is gone.
- ``missing_entry``: a gap in the sequence numbers (entries deleted in the middle).
- ``broken_link``: an entry's ``prev_hash`` is not the previous entry's hash (reordered, inserted).
- ``rewritten_row``: an entry's content does not match its MAC (edited, or rehashed without the
  key, e.g. with the old unkeyed function).
- ``deleted_tail``: entries a checkpoint (or the head) vouches for are gone from the end.
- ``truncated``: the log is empty although a checkpoint vouches for entries.
- ``head_mismatch``: the head row does not point at the last entry.
- ``replaced``: the entry at a checkpoint's sequence number carries another MAC than the signed
  one, or the keyed chain's start moved: the log was rebuilt, by someone holding the MAC key.
- ``bad_checkpoint``: a line of the checkpoint file is not a checkpoint this key signed.
- ``keyed_from_moved``: the head's ``keyed_from`` is not the one recorded outside the database
  beside the checkpoints (``checkpoints.keyed_from_path``): moved so that keyed entries pass the
  unkeyed check.
- ``no_checkpoint``: keyed entries older than the checkpoint interval allows, and not one valid
  checkpoint (the file was deleted or emptied): nothing anchors the head outside the database.
  A file holding only checkpoints of the empty log (entry 0, signed at the service's first start)
  is judged by how long the unanchored entries took to write: one run of the service signs within
  its interval, so entries written over longer than the grace without a checkpoint of any of them
  mean the later checkpoints were removed; a shorter span is a service killed before its first
  checkpoint (an ordinary crash, anchored at its next start), not tampering.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.tables import QueryLogEntry, QueryLogHead
from serving.services.checkpoints import (
    Checkpoint,
    ReadCheckpoint,
    read_checkpoints,
    read_last_checkpoints,
    recorded_keyed_from,
)
from serving.services.querylog import GENESIS_HASH, LoggedRead, canonical_entry, keys_for, stored_time
from serving.services.querylog_macs import ROW_COLUMNS, MacPads, canonical_time, row_pieces


@dataclass(frozen=True)
class Break:
    kind: str
    seq: int | None
    detail: str


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None
    breaks: list[Break] = field(default_factory=list)
    legacy_entries: int = 0  # chained before the keys (migration 0003), checked with the unkeyed function
    checkpoints: int = 0  # valid checkpoints compared
    checkpoint: Checkpoint | None = None  # the latest of them
    checked_from: int = 1  # the first entry walked (an incremental check starts at the latest checkpoint)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["checkpoint"] = asdict(self.checkpoint) if self.checkpoint else None
        return out


def check_chain(session: Session, *, checkpoint_file: Path | None = None, public_key: Any = None,
                batch_size: int = 5000, incremental: bool = False) -> ChainCheck:
    """Check the log of ``session``'s database with the keys registered for it
    (``querylog.use_keys``), against its checkpoint file, or ``checkpoint_file`` verified with
    ``public_key`` (a second party's copy). ``incremental``: from the latest valid checkpoint on
    (see ``check_log``); the checkpoint file is then read from its end, up to the last few valid
    checkpoints (``read_last_checkpoints``), so neither the log nor the file before the latest
    checkpoint is read: the cost follows the entries since it."""
    from serving.keys import signing_key

    keys = keys_for(session.get_bind().url)
    path = checkpoint_file or keys.checkpoints
    key = public_key or signing_key(keys.signing_key).public_key()
    # the service signs within its interval and whenever it falls idle: an older unanchored
    # keyed entry means the checkpoints were removed
    grace = dt.timedelta(seconds=max(60.0, 3 * keys.checkpoint_interval_s))
    lines = read_last_checkpoints(path, key) if incremental else read_checkpoints(path, key)
    return check_log(session, keys.mac_key, lines, batch_size=batch_size,
                     incremental=incremental, recorded_start=recorded_keyed_from(keys.checkpoints),
                     checkpoint_grace=grace)


def check_log(session: Session, mac_key: str, checkpoints: Iterable[ReadCheckpoint] = (),
              batch_size: int = 5000, incremental: bool = False, *, recorded_start: int | None = None,
              checkpoint_grace: dt.timedelta | None = None) -> ChainCheck:
    """Walk every entry in order, then compare the head and each valid checkpoint. Entries are
    streamed (``batch_size`` rows at a time, as plain rows): memory does not grow with the log.

    ``incremental``: start at the entry the latest valid checkpoint signed instead of the first.
    That entry must still carry the signed MAC (else ``replaced``) and its own MAC; every later
    entry is checked as in the full walk, so the cost follows the entries since the checkpoint.
    Entries before it are vouched for by the signature only: a rewrite there, by someone without
    the MAC key, is found by the full check, not by this one.
    ``recorded_start``: the keyed chain's start recorded outside the database (it wins over the
    head's); ``checkpoint_grace``: keyed entries older than this must be under a checkpoint."""
    head = session.get(QueryLogHead, 1)
    anchors = _compare_checkpoints(session, checkpoints)
    breaks = list(anchors.bad)
    if head is None:
        breaks.append(Break("missing_head", None, "the head row of the log is gone"))
    # where the keyed chain starts: the head says; without a head, the checkpoints do
    keyed_from = head.keyed_from if head is not None else (anchors.keyed_from[1] if anchors.count else 1)
    if recorded_start is not None:
        if head is not None and head.keyed_from != recorded_start:
            breaks.append(Break("keyed_from_moved", None, f"the head says the keyed chain starts at entry "
                                f"{head.keyed_from}, the record outside the database says {recorded_start}"))
        keyed_from = recorded_start
    latest = anchors.latest
    start = max(1, latest.seq) if incremental and latest is not None else 1  # entry 0: the empty log
    walk = _walk(_row_batches(session, start, batch_size), start=start, keyed_from=keyed_from, mac_key=mac_key)
    breaks += walk.breaks
    if head is not None:
        if head.seq > walk.last_seq:
            breaks.append(Break("deleted_tail", walk.last_seq + 1,
                                f"the head counts {head.seq} entries, the last one left is {walk.last_seq}"))
        elif head.seq != walk.last_seq or head.last_hash != walk.prev:
            breaks.append(Break("head_mismatch", walk.last_seq, "the head row does not point at the last entry"))
    breaks += _against_checkpoints(anchors, walk.last_seq, walk.count, head)
    if (unanchored := _unanchored(anchors, walk, checkpoint_grace)) is not None:
        breaks.append(unanchored)
    located = [b.seq for b in breaks if b.seq is not None]
    return ChainCheck(ok=not breaks, entries=walk.count, first_broken_seq=min(located) if located else None,
                      problem=breaks[0].detail if breaks else None, breaks=breaks, legacy_entries=walk.legacy,
                      checkpoints=anchors.count, checkpoint=latest, checked_from=start)


@dataclass
class _Walked:
    """What walking the rows found: breaks of the rows themselves, and what the head and the
    checkpoints are compared with afterwards."""

    breaks: list[Break] = field(default_factory=list)
    prev: str | None = None  # the last entry's hash
    last_seq: int = 0
    count: int = 0
    legacy: int = 0
    rewritten: int = 0
    oldest_keyed: dt.datetime | None = None
    newest_keyed: dt.datetime | None = None


def _unanchored(anchors: _Anchors, walk: _Walked, grace: dt.timedelta | None) -> Break | None:
    """``no_checkpoint`` when keyed entries older than ``grace`` have no checkpoint of any entry:
    with no valid checkpoint at all (the file deleted or emptied), or with only checkpoints of the
    empty log (entry 0) and entries written over longer than ``grace`` (one run of the service
    signs within its interval and when it falls idle: only the checkpoints' removal leaves such a
    span unanchored; a shorter one is a service killed before its first checkpoint)."""
    if (grace is None or walk.oldest_keyed is None or walk.oldest_keyed >= dt.datetime.now(dt.UTC) - grace
            or (anchors.latest is not None and anchors.latest.seq > 0)):
        return None
    since = f"keyed entries since {walk.oldest_keyed:%Y-%m-%d %H:%M}"
    if anchors.count == 0:
        return Break("no_checkpoint", None, f"{since} and no valid checkpoint: the checkpoint file was deleted "
                     "or emptied")
    newest = walk.newest_keyed or walk.oldest_keyed
    if newest - walk.oldest_keyed <= grace:
        return None
    return Break("no_checkpoint", None, f"{since}, written until {newest:%Y-%m-%d %H:%M}, and only checkpoints "
                 "of the empty log: the later checkpoints were deleted")


def _walk(batches: Iterable[list[tuple[Any, ...]]], *, start: int, keyed_from: int, mac_key: str) -> _Walked:
    """Check rows (tuples of ``ROW_COLUMNS``, in ``seq`` order from ``start``) one by one: the
    sequence has no gap, each ``prev_hash`` is the previous entry's hash (from a checkpoint, the
    first one's is covered by its MAC instead), each MAC matches its content (the unkeyed hash
    before ``keyed_from``). One loop, locals only, the MAC's text from cached pieces
    (``querylog_macs``): a row costs a few microseconds."""
    out = _Walked(prev=GENESIS_HASH if start == 1 else None)
    breaks = _Capped(out.breaks)
    prev, expected, last_seq, count, legacy, rewritten = out.prev, start, 0, 0, 0, 0
    pads = MacPads(mac_key.encode("utf-8"))
    pieces: dict[tuple[Any, ...], tuple[str, str] | None] = {}
    quote = encode_basestring
    at: Any = None
    for rows in batches:
        for (seq, prev_hash, entry_hash, at, actor, kind, role, endpoint, outcome, unmasked, purpose,
             uscc) in rows:
            if seq != expected:
                breaks.append(Break("missing_entry", expected, f"entries {expected}–{seq - 1} are missing"))
            elif prev is not None and prev_hash != prev:
                breaks.append(Break("broken_link", seq, "prev_hash is not the previous entry's hash"))
            if seq < keyed_from:
                legacy += 1
                link = _general_link(None, prev_hash, at, actor, kind, role, endpoint, outcome, unmasked, purpose,
                                     uscc, seq)
            else:
                if out.oldest_keyed is None:
                    out.oldest_keyed = _time_or_epoch(at)
                what = (actor, kind, role, endpoint, outcome, unmasked, purpose)
                around = pieces.get(what, False)
                if around is False:
                    if len(pieces) > 10_000:  # bounded memory on any log
                        pieces.clear()
                    around = pieces[what] = row_pieces(*what)
                when = canonical_time(at)
                if around is None or when is None or type(uscc) is not str or type(seq) is not int:
                    link = _general_link(pads, prev_hash, at, actor, kind, role, endpoint, outcome, unmasked,
                                         purpose, uscc, seq)
                else:
                    link = pads.hexdigest(f'{prev_hash}{around[0]}{when}{around[1]}{seq},"uscc":{quote(uscc)}}}'
                                          .encode())
            if link != entry_hash:
                rewritten += 1
                if rewritten == 1:
                    breaks.append(Break("rewritten_row", seq, "its content does not match its MAC: rewritten "
                                        "(or rehashed without the key)"))
            prev, expected, last_seq = entry_hash, seq + 1, seq
            count += 1
    breaks.close()
    if count and last_seq >= keyed_from:
        out.newest_keyed = _time_or_epoch(at)  # the last row's: the walk is in ``seq`` order
    if rewritten > 1:
        out.breaks[:] = [b if b.kind != "rewritten_row" else
                         Break(b.kind, b.seq, f"{b.detail}; {rewritten:,} entries in all") for b in out.breaks]
    out.prev, out.last_seq, out.count, out.legacy, out.rewritten = prev, last_seq, count, legacy, rewritten
    return out


_MAX_BREAKS = 100  # of one kind: a log with every other entry deleted must not fill the memory


class _Capped:
    """A list of breaks holding at most ``_MAX_BREAKS`` of each kind; ``close`` notes how many more
    there were on the last one kept."""

    def __init__(self, into: list[Break]) -> None:
        self._into, self._seen = into, collections.Counter[str]()

    def append(self, found: Break) -> None:
        self._seen[found.kind] += 1
        if self._seen[found.kind] <= _MAX_BREAKS:
            self._into.append(found)

    def close(self, noun: str = "breaks of this kind") -> None:
        for kind, seen in self._seen.items():
            if seen > _MAX_BREAKS:
                i = max(n for n, b in enumerate(self._into) if b.kind == kind)
                b = self._into[i]
                self._into[i] = Break(b.kind, b.seq, f"{b.detail}; {seen:,} {noun} in all")


def _general_link(pads: MacPads | None, prev_hash: Any, at: Any, actor: Any, kind: Any, role: Any, endpoint: Any,
                  outcome: Any, unmasked: Any, purpose: Any, uscc: Any, seq: Any) -> str | None:
    """An entry's link by the definition (``canonical_entry``) for a row the fast path does not
    take: an entry before the keys (the unkeyed hash, ``pads`` None), a time in another form, a
    field that is not text. None if the row cannot be read as an entry at all (it then fails its
    MAC, as a rewritten row)."""
    try:
        entry = LoggedRead(at=stored_time(at), actor=actor, actor_role=role, actor_kind=kind, uscc=uscc,
                           purpose=purpose, endpoint=endpoint, outcome=outcome,
                           personal_info_unmasked=bool(unmasked), seq=seq)
        text = (prev_hash + canonical_entry(entry)).encode("utf-8")
    except (TypeError, ValueError, AttributeError, OverflowError):
        return None
    return hashlib.sha256(text).hexdigest() if pads is None else pads.hexdigest(text)


def _time_or_epoch(at: Any) -> dt.datetime:
    try:
        return stored_time(at)
    except (TypeError, ValueError, AttributeError):
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # unreadable: old enough to want a checkpoint


def _row_batches(session: Session, start: int, batch_size: int) -> Iterator[list[tuple[Any, ...]]]:
    """The log's rows from ``start`` on, in ``seq`` order, as plain tuples of ``ROW_COLUMNS``,
    ``batch_size`` at a time, on the driver's cursor in the session's transaction (the ORM's
    rows cost more than their check). Memory holds one batch: SQLite steps the statement, and
    PostgreSQL's rows come through a server-side cursor. The time is read as stored text
    (SQLite's ``YYYY-MM-DD HH:MM:SS.ffffff``; PostgreSQL's formatted the same, in UTC): parsing
    it into a datetime and printing it again cost more than its MAC."""
    connection = session.connection()
    dialect = connection.dialect.name
    columns = list(ROW_COLUMNS)
    if dialect == "postgresql":
        columns[ROW_COLUMNS.index("at")] = "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
    sql = (f"SELECT {', '.join(columns)} FROM query_log "  # noqa: S608 # constant names and an int, never input
           f"WHERE seq >= {int(start)} ORDER BY seq")
    raw = connection.connection.dbapi_connection
    cursor = raw.cursor(name="tiers_querylog_check") if dialect == "postgresql" else raw.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(batch_size):
            yield rows
    finally:
        cursor.close()


@dataclass
class _Anchors:
    """The valid checkpoints, summed up as they stream past (a year of them is millions of lines:
    none is kept), and the unreadable lines (at most ``_MAX_BREAKS``)."""

    count: int = 0
    latest: Checkpoint | None = None
    keyed_from: tuple[int, int] = (0, 0)  # the least and the greatest signed
    replaced: Checkpoint | None = None  # the lowest whose entry carries another MAC than the signed one
    bad: list[Break] = field(default_factory=list)


def _compare_checkpoints(session: Session, checkpoints: Iterable[ReadCheckpoint], chunk: int = 1000) -> _Anchors:
    """Read ``checkpoints`` once, in chunks: each valid one's entry is looked up by its number and
    compared with the signed MAC (an entry that is gone is the walk's to report). Memory holds one
    chunk, however long the file."""
    out = _Anchors()
    bad = _Capped(out.bad)
    pending: list[Checkpoint] = []

    def compare() -> None:
        log = QueryLogEntry.__table__
        found = session.execute(select(log.c.seq, log.c.entry_hash).where(log.c.seq.in_({c.seq for c in pending})))
        stored = {seq: mac for seq, mac in found}
        for c in pending:
            mac = stored.get(c.seq)
            if mac is not None and mac != c.mac and (out.replaced is None or c.seq < out.replaced.seq):
                out.replaced = c
        pending.clear()

    for read in checkpoints:
        c = read.checkpoint
        if c is None:
            where = read.line_no if read.line_no > 0 else f"{-read.line_no} from the end"
            bad.append(Break("bad_checkpoint", None, f"checkpoint line {where}: {read.problem}"))
            continue
        out.keyed_from = ((c.keyed_from, c.keyed_from) if out.count == 0 else
                          (min(out.keyed_from[0], c.keyed_from), max(out.keyed_from[1], c.keyed_from)))
        out.count += 1
        if out.latest is None or c.seq > out.latest.seq:
            out.latest = c
        pending.append(c)
        if len(pending) >= chunk:
            compare()
    if pending:
        compare()
    bad.close("unreadable lines")
    return out


def _against_checkpoints(anchors: _Anchors, last_seq: int, count: int, head: QueryLogHead | None) -> list[Break]:
    breaks: list[Break] = []
    latest = anchors.latest
    if latest is not None and latest.seq > last_seq:
        if count == 0:
            breaks.append(Break("truncated", 1, f"the log is empty; the checkpoint of {latest.at} vouches for "
                                f"{latest.seq} entries"))
        else:
            breaks.append(Break("deleted_tail", last_seq + 1, f"the checkpoint of {latest.at} vouches for entry "
                                f"{latest.seq}; the last one left is {last_seq}"))
    if (replaced := anchors.replaced) is not None:
        breaks.append(Break("replaced", replaced.seq, f"entry {replaced.seq} is not the one signed on "
                            f"{replaced.at}: the log was rebuilt (by someone holding the MAC key)"))
    if head is not None and anchors.count and anchors.keyed_from != (head.keyed_from, head.keyed_from):
        breaks.append(Break("replaced", None, "the keyed chain's start (keyed_from) is not the one signed in the "
                            "checkpoints"))
    return breaks
