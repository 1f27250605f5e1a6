"""Login attempts and their limits: per account across addresses, per address across accounts,
with a back-off rather than a lock (docs/security.md, "Login limits").

The state is the ``login_attempts`` table of the service database, so the limits hold across the
uvicorn workers (and hosts) that share it. A worker's memory, or a rate-limit library's in-memory
storage, would give each worker its own count.

- Per address, over all accounts: ``free_per_address`` failures in ``WINDOW``, then each further
  try waits 1, 2, 4 … s after the last failure (up to ``backoff_max_s``): spraying one password
  over many accounts, or guessing one account from many sessions, slows to a crawl.
- Per account, over all addresses (since its last successful login): ``free_per_account``
  failures, then the same back-off. Rotating addresses (or a forged X-Forwarded-For) gains
  nothing. An address the account logged in from before (``KNOWN_ADDRESS_DAYS``) is exempt from
  the account's back-off, never from its own: an attacker elsewhere cannot keep a user out of
  the office they always log in from.
- A try refused during a back-off is not recorded: hammering does not lengthen the wait, so the
  account is never locked for longer than the back-off of the failures that really happened.

Each try is recorded (``pending``) and committed before the password is checked, and counts the
tries recorded before it, so concurrent tries in several workers cannot all slip under a limit.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from serving.db.tables import LoginAttempt
from serving.errors import TooManyAttempts
from serving.i18n import text

# the account a failed API key is counted under (never the key, nor its prefix): its own bucket per
# address (``free_api_keys_per_address``), apart from the passwords'
API_KEY_ACCOUNT = "X-API-Key"
WINDOW = dt.timedelta(hours=1)  # failures older than this are forgotten
KNOWN_ADDRESS_DAYS = 30
COUNTED = ("failed", "pending")  # a try still being checked counts as a failure until it is decided


@dataclass(frozen=True)
class LoginLimits:
    free_per_account: int = 5
    free_per_address: int = 20
    backoff_max_s: float = 900.0
    free_api_keys_per_address: int = 20

    @classmethod
    def of(cls, settings) -> LoginLimits:
        return cls(settings.login_free_failures_per_account, settings.login_free_failures_per_address,
                   settings.login_backoff_max_s, settings.api_key_free_failures_per_address)


def address_key(client_ip: str) -> str:
    """The address a limit counts: the IP, and for IPv6 its /64 (one host usually holds a whole
    /64, so counting single IPv6 addresses would let it rotate without end)."""
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return client_ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def backoff_s(failures: int, free: int, maximum: float) -> float:
    """The wait after the last failure once ``failures`` reached ``free``: 1 s, doubling."""
    return 0.0 if failures < free else min(maximum, 2.0 ** min(failures - free, 60))


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def wait_s(session: Session, username: str, address: str, limits: LoginLimits, now: dt.datetime,
           before_id: int | None = None) -> float:
    """Seconds this try must still wait (0: it may check the password). Counts the failures
    recorded before ``before_id`` (all of them when None)."""
    since = now - WINDOW
    earlier = [LoginAttempt.id < before_id] if before_id is not None else []
    waits = [address_wait_s(session, address, limits, now, before_id)]
    known = session.scalar(select(exists().where(
        LoginAttempt.username == username, LoginAttempt.client_ip == address, LoginAttempt.outcome == "succeeded",
        LoginAttempt.attempted_at > now - dt.timedelta(days=KNOWN_ADDRESS_DAYS))))
    if not known:
        last_success = session.scalar(select(func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.username == username, LoginAttempt.outcome == "succeeded"))
        after = [LoginAttempt.attempted_at > last_success] if last_success is not None else []
        by_account = session.execute(select(func.count(), func.max(LoginAttempt.attempted_at)).where(
            LoginAttempt.username == username, LoginAttempt.outcome.in_(COUNTED),
            LoginAttempt.attempted_at > since, *after, *earlier)).one()
        waits.append(_remaining(by_account, limits.free_per_account, limits, now))
    return max(waits)


def address_wait_s(session: Session, address: str, limits: LoginLimits, now: dt.datetime,
                   before_id: int | None = None, *, api_keys: bool = False) -> float:
    """Seconds a try from ``address`` must still wait by the address's own limit: over all
    accounts' passwords, or (``api_keys``) over its failed API keys (``users.api_key_principal``).
    Two buckets: a scanner of keys behind an office's NAT never slows that office's password
    logins, nor a password guesser its department systems' keys; each backs off on its own."""
    earlier = [LoginAttempt.id < before_id] if before_id is not None else []
    bucket = LoginAttempt.username == API_KEY_ACCOUNT if api_keys else LoginAttempt.username != API_KEY_ACCOUNT
    by_address = session.execute(select(func.count(), func.max(LoginAttempt.attempted_at)).where(
        LoginAttempt.client_ip == address, bucket, LoginAttempt.outcome.in_(COUNTED),
        LoginAttempt.attempted_at > now - WINDOW, *earlier)).one()
    return _remaining(by_address, limits.free_api_keys_per_address if api_keys else limits.free_per_address,
                      limits, now)


def _remaining(counted: tuple[int, dt.datetime | None], free: int, limits: LoginLimits, now: dt.datetime) -> float:
    failures, latest = counted
    wait = backoff_s(failures, free, limits.backoff_max_s)
    if wait <= 0 or latest is None:
        return 0.0
    return max(0.0, (_utc(latest) + dt.timedelta(seconds=wait) - now).total_seconds())


def begin_attempt(session: Session, username: str, address: str, now: dt.datetime) -> LoginAttempt:
    """Record a try as ``pending`` (committed: the other workers count it from now on)."""
    attempt = LoginAttempt(username=username, client_ip=address, attempted_at=now, outcome="pending")
    session.add(attempt)
    session.commit()
    return attempt


def end_attempt(session: Session, attempt: LoginAttempt, outcome: str, now: dt.datetime) -> None:
    """Decide a try (``succeeded``, ``failed``; a ``refused`` one is deleted) and forget old rows."""
    if outcome == "refused":
        session.delete(attempt)
    else:
        attempt.outcome = outcome
    session.execute(delete(LoginAttempt).where(or_(
        and_(LoginAttempt.outcome != "succeeded", LoginAttempt.attempted_at < now - WINDOW),
        LoginAttempt.attempted_at < now - dt.timedelta(days=KNOWN_ADDRESS_DAYS))))
    session.commit()


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))


def held_back(text_key: str, wait: float, *, field: str | None = None) -> TooManyAttempts:
    """The 429 of a back-off: its sentences from the text catalogue (``text_key``, ``{s}`` the
    seconds to wait), ``Retry-After`` the same seconds."""
    s = retry_after(wait)
    return TooManyAttempts(text(text_key, "en").format(s=s), field=field, headers={"Retry-After": s},
                           zh=text(text_key, "zh").format(s=s))
