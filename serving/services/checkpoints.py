"""Signed checkpoints of the query log: its head anchored outside the database.

A checkpoint says "entry ``seq`` of this log had MAC ``mac`` at time ``at``, and the keyed chain
began at ``keyed_from``", signed with the service's Ed25519 key. Checkpoints are appended, one
JSON line each, to a file outside the database (``Settings.checkpoint_path``), which an admin can
download (``GET /api/v1/admin/querylog/checkpoints``) for a second party to keep, with the public
key (``…/public-key``).

Someone who can write the database can delete entries, empty the tables or rebuild the chain, but
cannot make the entry at a checkpoint's ``seq`` carry the signed MAC again, nor sign a new
checkpoint. A later check can also start from the last checkpoint it trusts (``seq`` and ``mac``
are all it needs to go on) instead of from the first entry.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from serving.services.worker_thread import wake_or_start

CHECKPOINT_VERSION = 1
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    mac: str
    at: str  # ISO 8601 UTC, when it was signed
    keyed_from: int
    signature: str = ""  # base64 Ed25519 signature of ``signed_bytes``
    v: int = CHECKPOINT_VERSION

    def signed_bytes(self) -> bytes:
        """What the signature covers: every field but the signature, as canonical JSON."""
        body = {"v": self.v, "seq": self.seq, "mac": self.mac, "at": self.at, "keyed_from": self.keyed_from}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def sign_checkpoint(signing_key_hex: str, seq: int, mac: str, keyed_from: int,
                    at: dt.datetime | None = None) -> Checkpoint:
    when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    unsigned = Checkpoint(seq=seq, mac=mac, at=when, keyed_from=keyed_from)
    signature = _signer(signing_key_hex).sign(unsigned.signed_bytes())
    return Checkpoint(seq=seq, mac=mac, at=when, keyed_from=keyed_from,
                      signature=base64.b64encode(signature).decode("ascii"))


@lru_cache(maxsize=8)
def _signer(signing_key_hex: str) -> Any:
    """The Ed25519 key of ``signing_key_hex``, parsed once (``serving.keys.signing_key``)."""
    from serving.keys import signing_key

    return signing_key(signing_key_hex)


def prepare_signer(signing_key_hex: str) -> None:
    """Parse the signing key now (the service's startup), not at the first checkpoint."""
    _signer(signing_key_hex)


def keyed_from_path(checkpoints: Path) -> Path:
    """Where the start of the keyed chain is recorded: next to the checkpoint file (by default
    in the keys directory, beside the MAC key), outside the database."""
    return checkpoints.with_name("querylog-keyed-from")


def recorded_keyed_from(checkpoints: Path) -> int | None:
    """The start of the keyed chain recorded beside ``checkpoints`` (None before the first checkpoint)."""
    try:
        return int(keyed_from_path(checkpoints).read_text(encoding="utf-8").strip())
    except FileNotFoundError:
        return None
    except ValueError:
        return -1  # unreadable: never equal to the head's, so the check reports it


def append_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    """Append one line and fsync it. Several workers append to the same file: each line is one
    ``write`` on a file opened with O_APPEND, so lines never interleave. The first checkpoint also
    records the keyed chain's start (``keyed_from_path``, written once, never replaced): someone
    who can write the database cannot then move it to make keyed entries pass the unkeyed check,
    even after deleting the checkpoint file."""
    from serving.keys import write_private

    record = keyed_from_path(path)
    if not record.exists():
        write_private(record, f"{checkpoint.keyed_from}\n", exclusive=True)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (checkpoint.line() + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ReadCheckpoint:
    """One line of a checkpoint file: the checkpoint if it parses and its signature verifies,
    else why not (``problem``)."""

    line_no: int
    checkpoint: Checkpoint | None
    problem: str | None = None


def read_checkpoints(path: Path, public_key: Any) -> Iterator[ReadCheckpoint]:
    """Every line of ``path`` checked against ``public_key`` (an Ed25519 public key)."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as lines:
        for n, text in enumerate(lines, 1):
            if text.strip():
                yield _checked_line(n, text, public_key)


def read_last_checkpoints(path: Path, public_key: Any, wanted: int = 16, block: int = 1 << 16) -> list[ReadCheckpoint]:
    """The last lines of ``path``, read backwards, up to and including the ``wanted``-th valid
    checkpoint from the end (or the whole file if it holds fewer), each checked as
    ``read_checkpoints`` does; ``line_no`` counts from the end (-1: the last line). Reads and
    verifies a bounded part of the file however long it grows (a year of checkpoints at the
    service's interval is millions of lines). ``wanted`` > 1 because several workers append:
    the lines near the end need not be in the order of their ``seq``."""
    if not path.is_file():
        return []
    out: list[ReadCheckpoint] = []
    valid = 0
    with path.open("rb") as raw:
        pos = raw.seek(0, os.SEEK_END)
        pending = b""  # the start of the file up to ``pos`` not yet split into lines
        n = 0
        while True:
            if pos > 0:
                start = max(0, pos - block)
                raw.seek(start)
                pending = raw.read(pos - start) + pending
                pos = start
            lines = pending.split(b"\n")
            # the first piece may be the end of a line that starts in an earlier block
            pending, lines = (lines[0], lines[1:]) if pos > 0 else (b"", lines)
            for text in reversed(lines):
                line = text.decode("utf-8", errors="replace")
                if not line.strip():
                    continue
                n += 1
                read = _checked_line(-n, line, public_key)
                out.append(read)
                valid += read.checkpoint is not None
                if valid >= wanted:
                    return out
            if pos == 0:
                break
    return out


def _checked_line(n: int, text: str, public_key: Any) -> ReadCheckpoint:
    from cryptography.exceptions import InvalidSignature

    try:
        fields = json.loads(text)
        checkpoint = Checkpoint(seq=int(fields["seq"]), mac=str(fields["mac"]), at=str(fields["at"]),
                                keyed_from=int(fields["keyed_from"]), signature=str(fields["signature"]),
                                v=int(fields.get("v", CHECKPOINT_VERSION)))
        public_key.verify(base64.b64decode(checkpoint.signature), checkpoint.signed_bytes())
    except InvalidSignature:
        return ReadCheckpoint(n, None, "signature does not verify")
    except (ValueError, KeyError, TypeError) as exc:
        return ReadCheckpoint(n, None, f"not a checkpoint ({type(exc).__name__})")
    return ReadCheckpoint(n, checkpoint)


def load_public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the checkpoint public key must be an Ed25519 key")
    return key


class CheckpointWriter:
    """Signs and appends checkpoints in its own thread, so the query log's writer hands over the
    head it committed and goes on committing: it never waits for a signature or for the checkpoint
    file's fsync (which, on a busy disk, can take as long as many commits). Only the newest head
    handed over is written; the thread starts on demand and ends after ``idle_s`` without work."""

    def __init__(self, path: Path, signing_key_hex: str, idle_s: float = 1.0) -> None:
        self._path, self._key, self._idle_s = path, signing_key_hex, idle_s
        _signer(signing_key_hex)  # parsed (and ``cryptography`` imported) now, not in the thread
        self._cond = threading.Condition()
        self._pending: tuple[int, str, int] | None = None
        self._written = 0
        self._thread: threading.Thread | None = None

    def submit(self, head: tuple[int, str, int]) -> None:
        """Have (seq, mac, keyed_from) signed soon, unless a later head is signed or pending."""
        with self._cond:
            if head[0] <= max(self._written, self._pending[0] if self._pending else 0):
                return
            self._pending = head
            self._thread = wake_or_start(self._cond, self._thread, self._run, "querylog-checkpoints")

    def flush(self, timeout_s: float = 10.0) -> None:
        """Wait until every head handed over is written (for tests and a graceful stop)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._pending is not None and time.monotonic() < deadline:
                self._cond.wait(0.05)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._pending is None:
                    self._cond.wait(self._idle_s)
                if self._pending is None:
                    self._thread = None
                    return
                head = self._pending
            try:
                append_checkpoint(self._path, sign_checkpoint(self._key, *head))
            except Exception:  # a full disk must not stop the log: the check then names an older checkpoint
                logger.exception("could not write a query-log checkpoint to %s", self._path)
            with self._cond:
                self._written = max(self._written, head[0])
                if self._pending == head:
                    self._pending = None
                self._cond.notify_all()


_checkpoint_writers: dict[tuple[Path, str], CheckpointWriter] = {}
_checkpoint_writers_lock = threading.Lock()


def checkpoint_writer(path: Path, signing_key_hex: str) -> CheckpointWriter:
    """The process's checkpoint writer for one checkpoint file and key (made on first use)."""
    with _checkpoint_writers_lock:
        writer = _checkpoint_writers.get((path, signing_key_hex))
        if writer is None:
            writer = _checkpoint_writers[(path, signing_key_hex)] = CheckpointWriter(path, signing_key_hex)
        return writer
