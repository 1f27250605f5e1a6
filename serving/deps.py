"""FastAPI dependencies: settings, DB session, who is calling, role and subject checks.

Routes take them as ``Annotated`` aliases (as the FastAPI full-stack template does):
``SettingsDep``, ``SessionDep``, ``TodayDep``; the caller as ``CurrentUser`` (API) or ``PageUser``
(pages), or with a role check as ``Admin``, ``Regulator``, ``Decider``, ``Analyst``, ``Sector``,
``ModelReader`` (and their ``Page…`` twins). Role checks are dependencies, never ``if``
statements inside handlers.

Every read of a subject's credit data is logged: one subject through ``SubjectAccessDep`` (or
``subject_read`` for the hot reads), lists of subjects through ``ReadLogDep``; the endpoint
logged is always the route's template (``METHOD /api/v1/…/{uscc}``), never a string in a route.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from pydantic import TypeAdapter, ValidationError, WithJsonSchema
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from serving.db.session import engine_for, is_sqlite_file, loop_connection, session_factory
from serving.errors import (
    CsrfFailed,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    TooManyAttempts,
    UnknownSubject,
)
from serving.labels import china_today
from serving.security import (
    CredentialCache,
    Principal,
    Role,
    credential_key,
    csrf_token,
    csrf_valid,
    decode_access_token,
    token_expires_at,
)
from serving.services.access import SUBJECT_READER_ROLES, can_read
from serving.services.credit_checks import refused_codes
from serving.services.grades import Regrader, mark_grades_stale
from serving.services.logins import LoginLimits
from serving.services.querylog import append_entries, append_entry, append_entry_async, append_entry_durably
from serving.services.repairs import RepairEligibility, default_repair_eligibility
from serving.services.users import api_key_principal, person_is_current, revoke_token
from serving.settings import Settings, settings_of
from serving.validation import MAX_ROW_ID, PURPOSE_LENGTH, USCC_PATTERN, NoControlChars

SESSION_COOKIE = "tiers_session"
ENTERPRISE_SELF_VIEW = "self_view 本企业自查"
T = TypeVar("T")
logger = logging.getLogger(__name__)

async def current_settings(request: Request) -> Settings:
    """``settings_of`` as a dependency; ``async``, as reading them is no I/O (a sync dependency
    costs a thread-pool hop per request)."""
    return settings_of(request)


SettingsDep = Annotated[Settings, Depends(current_settings)]


def _pool_options(settings: Settings) -> dict[str, float | str]:
    # one connection per thread of the pool and one for the query log's writer thread, with a
    # short timeout (see Settings.threadpool_size)
    return {"pool_size": settings.threadpool_size + 1, "max_overflow": 0,
            "pool_timeout_s": settings.db_pool_timeout_s, "sqlite_synchronous": settings.sqlite_synchronous}


def new_session(settings: Settings) -> Session:
    """A session on the service's pool for ``settings.database_url``; the caller closes it."""
    return session_factory(settings.database_url, **_pool_options(settings))()


def service_engine(settings: Settings) -> Engine:
    """The engine behind ``new_session`` (the same pool)."""
    return engine_for(settings.database_url, **_pool_options(settings))


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    """A session for one request, on the service's pool (sized to the thread pool, short timeout).

    ``async``: opening a session is not I/O (it connects on first use), so it need not cost a
    thread-pool hop; closing one that took a connection is, and runs in a thread (not for SQLite).
    """
    session = new_session(settings)
    try:
        yield session
    finally:
        if session.in_transaction() and session.get_bind().dialect.name != "sqlite":
            # its own limiter (as FastAPI does for sync generators): returning a connection must
            # never wait for a thread-pool slot, or a full pool starves the threads waiting for one
            await anyio.to_thread.run_sync(session.close, limiter=anyio.CapacityLimiter(1))
        else:
            # nothing to return, or SQLite: ending a local transaction takes microseconds, less
            # than the hop to a thread
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_today() -> dt.date:
    """Today in China (deadlines are counted in the regulator's calendar); override in tests."""
    return china_today()


async def get_regrader(request: Request) -> Regrader:
    """The regrading hook run when a record changes: the app's (``create_app(regrader=…)``), else
    marking grades stale."""
    return getattr(request.app.state, "regrader", None) or mark_grades_stale


async def get_repair_eligibility(request: Request) -> RepairEligibility:
    return getattr(request.app.state, "repair_eligibility", None) or default_repair_eligibility


TodayDep = Annotated[dt.date, Depends(get_today)]
RegraderDep = Annotated[Regrader, Depends(get_regrader)]
EligibilityDep = Annotated[RepairEligibility, Depends(get_repair_eligibility)]

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


def client_ip(request: Request) -> str:
    """The client's address as the server's socket sees it (behind a configured proxy, uvicorn
    has already replaced it by the forwarded one: ``tiers serve``, TIERS_FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


async def api_principal(request: Request, settings: SettingsDep,
                        token: Annotated[str | None, Depends(bearer_scheme)] = None,
                        api_key: Annotated[str | None, Depends(_api_key)] = None) -> Principal:
    """The caller of an API route: a bearer JWT (person) or an ``X-API-Key`` (machine).

    The API ignores the page cookie, so cross-site requests cannot ride on a browser session.
    ``async``: the credential is checked against the database (in the thread pool) only when this
    worker has not checked it in the last ``credential_cache_ttl_s``: a revoked key, a deactivated
    user, a changed scope or a logged-out token keeps working for at most that long
    (``_api_caller``).
    """
    return await _api_caller(request, settings, token, api_key)


async def _api_caller(request: Request, settings: Settings, token: str | None, api_key: str | None) -> Principal:
    """The caller of an API request, checked against the database at most once per worker at a time.

    A credential this worker checked lately is answered from its cache; past three quarters of
    the cache's TTL one request also starts a re-check in the background (``CredentialCache.
    refresh_due``), so a credential in steady use is re-checked before its entry expires and no
    request waits for that. A credential not in the cache is checked once, however many requests
    bring it at the same moment (``CredentialChecks``): before, each of them ran its own database
    check in a thread when an entry expired, and at 250 requests/s per worker that burst of
    threads held the event loop up for tens of ms every TTL (docs/performance-notes.md).
    """
    key, principal = _cached_credential(request, settings, token, api_key)
    checks = credential_checks(request, settings)

    def check() -> Awaitable[Principal]:
        return run_in_threadpool(
            _in_new_session, settings, lambda session: _checked_credential(request, settings, session, token, api_key))

    if principal is not None:
        if checks.cache.refresh_due(key):
            checks.refresh(key, check)
    else:
        principal = await checks.check(key, check)
    request.state.caller = principal  # for a refusal by a route's own rule (log_unlogged_refusal)
    return principal


def _cached_credential(request: Request, settings: Settings, token: str | None,
                       api_key: str | None) -> tuple[str, Principal | None]:
    """The cache key of the request's credential and its principal if this worker checked it
    lately (else None). Raises `NotAuthenticated` for a bad or expired token or no credentials."""
    if token:
        principal = decode_token(settings, token)
        if principal is None:
            raise NotAuthenticated("invalid or expired access token")
        key = credential_key(token=principal)
    elif api_key:
        key = credential_key(api_key=api_key)
    else:
        raise NotAuthenticated()
    return key, credential_cache(request, settings).get(key)


def _principal_without_io(request: Request, settings: Settings, token: str | None,
                          api_key: str | None) -> Principal | None:
    """The caller from a bearer JWT or an API key this worker checked lately; None when the
    credential must be checked against the database. Raises `NotAuthenticated` for a bad or
    expired token or no credentials."""
    return _cached_credential(request, settings, token, api_key)[1]


def _checked_credential(request: Request, settings: Settings, session: Session, token: str | None,
                        api_key: str | None) -> Principal:
    """The caller after checking the credential against the database (then cached): the token's
    user is active with the token's role and scope and the token not logged out, or the API key
    is not revoked and its user active. Else `NotAuthenticated`."""
    cache = credential_cache(request, settings)
    if token:
        principal = decode_token(settings, token)
        if principal is None:
            raise NotAuthenticated("invalid or expired access token")
        if not person_is_current(session, principal):
            raise NotAuthenticated("this session has ended (logged out, or the account was deactivated or "
                                   "changed): log in again")
        cache.put(credential_key(token=principal), principal)
        return principal
    if not api_key:
        raise NotAuthenticated()
    principal = api_key_principal(session, api_key, client_ip(request), limits=LoginLimits.of(settings))
    cache.put(credential_key(api_key=api_key), principal)
    return principal


def _caller(request: Request, settings: Settings, session: Session, token: str | None,
            api_key: str | None) -> Principal:
    """The caller, from this worker's cache or checked against the database (in a thread)."""
    return (_principal_without_io(request, settings, token, api_key)
            or _checked_credential(request, settings, session, token, api_key))


def checked_principal(request: Request, session: Session) -> Principal:
    """The caller of a sync route that authenticates optionally (``/health``): its bearer token or
    API key, checked as ``api_principal`` checks them; `NotAuthenticated` without valid ones."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else None
    return _caller(request, settings_of(request), session, token, request.headers.get("X-API-Key"))


def end_token(request: Request, settings: Settings, session: Session, token: str | None) -> None:
    """Log a person's access token out: refused from now on by this worker, and by every other
    within ``credential_cache_ttl_s`` (they check it against ``revoked_tokens``)."""
    principal = decode_token(settings, token) if token else None
    expires_at = token_expires_at(token, settings.jwt_key) if token else None
    if principal is None or expires_at is None:
        return  # expired or invalid: refused anyway
    revoke_token(session, principal, expires_at)
    credential_cache(request, settings).forget(credential_key(token=principal))


def decode_token(settings: Settings, token: str) -> Principal | None:
    """The principal of an access token this service issued and would still issue: its key,
    issuer and audience, unexpired, and no longer-lived than the configured TTL."""
    return decode_access_token(token, settings.jwt_key, max_lifetime_s=settings.jwt_ttl_minutes * 60)


def credential_cache(request: Request, settings: Settings) -> CredentialCache:
    """The app's cache of checked credentials (one per app, so tests never share it)."""
    state = request.app.state
    cache = getattr(state, "credential_cache", None)
    if cache is None:
        cache = state.credential_cache = CredentialCache(ttl_s=settings.credential_cache_ttl_s)
    return cache


def credential_checks(request: Request, settings: Settings) -> CredentialChecks:
    """The credential checks under way in this app, on its cache (``CredentialChecks``)."""
    cache = credential_cache(request, settings)
    state = request.app.state
    checks = getattr(state, "credential_checks", None)
    if checks is None or checks.cache is not cache:  # a test may replace the cache
        checks = state.credential_checks = CredentialChecks(cache)
    return checks


class CredentialChecks:
    """Database checks of credentials under way in one app, one per credential at a time.

    ``check`` runs the check of a credential not in the cache; requests that bring the same
    credential meanwhile wait for that check instead of starting their own, and share its answer
    (the principal, or the 401). ``refresh`` re-checks a cached credential in the background:
    the cache keeps the principal on success (``_checked_credential`` puts it) and drops it on any
    failure, so the next request checks it again and is refused if it must be. Checks run on
    the event loop that asks for them (one per worker; a test client's loop is keyed apart).
    """

    def __init__(self, cache: CredentialCache) -> None:
        self.cache = cache
        self._under_way: dict[tuple[int, str], asyncio.Future[Principal]] = {}
        self._refreshes: set[asyncio.Task[None]] = set()  # referenced until done (asyncio keeps weak ones)

    async def check(self, key: str, run: Callable[[], Awaitable[Principal]]) -> Principal:
        flight = (id(asyncio.get_running_loop()), key)
        under_way = self._under_way.get(flight)
        if under_way is None:
            under_way = self._under_way[flight] = asyncio.ensure_future(run())
            under_way.add_done_callback(lambda done: self._landed(flight, done))
        # shielded: a caller that goes away (a client disconnect) does not cancel the others' check
        return await asyncio.shield(under_way)

    def _landed(self, flight: tuple[int, str], done: asyncio.Future[Principal]) -> None:
        if self._under_way.get(flight) is done:
            del self._under_way[flight]
        if not done.cancelled():
            done.exception()  # retrieved: an error every waiter left is not reported as never seen

    def refresh(self, key: str, run: Callable[[], Awaitable[Principal]]) -> None:
        async def refresh() -> None:
            try:
                await run()  # a passed check renews the cache entry itself
            except BaseException:
                self.cache.drop(key)  # refused, or the check failed: the next request checks it anew
                raise

        task = asyncio.get_running_loop().create_task(refresh())
        self._refreshes.add(task)
        task.add_done_callback(self._refreshed)

    def _refreshed(self, task: asyncio.Task[None]) -> None:
        self._refreshes.discard(task)
        if not task.cancelled() and isinstance(task.exception(), Exception) \
                and not isinstance(task.exception(), NotAuthenticated):
            logger.warning("re-checking a cached credential failed: %r", task.exception())


def page_principal(request: Request, settings: SettingsDep) -> Principal:
    """The caller of a page: the httponly session cookie (SameSite=strict), checked as
    `api_principal` checks a bearer token (a sync dependency: FastAPI runs it in a thread)."""
    token = request.cookies.get(SESSION_COOKIE)
    try:
        principal = _principal_without_io(request, settings, token, None) if token else None
        if principal is None and token:
            principal = _in_new_session(settings,
                                        lambda session: _checked_credential(request, settings, session, token, None))
    except NotAuthenticated:
        principal = None
    if principal is None:
        raise NotAuthenticated("please log in")
    request.state.caller = principal  # for a refusal by a route's own rule (log_unlogged_refusal)
    return principal


PrincipalGetter = Callable[..., Principal]


def page_csrf(settings: Settings, principal: Principal) -> str:
    """The CSRF token of every form on a page of ``principal``'s session (bound to its token id)."""
    return csrf_token(settings.jwt_key, principal.token_id or "")


def require_page_csrf(settings: Settings, principal: Principal, token: str | None) -> None:
    """Refuse (403 ``csrf_failed``) a page form post whose token is not this session's."""
    if not csrf_valid(settings.jwt_key, principal.token_id, token):
        raise CsrfFailed("the form expired or did not come from this site; reload the page", field="csrf_token",
                         zh="表单已过期或不是从本站提交的，请刷新页面后重试。")


def require_role(*roles: Role, principal_dep: PrincipalGetter = api_principal,
                 refused: Refusal | None = None) -> Callable[..., Principal]:
    """Dependency: the caller, if their role is one of ``roles``; else 403, logged first.

    Every refusal is a ``denied`` entry of the query log, through its chain, before it is
    answered (``_logged_refusal``): who, the role, the route's template, the purpose the caller
    gave (if any) and the subject the route names (``{uscc}``, as far as it parses), or the one
    the route's ``refused`` finds (a commitment's, a warning's: ``RefusedTry``). It reads only the
    raw path parameters, so it runs before the route's own parameters are validated: a refused
    role gets its 403, logged, whatever the ids it sent (never a 422 that tells the route's rules);
    an unauthenticated caller gets 401 first (``principal_dep``)."""

    # plain default (not Annotated): string annotations cannot see the closure variable;
    # async: a pure check needs no thread-pool hop (a refusal takes one, to log itself)
    async def check(request: Request, principal: Principal = Depends(principal_dep)) -> Principal:
        if principal.role in roles:
            return principal
        raise await run_in_threadpool(_in_new_session, settings_of(request),
                                      lambda session: _logged_refusal(session, request, principal, roles, refused))

    return check


@dataclass(frozen=True)
class RefusedTry:
    """A try refused for the caller's role: the refusal answered (403), the purpose it is logged
    with and the subject it concerns ("" when the route names none, or no such matter exists)."""

    error: NotAllowed
    purpose: str
    uscc: str


# a route's own wording of a refused role: (session, caller, raw path parameters) -> RefusedTry
Refusal = Callable[[Session, Principal, dict[str, str]], RefusedTry]
REFUSED_ROLE = "not_allowed"


def row_id(raw: object) -> int | None:
    """A stored row's id as a refusal reads it from a raw path parameter (``RowIdPath``'s range),
    or None: a malformed id names no matter."""
    text = str(raw or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 10 and 1 <= int(text) <= MAX_ROW_ID \
        else None


def _role_refusal(principal: Principal, roles: tuple[Role, ...], params: dict[str, str]) -> RefusedTry:
    codes = refused_codes(params.get("uscc"))
    return RefusedTry(NotAllowed(f"role {principal.role!r} may not use this; allowed: {', '.join(roles)}",
                                 zh="您的账号没有使用此功能的权限。"),
                      f"拒绝（{REFUSED_ROLE}）", codes[0] if codes else "")


def _caller_purpose(request: Request) -> str:
    """The purpose the caller gave (query ``purpose`` or ``X-Purpose``), unvalidated: cleaned of
    what is not printable and bounded, as the refusal it is logged with was not validated."""
    raw = request.query_params.get("purpose") or request.headers.get("X-Purpose") or ""
    return "".join(c for c in raw[:PURPOSE_LENGTH["max_length"]] if c.isprintable()).strip()


def _logged_refusal(session: Session, request: Request, principal: Principal, roles: tuple[Role, ...],
                    refused: Refusal | None = None) -> NotAllowed:
    """Log a role's refusal (``denied``, durably, through the query log's chain) and return the
    error to answer. The one place a refused role is logged: ``require_role`` and the hot subject
    read (``subject_read``) both come here."""
    params = dict(request.path_params)
    attempt = refused(session, principal, params) if refused else _role_refusal(principal, roles, params)
    _log_refused_try(session, request, principal, attempt)
    return attempt.error


def refusal_allowed(session: Session, request: Request, principal: Principal) -> None:
    """Spend one of the caller's refusals of the hour (``Settings.refusals_per_hour``, per user or
    API key's user: ``services.rates.spend``, the rule of the other hourly limits), or raise
    `TooManyAttempts` (429, ``Retry-After``) past it: a prober grows the log by at most that many
    entries an hour, plus one. The first try held back in an hour is logged as one compact entry
    (``denied``, purpose ``拒绝（too_many_attempts）``, no subject): the log says when the cap was
    reached; the tries after it are answered, not logged (counting them would write a row per try,
    the growth the cap stops). Allowed calls never spend it."""
    from serving.services.rates import spend

    actor = f"{principal.kind}:{principal.username}"
    per_hour = settings_of(request).refusals_per_hour
    try:
        spend(session, action="refusal", actor=actor, per_hour=per_hour, text_key="too_many_refusals")
    except TooManyAttempts as held:
        try:
            spend(session, action="refusals_held", actor=actor, per_hour=1, text_key="too_many_refusals")
        except TooManyAttempts:
            raise held from None  # noted already this hour
        purpose = f"拒绝（{held.code}）：本小时拒绝已达 {per_hour} 次，其后的拒绝不逐条登记"
        append_entries(session, principal=principal, reads=[("", "denied")], purpose=purpose,
                       endpoint=_endpoint(request))
        raise


def _log_refused_try(session: Session, request: Request, principal: Principal, attempt: RefusedTry) -> None:
    """The one writer of a refusal's entry: ``denied``, the route's template, the refusal's purpose
    and the caller's own; the error is marked logged (``log_unlogged_refusal`` skips it). Within
    the caller's hourly refusals (``refusal_allowed``: else `TooManyAttempts`, answered instead)."""
    refusal_allowed(session, request, principal)
    purpose = _caller_purpose(request)
    purpose = f"{attempt.purpose}：{purpose}" if purpose else attempt.purpose
    append_entries(session, principal=principal, reads=[(attempt.uscc, "denied")],
                   purpose=purpose[:PURPOSE_LENGTH["max_length"]], endpoint=_endpoint(request))
    attempt.error.logged = True


async def log_unlogged_refusal(request: Request, error: NotAllowed) -> None:
    """Log a 403 that a route's own rule raised after the role check let the caller in (another
    department's ratios, plan items or salt, a promotion not the caller's), as the role's refusals
    are logged, unless it was logged already (``NotAllowed.logged``: the role check, the
    commitments' and warnings' decisions, the joint checks) or no caller was authenticated. A form
    whose CSRF token fails is not the user's try (a cross-site post rides on their session): not
    logged. Called by the error handler (``serving.errors.install_error_handlers``)."""
    principal = getattr(request.state, "caller", None)
    if principal is None or error.logged or isinstance(error, CsrfFailed):
        return
    codes = refused_codes(request.path_params.get("uscc"))
    attempt = RefusedTry(error, f"拒绝（{error.code}）", codes[0] if codes else "")
    await run_in_threadpool(_in_new_session, settings_of(request),
                            lambda session: _log_refused_try(session, request, principal, attempt))


# A route's credentials as parameters: the security schemes ``api_principal`` declares.
BearerToken = Annotated[str | None, Depends(bearer_scheme)]
ApiKeyHeader = Annotated[str | None, Depends(_api_key)]


def flat_role(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """``require_role(*roles)`` for API callers in one dependency node instead of three (role,
    caller, settings): each node costs FastAPI ≈ 40 µs of CPU per request (``subject_read``), which
    a hot route (the joint checks) feels. The same checks (``_api_caller``, ``_with_role``), the
    same security schemes in OpenAPI, and still run before the route's own parameters are
    validated, so a caller without the role is refused (403) before any input is judged."""

    async def check(request: Request, token: BearerToken = None, api_key: ApiKeyHeader = None) -> Principal:
        return _with_role(await _api_caller(request, settings_of(request), token, api_key), roles)

    return check


def _with_role(principal: Principal, roles: tuple[Role, ...]) -> Principal:
    if principal.role not in roles:
        raise NotAllowed(f"role {principal.role!r} may not use this; allowed: {', '.join(roles)}",
                         zh="您的账号没有使用此功能的权限。")
    return principal


# Who is calling: the caller, or the caller with one of the roles a router serves.
CurrentUser = Annotated[Principal, Depends(api_principal)]
PageUser = Annotated[Principal, Depends(page_principal)]
Admin = Annotated[Principal, Depends(require_role("admin"))]
Enterprise = Annotated[Principal, Depends(require_role("enterprise"))]
Regulator = Annotated[Principal, Depends(require_role("regulator"))]
Decider = Annotated[Principal, Depends(require_role("regulator", "admin"))]
Analyst = Annotated[Principal, Depends(require_role("analyst", "admin"))]
Sector = Annotated[Principal, Depends(require_role("sector"))]
ModelReader = Annotated[Principal, Depends(require_role("sector", "admin"))]
PageEnterprise = Annotated[Principal, Depends(require_role("enterprise", principal_dep=page_principal))]
PageRegulator = Annotated[Principal, Depends(require_role("regulator", principal_dep=page_principal))]
PageDecider = Annotated[Principal, Depends(require_role("regulator", "admin", principal_dep=page_principal))]
PageAnalyst = Annotated[Principal, Depends(require_role("analyst", "admin", principal_dep=page_principal))]
PageModelReader = Annotated[Principal, Depends(require_role("sector", "admin", principal_dep=page_principal))]


# The parameters of a subject read, declared once for the generic guard and the hot read.
UsccPath = Annotated[str, Path(pattern=USCC_PATTERN, description="unified social credit code")]
PurposeQuery = Annotated[str | None, Query(**PURPOSE_LENGTH,
                                           description="查询用途, logged; required for staff"), NoControlChars]
PurposeHeader = Annotated[str | None, Header(alias="X-Purpose", **PURPOSE_LENGTH), NoControlChars]
# a stored row's id in a path: the database's integer range, so a larger number is a 422, not a 500
RowIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


async def read_purpose(purpose: PurposeQuery = None, x_purpose: PurposeHeader = None) -> str | None:
    return purpose or x_purpose


@dataclass(frozen=True)
class SubjectAccess:
    """Proof that ``principal`` may read ``uscc`` and that the read was logged."""

    uscc: str
    principal: Principal
    purpose: str


def _endpoint(request: Request) -> str:
    """``METHOD /route/{template}`` (the URL only when no route matched: parsing it costs ≈ 20 µs)."""
    path = getattr(request.scope.get("route"), "path", None) or request.url.path
    return f"{request.method} {path}"


def log_reads(session: Session, request: Request, principal: Principal, usccs: list[str], purpose: str) -> None:
    """Log ``usccs`` as read (allowed) by this route, in ``session``'s transaction: for routes whose reads
    are not one subject's guarded read (the joint checks); the endpoint is the route's template."""
    append_entries(session, principal=principal, reads=[(u, "allowed") for u in usccs], purpose=purpose,
                   endpoint=_endpoint(request))


def log_refused(session: Session, request: Request, principal: Principal, usccs: list[str], purpose: str) -> None:
    """Log ``usccs`` as refused (``denied``) to this route's caller, durably, through the same
    chain as its allowed reads: for routes whose refusals are not a guarded read's (the joint
    checks: ``routes.credit_checks``). ``usccs`` empty: one entry without a code. Within the
    caller's hourly refusals (``refusal_allowed``: else `TooManyAttempts`)."""
    refusal_allowed(session, request, principal)
    append_entries(session, principal=principal, reads=[(u, "denied") for u in usccs or [""]], purpose=purpose,
                   endpoint=_endpoint(request))


async def log_read_async(request: Request, principal: Principal, uscc: str, purpose: str) -> None:
    """:func:`log_reads` of one subject on the event loop (SQLite file; see :func:`subject_read`)."""
    await append_entry_async(service_engine(settings_of(request)), principal=principal, uscc=uscc, purpose=purpose,
                             endpoint=_endpoint(request))


def _logged_purpose(principal: Principal, purpose: str | None) -> str:
    """The purpose to log: required of staff (查询用途); an enterprise reading itself needs none."""
    if purpose is not None:
        return purpose
    if principal.role != "enterprise":
        raise InvalidInput("purpose is required for staff reads of credit data (查询用途): pass "
                           "?purpose=… or the X-Purpose header", field="purpose",
                           zh="查询用途：工作人员查看企业信用信息须先说明查询用途（每次查看都登记在查询日志中），"
                              "请从“监管对象”列表填写查询用途后进入")
    return ENTERPRISE_SELF_VIEW


def _outcome(allowed: bool) -> str:
    return "allowed" if allowed else "denied"


def _granted(principal: Principal, uscc: str, purpose: str, allowed: bool) -> SubjectAccess:
    """The access a logged read grants, or the 404 of a subject the caller may not read."""
    if not allowed:
        # the same 404 whether the subject does not exist or is not the caller's (no existence oracle)
        raise UnknownSubject(f"no subject {uscc} that {principal.role} {principal.username!r} may read",
                             field="uscc")
    return SubjectAccess(uscc=uscc, principal=principal, purpose=purpose)


def _checked_and_logged(request: Request, session: Session, principal: Principal, uscc: str,
                        purpose: str | None) -> SubjectAccess:
    """Check role and coverage and log the read (allowed or denied), durably, before anything is read.
    A caller who reads no subject (an analyst) is refused as every role is (``_logged_refusal``)."""
    if principal.role not in SUBJECT_READER_ROLES:
        raise _logged_refusal(session, request, principal, SUBJECT_READER_ROLES)
    purpose = _logged_purpose(principal, purpose)
    allowed = can_read(session, principal, uscc)
    append_entry(session, principal=principal, uscc=uscc, purpose=purpose, endpoint=_endpoint(request),
                 outcome=_outcome(allowed))
    return _granted(principal, uscc, purpose, allowed)


def make_subject_access(principal_dep: PrincipalGetter,
                        acting_roles: tuple[Role, ...] | None = None) -> Callable[..., SubjectAccess]:
    """Build the subject guard for API routes or pages (they authenticate differently); with
    ``acting_roles``, for a route whose action only those readers may take (issue a report): another
    reader is refused by the role check, logged as every refused role is (``require_role``), before
    the code is judged (403, whatever the subject: no oracle)."""

    def subject_access(
        request: Request,
        uscc: UsccPath,
        session: SessionDep,
        purpose: Annotated[str | None, Depends(read_purpose)] = None,
        principal: Principal = Depends(require_role(*(acting_roles or SUBJECT_READER_ROLES),
                                                    principal_dep=principal_dep)),
    ) -> SubjectAccess:
        return _checked_and_logged(request, session, principal, uscc, purpose)

    return subject_access


def subject_read(read: Callable[[Connection, str], T]) -> Callable[..., Awaitable[T]]:
    """Dependency for hot API reads: what ``subject_access`` and ``api_principal`` do (caller,
    role, coverage check, durable log entry), then ``read(connection, uscc)``.

    The same checks, through the same functions, in one dependency with no sub-dependencies (each
    node costs FastAPI ≈ 40 µs of CPU per request). It declares the same parameters and security
    schemes, so OpenAPI is unchanged; the route only shapes the answer.

    On an SQLite file with ``Settings.event_loop_reads`` (the default) the coverage check and the
    read run on the event loop, on its read-only connection (``loop_connection``), and the request
    waits for its log entry's commit (by the writer thread, ``querylog.GroupCommitWriter``) without
    holding a thread: no thread-pool hop and no session. A locked database sends the read to a
    thread instead of holding the loop. Without it, on an SQLite file, the coverage check, the wait
    for the log commit and the read run in one thread-pool hop on the pool's connections, without
    a session (``_checked_logged_read``): for a database larger than the OS's page cache, where
    most pages a read of a random subject needs come from disk and a read on the loop would stop
    every other request of the worker (measured at 300 k subjects, the loop's part of a read 0.79
    ms median, 12 ms p99 wall for 0.3 ms of CPU; BENCHMARKS.md, issue 22, session 12). PostgreSQL
    and in-memory SQLite: the rest in one thread-pool hop on a session. On every database the caller
    comes first from ``_api_caller`` (this worker's cache, or one check of a credential however many
    requests bring it at once: on PostgreSQL each read that missed the cache checked it again).
    """

    async def logged_read(
        request: Request,
        uscc: _HotUscc,
        purpose: _HotPurpose = None,
        x_purpose: _HotPurposeHeader = None,
        token: Annotated[str | None, Depends(bearer_scheme)] = None,
        api_key: Annotated[str | None, Depends(_api_key)] = None,
    ) -> T:
        settings = settings_of(request)
        sqlite_file = is_sqlite_file(settings.database_url)
        conn = loop_connection(settings.database_url) if settings.event_loop_reads and sqlite_file else None
        # the caller first, from this worker's cache or one database check however many requests
        # bring the credential at once (``_api_caller``), on every database
        principal = await _api_caller(request, settings, token, api_key)
        if conn is None and not sqlite_file:
            return await run_in_threadpool(_read_in_thread, read, request, settings, uscc, purpose or x_purpose,
                                           principal)
        if principal.role not in SUBJECT_READER_ROLES:  # refused and logged as require_role's refusals
            raise await run_in_threadpool(_in_new_session, settings, lambda session: _logged_refusal(
                session, request, principal, SUBJECT_READER_ROLES))
        uscc, purpose, x_purpose = _validated_read(uscc, purpose, x_purpose)
        logged_purpose = _logged_purpose(principal, purpose or x_purpose)
        if conn is None:  # an SQLite file, reads off the event loop
            return await run_in_threadpool(_checked_logged_read, read, settings, principal, uscc, logged_purpose,
                                           _endpoint(request))
        try:
            allowed = can_read(conn, principal, uscc)
        except OperationalError:  # the database is locked (recovery): never wait on the loop
            return await run_in_threadpool(_read_in_thread, read, request, settings, uscc, logged_purpose,
                                           principal)
        await append_entry_async(service_engine(settings), principal=principal, uscc=uscc, purpose=logged_purpose,
                                 endpoint=_endpoint(request), outcome=_outcome(allowed))
        _granted(principal, uscc, logged_purpose, allowed)
        try:
            return read(conn, uscc)
        except OperationalError:  # locked, as above; the read is already logged
            return await run_in_threadpool(_in_new_session, settings,
                                           lambda session: read(session.connection(), uscc))

    return logged_read


# The hot read's parameters: documented as ``UsccPath``, ``PurposeQuery`` and ``PurposeHeader``
# (the same OpenAPI), but judged after the caller's role (``_validated_read``), as the parameters
# of a route behind ``require_role`` are: a refused role gets its 403, logged, whatever it sent.
_HotUscc = Annotated[str, Path(description="unified social credit code"),
                     WithJsonSchema(TypeAdapter(UsccPath).json_schema())]
_HotPurpose = Annotated[str | None, Query(description="查询用途, logged; required for staff"),
                        WithJsonSchema(TypeAdapter(PurposeQuery).json_schema())]
_HotPurposeHeader = Annotated[str | None, Header(alias="X-Purpose"), WithJsonSchema(TypeAdapter(PurposeHeader).json_schema())]
_READ_CHECKS = ((("path", "uscc"), TypeAdapter(UsccPath)), (("query", "purpose"), TypeAdapter(PurposeQuery)),
                (("header", "X-Purpose"), TypeAdapter(PurposeHeader)))


def _validated_read(*values: str | None) -> tuple:
    """The hot read's parameters checked by their declared rules (422 as FastAPI answers it)."""
    errors, checked = [], []
    for value, ((*loc,), adapter) in zip(values, _READ_CHECKS, strict=True):
        try:
            checked.append(adapter.validate_python(value))
        except ValidationError as exc:
            errors += [{**error, "loc": (*loc, *error["loc"])} for error in exc.errors(include_url=False)]
    if errors:
        raise RequestValidationError(errors)
    return tuple(checked)


def _checked_logged_read(read: Callable[[Connection, str], T], settings: Settings, principal: Principal,
                         uscc: str, purpose: str, endpoint: str) -> T:
    """Coverage check, durable log entry (allowed or denied), then ``read``: in the caller's
    thread, on connections of the service's pool (none held while the entry is committed)."""
    engine = service_engine(settings)
    with engine.connect() as conn:
        allowed = can_read(conn, principal, uscc)
    append_entry_durably(engine, principal=principal, uscc=uscc, purpose=purpose, endpoint=endpoint,
                         outcome=_outcome(allowed))
    _granted(principal, uscc, purpose, allowed)
    with engine.connect() as conn:
        return read(conn, uscc)


def _read_in_thread(read: Callable[[Connection, str], T], request: Request, settings: Settings, uscc: str,
                    purpose: str | None, principal: Principal) -> T:
    def work(session: Session) -> T:
        if principal.role not in SUBJECT_READER_ROLES:
            raise _logged_refusal(session, request, principal, SUBJECT_READER_ROLES)
        checked_uscc, checked_purpose, _ = _validated_read(uscc, purpose, None)
        access = _checked_and_logged(request, session, principal, checked_uscc, checked_purpose)
        return read(session.connection(), access.uscc)

    return _in_new_session(settings, work)


def _in_new_session(settings: Settings, work: Callable[[Session], T]) -> T:
    """``work(session)`` on a new session of the service's pool, closed afterwards (in a thread)."""
    session = new_session(settings)
    try:
        return work(session)
    finally:
        session.close()


subject_access = make_subject_access(api_principal)
page_subject_access = make_subject_access(page_principal)

SubjectAccessDep = Annotated[SubjectAccess, Depends(subject_access)]


@dataclass(frozen=True)
class ReadLog:
    """The query log of one request's reads, under its route's endpoint (``METHOD /template``)."""

    session: Session
    endpoint: str

    def reads(self, principal: Principal, purpose: str, reads: list[tuple[str, str]], *,
              personal_info_unmasked: bool = False) -> None:
        """Log ``reads`` (uscc, "allowed" | "denied"), durably, before the caller shows anything."""
        append_entries(self.session, principal=principal, purpose=purpose, endpoint=self.endpoint, reads=reads,
                       personal_info_unmasked=personal_info_unmasked)

    def shown(self, principal: Principal, purpose: str, usccs: Iterable[str]) -> None:
        """Log each subject in ``usccs`` as an allowed read (a list the caller may see)."""
        self.reads(principal, purpose, [(uscc, "allowed") for uscc in usccs])


async def read_log(request: Request, session: SessionDep) -> ReadLog:
    return ReadLog(session, _endpoint(request))


ReadLogDep = Annotated[ReadLog, Depends(read_log)]
