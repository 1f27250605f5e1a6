"""The service's keys: the one place that makes, keeps and reads them (docs/security.md).

- ``jwt_secret``: signs access tokens (HS256).
- ``querylog_mac_key``: keys the query log's chain (HMAC-SHA256), so that someone who can write
  the database cannot recompute it.
- ``querylog_signing_key``: an Ed25519 key signing the query log's checkpoints, which anchor the
  chain's head outside the database.
- ``report_signing_key`` and ``report_certificate``: an ECDSA P-256 private key (PEM) and its X.509
  certificate (PEM) signing the credit reports (PAdES, ``serving.report_pdf``); in development the
  certificate is self-signed, made with the key. Receivers verify reports against the certificate.

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
             "querylog_signing_key": "querylog-signing-key",
             # in this order: the certificate is made for the key
             "report_signing_key": "report-signing-key.pem", "report_certificate": "report-certificate.pem"}
KEY_FIELDS = tuple(KEY_FILES)  # the settings that hold a key (serving.settings.Settings)
REPORT_SIGNER_NAME = "tiered-supervision credit reports (development, self-signed)"
# a maker gets the keys found so far (the certificate needs its key)
_MAKERS: dict[str, Callable[[dict[str, SecretStr]], str]] = {
    "jwt_secret": lambda _: secrets.token_urlsafe(48),
    "querylog_mac_key": lambda _: secrets.token_urlsafe(48),
    # an Ed25519 private key is any 32 random bytes
    "querylog_signing_key": lambda _: secrets.token_hex(32),
    "report_signing_key": lambda _: make_report_key(),
    "report_certificate": lambda found: make_report_certificate(found["report_signing_key"].get_secret_value()),
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
    found: dict[str, SecretStr] = {name: getattr(settings, name) for name in KEY_FIELDS if name not in missing}
    for name in KEY_FIELDS:
        if name in missing:
            found[name] = SecretStr(read_or_make(settings.keys_dir / KEY_FILES[name], lambda n=name: _MAKERS[n](found)))
    problem = report_identity_problem(found["report_signing_key"].get_secret_value(),
                                      found["report_certificate"].get_secret_value())
    if problem:
        raise ValueError(f"{settings.keys_dir}: {problem}")
    return settings.model_copy(update={name: found[name] for name in missing})


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


def make_report_key() -> str:
    """A new ECDSA P-256 private key as PKCS#8 PEM (the credit reports' signing key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def make_report_certificate(key_pem: str, *, name: str = REPORT_SIGNER_NAME, years: int = 10) -> str:
    """A self-signed X.509 certificate (PEM) for ``key_pem``, for signing documents (digital
    signature, non-repudiation), valid from yesterday for ``years`` years."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tiered-supervision")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365 * years))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def report_identity_problem(key_pem: str | None, cert_pem: str | None) -> str | None:
    """Why ``key_pem`` and ``cert_pem`` cannot sign credit reports (None when they can): each must
    parse (an EC or RSA private key in PEM, an X.509 certificate in PEM) and the certificate must
    be the key's. A side that is None is not checked."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    key = cert = None
    if key_pem is not None:
        try:
            key = serialization.load_pem_private_key(key_pem.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeEncodeError):
            return ("TIERS_REPORT_SIGNING_KEY must be an unencrypted private key in PEM (make one with "
                    "`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)")
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            return "TIERS_REPORT_SIGNING_KEY must be an EC (P-256) or RSA private key"
    if cert_pem is not None:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return ("TIERS_REPORT_CERTIFICATE must be an X.509 certificate in PEM (`openssl req -new -x509 "
                    "-key report-signing-key.pem -days 3650 -subj /CN=…`, or one issued by the office's CA)")
    if key is not None and cert is not None:
        der = serialization.Encoding.DER
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
            return ("TIERS_REPORT_CERTIFICATE is not the certificate of TIERS_REPORT_SIGNING_KEY "
                    "(report-certificate.pem does not match report-signing-key.pem)")
    return None
