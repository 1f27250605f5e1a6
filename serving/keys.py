"""The service's keys: the one place that makes, keeps and reads them (docs/security.md).

- ``jwt_secret``: signs access tokens (HS256).
- ``querylog_mac_key``: keys the query log's chain (HMAC-SHA256), so that someone who can write
  the database cannot recompute it.
- ``querylog_signing_key``: an Ed25519 key signing the query log's checkpoints, which anchor the
  chain's head outside the database.

No key has a default and no key is in the repository. In development a missing key is made on
first start (``secrets``, 256 bits) and kept in ``Settings.keys_dir`` (the directory 0700, each
file 0600), then reused: sessions and the log survive a restart. In production each key must be
given (``TIERS_JWT_SECRET`` …): ``Settings`` refuses to load without them, and nothing is made.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from pydantic import SecretStr

# a serving.settings.Settings (not imported here: serving.settings imports this module)
S = TypeVar("S")

KEY_FILES = {"jwt_secret": "jwt-secret", "querylog_mac_key": "querylog-mac-key",
             "querylog_signing_key": "querylog-signing-key"}
KEY_FIELDS = tuple(KEY_FILES)  # the settings that hold a key (serving.settings.Settings)
_MAKERS: dict[str, Callable[[], str]] = {
    "jwt_secret": lambda: secrets.token_urlsafe(48),
    "querylog_mac_key": lambda: secrets.token_urlsafe(48),
    # an Ed25519 private key is any 32 random bytes
    "querylog_signing_key": lambda: secrets.token_hex(32),
}


def with_keys(settings: S) -> S:
    """``settings`` with every key set: those given are kept; in development a missing one is read
    from ``keys_dir``, or made there on first start. (Production settings cannot lack one:
    ``Settings`` refuses to load.)"""
    missing = [name for name in KEY_FIELDS if getattr(settings, name) is None]
    if not missing:
        return settings
    if not settings.is_development:  # pragma: no cover - Settings' own validator refuses first
        raise ValueError(f"keys {missing} must be set outside development")
    found = {name: SecretStr(read_or_make(settings.keys_dir / KEY_FILES[name], _MAKERS[name]))
             for name in missing}
    return settings.model_copy(update=found)


def read_or_make(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in ``path``, made with ``make`` and written there (mode 0600) if absent.

    Several processes may start at once (uvicorn's workers): the file is written under another
    name and linked into place, which fails if it exists, so every process ends up with the same
    complete value."""
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(path, make() + "\n", exclusive=True)
    return _read(path)


def write_private(path: Path, text: str, *, exclusive: bool = False) -> bool:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically. With ``exclusive``
    an existing file is kept (returns False); otherwise it is replaced."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if not exclusive:
            os.replace(temp, path)
            return True
        try:
            os.link(temp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise PermissionError(f"{path} is readable by others (mode {mode:o}); rule: chmod 600 {path}")
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise ValueError(f"{path} is empty; rule: delete it to make a new key (development only)")
    return value


@lru_cache(maxsize=16)
def signing_key(hex_seed: str):  # -> Ed25519PrivateKey
    """The Ed25519 private key of 64 hex digits (``Settings.querylog_signing_key``)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(hex_seed))


def public_key_pem(hex_seed: str) -> bytes:
    """The public half of the checkpoint signing key, as PEM: what a second party keeps to verify
    the checkpoints it receives."""
    from cryptography.hazmat.primitives import serialization

    return signing_key(hex_seed).public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
