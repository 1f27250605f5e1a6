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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from serving.db.tables import QueryLogEntry, QueryLogHead
from serving.services.checkpoints import (
    Checkpoint,
    ReadCheckpoint,
    read_checkpoints,
    read_last_checkpoints,
    recorded_keyed_from,
)
from serving.services.querylog import (
    GENESIS_HASH,
    CanonicalHeads,
    LoggedRead,
    chain_hash,
    keys_for,
    stored_time,
)


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
    breaks: list[Break] = []
    valid: list[Checkpoint] = []
    for read in checkpoints:
        if read.checkpoint is None:
            where = read.line_no if read.line_no > 0 else f"{-read.line_no} from the end"
            breaks.append(Break("bad_checkpoint", None, f"checkpoint line {where}: {read.problem}"))
        else:
            valid.append(read.checkpoint)
    head = session.get(QueryLogHead, 1)
    if head is None:
        breaks.append(Break("missing_head", None, "the head row of the log is gone"))
    # where the keyed chain starts: the head says; without a head, the checkpoints do
    keyed_from = head.keyed_from if head is not None else max((c.keyed_from for c in valid), default=1)
    if recorded_start is not None:
        if head is not None and head.keyed_from != recorded_start:
            breaks.append(Break("keyed_from_moved", None, f"the head says the keyed chain starts at entry "
                                f"{head.keyed_from}, the record outside the database says {recorded_start}"))
        keyed_from = recorded_start
    oldest_keyed: dt.datetime | None = None
    wanted = {c.seq for c in valid}
    at_checkpoint: dict[int, str] = {}
    start = max((c.seq for c in valid), default=1) if incremental else 1
    # from a checkpoint, the link before its entry is the one the signed MAC covers
    prev: str | None = GENESIS_HASH if start == 1 else None
    expected, last_seq, count, legacy, rewritten = start, 0, 0, 0, 0
    log = QueryLogEntry.__table__
    heads, key = CanonicalHeads(), mac_key.encode("utf-8")
    # ``at`` as stored (a string on SQLite): converting each to a datetime and back to text cost
    # more than its MAC; CanonicalHeads reads either
    columns = [type_coerce(c, String).label("at") if c.key == "at" else c for c in log.columns]
    stmt = (select(*columns).where(log.c.seq >= start).order_by(log.c.seq)
            .execution_options(yield_per=batch_size))
    for entry in session.execute(stmt):
        count += 1
        if entry.seq != expected:
            breaks.append(Break("missing_entry", expected, f"entries {expected}–{entry.seq - 1} are missing"))
        elif prev is not None and entry.prev_hash != prev:
            breaks.append(Break("broken_link", entry.seq, "prev_hash is not the previous entry's hash"))
        is_legacy = entry.seq < keyed_from
        legacy += is_legacy
        if not is_legacy and oldest_keyed is None:
            oldest_keyed = stored_time(entry.at)
        link = (chain_hash(entry.prev_hash, _timed(entry)) if is_legacy
                else heads.mac(key, entry.prev_hash, entry))
        if link != entry.entry_hash:
            rewritten += 1
            if rewritten == 1:
                breaks.append(Break("rewritten_row", entry.seq, "its content does not match its MAC: rewritten "
                                    "(or rehashed without the key)"))
        if entry.seq in wanted:
            at_checkpoint[entry.seq] = entry.entry_hash
        prev, expected, last_seq = entry.entry_hash, entry.seq + 1, entry.seq
    if rewritten > 1:
        breaks = [b if b.kind != "rewritten_row" else
                  Break(b.kind, b.seq, f"{b.detail}; {rewritten} entries in all") for b in breaks]
    if head is not None:
        if head.seq > last_seq:
            breaks.append(Break("deleted_tail", last_seq + 1,
                                f"the head counts {head.seq} entries, the last one left is {last_seq}"))
        elif head.seq != last_seq or head.last_hash != prev:
            breaks.append(Break("head_mismatch", last_seq, "the head row does not point at the last entry"))
    breaks += _against_checkpoints(valid, at_checkpoint, last_seq, count, head)
    if (not valid and checkpoint_grace is not None and oldest_keyed is not None
            and oldest_keyed < dt.datetime.now(dt.UTC) - checkpoint_grace):
        breaks.append(Break("no_checkpoint", None, f"keyed entries since {oldest_keyed:%Y-%m-%d %H:%M} and no "
                            "valid checkpoint: the checkpoint file was deleted or emptied"))
    located = [b.seq for b in breaks if b.seq is not None]
    return ChainCheck(ok=not breaks, entries=count, first_broken_seq=min(located) if located else None,
                      problem=breaks[0].detail if breaks else None, breaks=breaks, legacy_entries=legacy,
                      checkpoints=len(valid), checkpoint=max(valid, key=lambda c: c.seq, default=None),
                      checked_from=start)


def _timed(entry: Any) -> LoggedRead:
    """A row read with its time unconverted, as the entry it stores (for the unkeyed function)."""
    return LoggedRead(at=stored_time(entry.at), actor=entry.actor, actor_role=entry.actor_role,
                      actor_kind=entry.actor_kind, uscc=entry.uscc, purpose=entry.purpose, endpoint=entry.endpoint,
                      outcome=entry.outcome, personal_info_unmasked=entry.personal_info_unmasked, seq=entry.seq)


def _against_checkpoints(valid: list[Checkpoint], at_checkpoint: dict[int, str], last_seq: int, count: int,
                         head: QueryLogHead | None) -> list[Break]:
    breaks: list[Break] = []
    latest = max(valid, key=lambda c: c.seq, default=None)
    if latest is not None and latest.seq > last_seq:
        if count == 0:
            breaks.append(Break("truncated", 1, f"the log is empty; the checkpoint of {latest.at} vouches for "
                                f"{latest.seq} entries"))
        else:
            breaks.append(Break("deleted_tail", last_seq + 1, f"the checkpoint of {latest.at} vouches for entry "
                                f"{latest.seq}; the last one left is {last_seq}"))
    for checkpoint in sorted(valid, key=lambda c: c.seq):
        stored = at_checkpoint.get(checkpoint.seq)
        if stored is not None and stored != checkpoint.mac:
            breaks.append(Break("replaced", checkpoint.seq, f"entry {checkpoint.seq} is not the one signed on "
                                f"{checkpoint.at}: the log was rebuilt (by someone holding the MAC key)"))
            break
    if head is not None and any(c.keyed_from != head.keyed_from for c in valid):
        breaks.append(Break("replaced", None, "the keyed chain's start (keyed_from) is not the one signed in the "
                            "checkpoints"))
    return breaks
