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
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from serving.db.models import QueryLogEntry, QueryLogHead
from serving.services.checkpoints import Checkpoint, ReadCheckpoint, read_checkpoints
from serving.services.querylog import GENESIS_HASH, chain_hash, entry_mac, keys_for


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

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["checkpoint"] = asdict(self.checkpoint) if self.checkpoint else None
        return out


def check_chain(session: Session, *, checkpoint_file: Path | None = None, public_key: Any = None,
                batch_size: int = 5000) -> ChainCheck:
    """Check the log of ``session``'s database with the keys registered for it
    (``querylog.use_keys``), against its checkpoint file, or ``checkpoint_file`` verified with
    ``public_key`` (a second party's copy)."""
    from serving.keys import signing_key

    keys = keys_for(session.get_bind().url)
    path = checkpoint_file or keys.checkpoints
    key = public_key or signing_key(keys.signing_key).public_key()
    return check_log(session, keys.mac_key, read_checkpoints(path, key), batch_size=batch_size)


def check_log(session: Session, mac_key: str, checkpoints: Iterable[ReadCheckpoint] = (),
              batch_size: int = 5000) -> ChainCheck:
    """Walk every entry in order, then compare the head and each valid checkpoint."""
    breaks: list[Break] = []
    valid: list[Checkpoint] = []
    for read in checkpoints:
        if read.checkpoint is None:
            breaks.append(Break("bad_checkpoint", None, f"checkpoint line {read.line_no}: {read.problem}"))
        else:
            valid.append(read.checkpoint)
    head = session.get(QueryLogHead, 1)
    if head is None:
        breaks.append(Break("missing_head", None, "the head row of the log is gone"))
    # where the keyed chain starts: the head says; without a head, the checkpoints do
    keyed_from = head.keyed_from if head is not None else max((c.keyed_from for c in valid), default=1)
    wanted = {c.seq for c in valid}
    at_checkpoint: dict[int, str] = {}
    prev, expected, last_seq, count, legacy, rewritten = GENESIS_HASH, 1, 0, 0, 0, 0
    stmt = select(QueryLogEntry).order_by(QueryLogEntry.seq).execution_options(yield_per=batch_size)
    for entry in session.scalars(stmt):
        count += 1
        if entry.seq != expected:
            breaks.append(Break("missing_entry", expected, f"entries {expected}–{entry.seq - 1} are missing"))
        elif entry.prev_hash != prev:
            breaks.append(Break("broken_link", entry.seq, "prev_hash is not the previous entry's hash"))
        is_legacy = entry.seq < keyed_from
        legacy += is_legacy
        link = chain_hash(entry.prev_hash, entry) if is_legacy else entry_mac(mac_key, entry.prev_hash, entry)
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
    located = [b.seq for b in breaks if b.seq is not None]
    return ChainCheck(ok=not breaks, entries=count, first_broken_seq=min(located) if located else None,
                      problem=breaks[0].detail if breaks else None, breaks=breaks, legacy_entries=legacy,
                      checkpoints=len(valid), checkpoint=max(valid, key=lambda c: c.seq, default=None))


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
