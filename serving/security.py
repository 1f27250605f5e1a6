"""Passwords (argon2 via pwdlib), JWT access tokens (pyjwt), API keys, CSRF tokens, masking."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import jwt
from pwdlib import PasswordHash

Role = Literal["regulator", "sector", "enterprise", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("regulator", "sector", "enterprise", "analyst", "admin")
JWT_ALGORITHM = "HS256"
# who issues the service's tokens and for whom: a token of another service (or made for another
# use of the same key, such as a CSRF value) is refused
JWT_ISSUER = "tiered-supervision"
JWT_AUDIENCE = "tiered-supervision-api"
JWT_REQUIRED_CLAIMS = ["exp", "iat", "sub", "jti", "iss", "aud"]
# a token's issue time may be this far ahead of the server's clock (clocks of two hosts differ)
JWT_CLOCK_SKEW_S = 30.0
# the longest lifetime any configuration allows (Settings.jwt_ttl_minutes ≤ 24 h)
MAX_TOKEN_LIFETIME_S = 24 * 3600.0
API_KEY_PREFIX_LEN = 8


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (password/JWT) or a machine (API key), with one scope."""

    username: str
    role: Role
    kind: Literal["person", "machine"] = "person"
    department: str | None = None
    section: str | None = None
    uscc: str | None = None
    token_id: str | None = None
    issued_at: float | None = None  # of the access token (Unix time), to end sessions older than a date

    def without_credential(self) -> Principal:
        """Who this is and what they may read, without what belongs to one credential (the
        token's id and issue time): for comparing with the user's row, or keying a cache by scope."""
        return replace(self, token_id=None, issued_at=None)

    @property
    def scope(self) -> str | None:
        return {"regulator": self.department, "sector": self.section, "enterprise": self.uscc}.get(self.role)


@lru_cache
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    return _hasher().verify(password, password_hash)


# The password policy (docs/security.md): at least this long, not built on the user name, and not
# guessable by zxcvbn's estimator (its common-password, name and keyboard-pattern lists); admins,
# who can read everything and make accounts, need more of both.
PASSWORD_MIN_LENGTH = 12
ADMIN_PASSWORD_MIN_LENGTH = 16
PASSWORD_MIN_SCORE = 3  # zxcvbn: 3 "safely unguessable" (~10^10 guesses), 4 "very unguessable"
ADMIN_PASSWORD_MIN_SCORE = 4


def password_problem(password: str, *, username: str, role: str, other_inputs: tuple[str, ...] = ()) -> str | None:
    """Why ``password`` may not be set for this user (None when it may)."""
    admin = role == "admin"
    length = ADMIN_PASSWORD_MIN_LENGTH if admin else PASSWORD_MIN_LENGTH
    if len(password) < length:
        return f"must be at least {length} characters{' for an admin' if admin else ''} (got {len(password)})"
    if username and username.lower() in password.lower():
        return "must not contain the user name"
    from serving.cn_passwords import chinese_pattern

    if (pattern := chinese_pattern(password)) is not None:  # zxcvbn knows no pinyin
        return f"is too easy to guess: {pattern}"
    from zxcvbn import zxcvbn  # imported on first use: it loads its word lists (≈ 15 ms)

    verdict = zxcvbn(password[:72], user_inputs=[username, *other_inputs])  # (it refuses longer ones)
    needed = ADMIN_PASSWORD_MIN_SCORE if admin else PASSWORD_MIN_SCORE
    if verdict["score"] < needed:
        hint = verdict["feedback"].get("warning") or "too easy to guess"
        return (f"is too easy to guess (strength {verdict['score']}/4, {'an admin needs' if admin else 'needs'} "
                f"{needed}): {hint}")
    return None


# Verifying against a fixed hash when the user is unknown keeps login timing uniform.
@lru_cache
def dummy_password_hash() -> str:
    return hash_password("no-such-user-" + secrets.token_hex(8))


def create_access_token(principal: Principal, secret: str, ttl_minutes: int,
                        now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
    """A signed JWT carrying the username, role and scope; returns (token, expiry)."""
    now = now or dt.datetime.now(dt.UTC)
    expires = now + dt.timedelta(minutes=ttl_minutes)
    claims = {
        "sub": principal.username, "role": principal.role, "dep": principal.department,
        # iat with sub-second precision (a JWT NumericDate may have a fraction): a login just
        # after a deactivation must not look older than it
        "sec": principal.section, "uscc": principal.uscc, "iat": now.timestamp(), "exp": expires,
        "jti": uuid.uuid4().hex, "iss": JWT_ISSUER, "aud": JWT_AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=JWT_ALGORITHM), expires


def decode_access_token(token: str, secret: str, max_lifetime_s: float = MAX_TOKEN_LIFETIME_S,
                        now: float | None = None) -> Principal | None:
    """The principal of a valid, unexpired token, else None.

    Valid: signed with ``secret``, issued by and for this service (``iss``, ``aud``), with an issue
    time not in the future and a lifetime (``exp - iat``) of at most ``max_lifetime_s`` (the
    service's own TTL: a token minted with a longer one, even with the real key, is refused)."""
    try:
        principal, expires_at = _verified_token(token, secret)
    except jwt.PyJWTError:
        return None
    now = time.time() if now is None else now
    issued_at = principal.issued_at or 0.0
    if now >= expires_at or issued_at > now + JWT_CLOCK_SKEW_S or expires_at - issued_at > max_lifetime_s + 1:
        return None  # (+1: ``exp`` is whole seconds, ``iat`` has a fraction)
    return principal


def token_expires_at(token: str, secret: str) -> dt.datetime | None:
    """When a valid token expires (None for an invalid one): how long a logout must be remembered."""
    try:
        return dt.datetime.fromtimestamp(_verified_token(token, secret)[1], dt.UTC)
    except jwt.PyJWTError:
        return None


@lru_cache(maxsize=4096)
def _verified_token(token: str, secret: str) -> tuple[Principal, float]:
    """Signature and claims of ``token`` checked once (PyJWT re-parses the key on every call,
    which cost more than the rest of an authenticated read); ``decode_access_token`` rechecks
    the expiry and lifetime on every use. Failures raise, so they are never cached."""
    claims = jwt.decode(token, secret, algorithms=[JWT_ALGORITHM], audience=JWT_AUDIENCE, issuer=JWT_ISSUER,
                        options={"require": JWT_REQUIRED_CLAIMS})
    if claims.get("role") not in ROLES:
        raise jwt.InvalidTokenError(f"unknown role {claims.get('role')!r}")
    principal = Principal(username=claims["sub"], role=claims["role"], department=claims.get("dep"),
                          section=claims.get("sec"), uscc=claims.get("uscc"), token_id=claims.get("jti"),
                          issued_at=float(claims["iat"]))
    return principal, float(claims["exp"])


def new_api_key() -> tuple[str, str, str]:
    """A fresh API key: (full key shown once, lookup prefix, sha256 stored)."""
    key = "tsk_" + secrets.token_urlsafe(32)
    return key, api_key_prefix(key), hash_api_key(key)


def api_key_prefix(key: str) -> str:
    return key[4:4 + API_KEY_PREFIX_LEN]


def hash_api_key(key: str) -> str:
    # keys have 256 bits of entropy, so a fast hash is enough (no dictionary to attack)
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_matches(key: str, key_hash: str) -> bool:
    return same_secret(hash_api_key(key), key_hash)


class CredentialCache:
    """Credentials this worker checked against the database recently: key → principal, each for
    ``ttl_s`` seconds after its last successful check (keys from :func:`credential_key`).

    Saves a database lookup on every request. Only successful checks are kept, so a new key or
    login works at once; a revoked API key, a deactivated user, a changed scope or a logged-out
    token keeps working for at most ``ttl_s`` in a worker that had checked it (``ttl_s = 0``
    turns the cache off).

    An entry is re-checked ahead of its expiry: from ``refresh_after`` × ``ttl_s`` after its last
    check, ``refresh_due`` answers True once (to one request, which starts the check in the
    background and is served from the cache meanwhile). A successful re-check renews the entry
    (``put``), a failed one removes it (``drop``), so a credential in steady use is never
    re-checked on the request path, and never served past ``ttl_s`` after its last successful
    check either: a refresh that has not succeeded by then leaves an expired entry, which
    ``get`` no longer returns.
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic, refresh_after: float = 0.75) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._refresh_s = ttl_s * refresh_after
        self._entries: dict[str, tuple[float, float, Principal]] = {}  # key → (expires, refresh at, who)
        self._forgotten: dict[str, float] = {}  # key → until when it may not be cached again
        self._refreshing: set[str] = set()  # keys whose re-check is under way

    def get(self, key: str) -> Principal | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] <= self._clock():
            return None
        return hit[2]

    def refresh_due(self, key: str) -> bool:
        """Whether the caller should re-check ``key`` now (in the background): its entry is live,
        past its refresh time, and no re-check is under way. True once per refresh: the caller
        then ends it with ``put`` (passed) or ``drop`` (failed, whatever the reason)."""
        hit = self._entries.get(key)
        if hit is None or key in self._refreshing:
            return False
        now = self._clock()
        if not hit[1] <= now < hit[0]:
            return False
        self._refreshing.add(key)
        return True

    def put(self, key: str, principal: Principal) -> None:
        self._refreshing.discard(key)
        if self.ttl_s <= 0:
            return
        until = self._forgotten.get(key)
        if until is not None:
            if until > self._clock():
                return
            self._forgotten.pop(key, None)
        if len(self._entries) >= self.max_entries:  # bounded: forget everything rather than grow
            self._entries.clear()
            self._refreshing.clear()
        now = self._clock()
        self._entries[key] = (now + self.ttl_s, now + self._refresh_s, principal)

    def drop(self, key: str) -> None:
        """Remove ``key`` (its re-check failed): the next request checks it against the database."""
        self._refreshing.discard(key)
        self._entries.pop(key, None)

    def forget(self, key: str) -> None:
        """Drop ``key`` now, and refuse to cache it again for ``ttl_s``: a check that began before
        the credential was revoked must not put it back (after that, the database refuses it)."""
        self.drop(key)
        if self.ttl_s > 0:
            if len(self._forgotten) >= self.max_entries:
                self._forgotten.clear()
            self._forgotten[key] = self._clock() + self.ttl_s


def credential_key(*, api_key: str | None = None, token: Principal | None = None) -> str:
    """The cache key of an API key (its hash: the key itself is never kept) or of a decoded
    access token (its id and every claim the principal carries: a token reusing a live id with
    other claims is another credential, checked afresh)."""
    if api_key is not None:
        return "key:" + hash_api_key(api_key)
    if token is not None and token.token_id:
        claims = json.dumps([token.username, token.role, token.department, token.section, token.uscc,
                             token.issued_at], ensure_ascii=False)
        return "jwt:" + token.token_id + ":" + hashlib.sha256(claims.encode("utf-8")).hexdigest()
    raise ValueError("credential_key needs an API key or a token with an id")


def csrf_token(secret: str, session_id: str) -> str:
    """The CSRF token bound to one page session (HMAC of its token id), or to one login form
    (``session_id`` = ``"login:" + the form's cookie nonce``)."""
    return hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).hexdigest()


def same_secret(expected: str, given: str) -> bool:
    """``expected == given`` in constant time, as UTF-8 bytes: ``hmac.compare_digest`` refuses two
    ``str`` with a non-ASCII character (TypeError, a 500 for a token a caller typed)."""
    return hmac.compare_digest(expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass"))


def csrf_valid(secret: str, session_id: str | None, token: str | None) -> bool:
    return bool(session_id and token) and same_secret(csrf_token(secret, session_id), token)


def mask_name(name: str | None) -> str | None:
    """脱敏 a person's name: keep the family name (first character): 张三丰 → 张**."""
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


# legal forms whose name is a person's name (个体工商户, 个人独资企业): masked in every output
PERSON_NAMED_FORMS = frozenset({"individual_business", "sole_proprietorship"})


def shown_name(name: str, legal_form: str | None) -> str:
    """A subject's name as every output shows it (JSON, pages, CSV, XLSX): masked when the legal
    form names it after a person."""
    return (mask_name(name) or "") if legal_form in PERSON_NAMED_FORMS else name


def mask_id_number(id_number: str | None) -> str | None:
    """脱敏 a resident ID number: first 4 and last 4 kept: 3201**********1234."""
    if not id_number:
        return id_number
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]
