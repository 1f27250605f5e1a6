"""The MAC of stored query-log rows, computed fast enough to check a day of reads in well under
a second (issue 22): ``querylog.entry_mac`` stays the definition, this gives the same digest for
rows read as plain tuples.

Two costs dominated the checker's walk, besides reading the rows: building each entry's
canonical JSON, and HMAC itself. The canonical text of a row is who read (actor, kind, role) +
its time + what was read (endpoint, outcome, unmasked, purpose) + ``seq`` and ``uscc``; the who
and what parts repeat across entries, so they are serialised once per distinct value and the rest
is one f-string. ``hmac.digest`` derives the key's inner and outer pads for every message; here
they are hashed once (``MacPads``) and each message costs a copy of each prepared hash, which is
RFC 2104 HMAC-SHA256 exactly (a test holds it equal to ``hmac``), at about half the time.

Shared by nobody else yet; the append path (``querylog._link``) could use ``MacPads`` too.
"""

from __future__ import annotations

import hashlib
from json.encoder import encode_basestring
from typing import Any

_BLOCK = 64  # SHA-256's block size: HMAC pads the key to it
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class MacPads:
    """HMAC-SHA256 under one key with its pads hashed once: ``hexdigest(msg)`` is
    ``hmac.new(key, msg, hashlib.sha256).hexdigest()``."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


# The columns a checker reads, in this order: every hashed field and both hashes. The canonical
# JSON's keys are sorted: actor, actor_kind, actor_role, at, endpoint, outcome,
# personal_info_unmasked, purpose, seq, uscc.
ROW_COLUMNS = ("seq", "prev_hash", "entry_hash", "at", "actor", "actor_kind", "actor_role", "endpoint",
               "outcome", "personal_info_unmasked", "purpose", "uscc")


def row_pieces(actor: Any, kind: Any, role: Any, endpoint: Any, outcome: Any, unmasked: Any,
               purpose: Any) -> tuple[str, str] | None:
    """The canonical JSON of a row around its time: up to ``"at":"`` and from the time's closing
    quote to ``"seq":`` (None unless every text field is a string: such a row takes
    ``querylog.canonical_entry`` itself). ``unmasked`` as the ORM reads it: its truth value."""
    if not all(type(v) is str for v in (actor, kind, role, endpoint, outcome, purpose)):
        return None
    who = (f'{{"actor":{encode_basestring(actor)},"actor_kind":{encode_basestring(kind)},'
           f'"actor_role":{encode_basestring(role)},"at":"')
    what = (f'","endpoint":{encode_basestring(endpoint)},"outcome":{encode_basestring(outcome)},'
            f'"personal_info_unmasked":{"true" if unmasked else "false"},"purpose":{encode_basestring(purpose)},'
            '"seq":')
    return who, what


def canonical_time(at: Any) -> str | None:
    """The canonical text of a time as the checker reads it (``querylog_check``): SQLite's stored
    text ``YYYY-MM-DD HH:MM:SS.ffffff`` (UTC, as the column type binds it; PostgreSQL's column is
    read as the same text), else None (the row takes the general path). Years before 1000 are
    left to the general path (``strftime``'s ``%Y`` does not pad them)."""
    if (type(at) is str and len(at) == 26 and at[10] == " " and at[19] == "." and at[4] == "-"
            and at[0] != "0"):
        return f"{at[:10]}T{at[11:]}Z"
    return None
