"""联合奖惩 joint checks for the departments' business systems (政府采购, 招标投标, 行政审批 …):
``GET /api/v1/credit-checks/{uscc}?matter=…`` and ``POST /api/v1/credit-checks/batch`` (up to
10,000 codes). Machine clients use the API keys an admin creates (``X-API-Key``); a regulator's
key checks the matters the measures catalogue opens to its department, an admin's every matter.
Every check is logged in the query log before it is answered (a batch: one entry per code, all
in one group commit), and so is every refused request of an authenticated caller (one ``denied`` entry: no
permission, unknown matter, invalid code, over the batch limit …; ``_RefusalsLogged``). The answer
is measures and their basis, never the grade.

A check's basis is published information (records in force, list entries), so a department checks
any subject of the city for an open matter, not only those it covers for reading credit files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from serving.db.session import loop_connection
from serving.deps import (
    PurposeHeader,
    PurposeQuery,
    TodayDep,
    UsccPath,
    checked_principal,
    flat_role,
    get_today,
    log_read_async,
    log_reads,
    log_refused,
    new_session,
)
from serving.errors import (
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    ServiceError,
    TooManyAttempts,
    error_responses,
)
from serving.measures import MeasuresCatalogue, load_measures
from serving.routes._routers import CallerFirstRoute, parse_json_body
from serving.schemas import MATTER_PATTERN, CreditCheckBatchIn, CreditCheckBatchOut, CreditCheckOut
from serving.security import Principal
from serving.services import credit_checks
from serving.settings import Settings, settings_of

logger = logging.getLogger(__name__)
_REFUSED = frozenset({400, 403, 404, 409, 413, 422})  # a refusal of the request (a 401 is no caller; 5xx ours)


class _RefusalsLogged(APIRoute):
    """A joint-check route whose refusals are logged before they are answered: the role, the
    matter, the codes, the batch limit and any other validation (``_log_refusal``). An allowed
    check pays one ``try``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError:
                await _log_refusal(request, "invalid_input")
                raise
            except (ServiceError, HTTPException) as exc:
                if exc.status_code in _REFUSED:
                    await _log_refusal(request, getattr(exc, "code", None) or f"http_{exc.status_code}")
                    exc.logged = True  # type: ignore[union-attr]  # once (deps.log_unlogged_refusal)
                raise

        return handle


async def _log_refusal(request: Request, code: str) -> None:
    """Log a refused check as one ``denied`` entry (``deps.log_refused``): who (the credential,
    checked as the route checks it), the first code, the matter, the number of codes and the
    purpose as far as they were sent, and ``code``. A request without a valid credential is not logged here: its API key was
    counted as a failed login (``users.api_key_principal``). If the log cannot be written, the
    refusal is still answered (and the failure reported in the service's log)."""
    if request.method == "POST":
        try:
            sent = parse_json_body(await request.body())  # read already: the request's cached body
        except ValueError:  # not JSON, not UTF-8, or nested too deep
            sent = None
        sent = sent if isinstance(sent, dict) else {}
        usccs = sent.get("usccs")
        codes = credit_checks.refused_codes(usccs)
        purpose = credit_checks.refused_purpose(code, sent.get("matter"), sent.get("purpose"),
                                                len(usccs) if isinstance(usccs, list) else None)
    else:
        codes = credit_checks.refused_codes(request.path_params.get("uscc"))
        purpose = credit_checks.refused_purpose(code, request.query_params.get("matter"),
                                                request.query_params.get("purpose") or request.headers.get("X-Purpose"))

    def work(session: Session) -> None:
        try:
            principal = checked_principal(request, session)
        except (NotAuthenticated, TooManyAttempts):
            return
        # one entry per refused request, whatever it sent: its first code, the count in the purpose
        # (a refused batch reads nothing; an entry per code let one request write 10,000 of them,
        # past the hourly cap on refusals, which counts entries as requests)
        log_refused(session, request, principal, codes[:1], purpose)

    try:
        await run_in_threadpool(_in_session, settings_of(request), work)
    except TooManyAttempts:
        raise  # past the caller's hourly refusals (deps.refusal_allowed): answered instead
    except Exception:
        logger.exception("a refused joint check could not be logged")


class _CheckRoute(CallerFirstRoute, _RefusalsLogged):
    """A joint-check route: its body judged after the caller and its role (``CallerFirstRoute``,
    outermost), its refusals logged (``_RefusalsLogged``, on the request the route reads)."""


router = APIRouter(prefix="/api/v1/credit-checks", tags=["credit-checks"], route_class=_CheckRoute)
_ERRORS = (NotAuthenticated, NotAllowed, InvalidInput)
Checker = Annotated[Principal, Depends(flat_role(*credit_checks.CHECKER_ROLES))]
MatterQuery = Annotated[str, Query(pattern=MATTER_PATTERN, description="the matter (事项) of the measures catalogue")]


def measures_of(request: Request) -> MeasuresCatalogue:
    """The app's measures catalogue (``Settings.credit_measures_file``), read on first use."""
    state = request.app.state
    catalogue = getattr(state, "credit_measures", None)
    if catalogue is None:
        catalogue = state.credit_measures = load_measures(settings_of(request).credit_measures_file)
    return catalogue


def _json(body: Any) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), media_type="application/json")


def _in_session(settings: Settings, work: Any) -> Any:
    session = new_session(settings)
    try:
        return work(session)
    finally:
        session.close()


@router.get("/{uscc}", response_model=CreditCheckOut, responses=error_responses(*_ERRORS))
async def check_one(request: Request, uscc: UsccPath, matter: MatterQuery, principal: Checker,
                    purpose: PurposeQuery = None, x_purpose: PurposeHeader = None) -> Response:
    """The measures of ``matter`` that apply to the subject, each with its records, list entries
    and legal basis (``found`` false for a code no subject has). Logged before it is answered, and
    so is a refusal (``denied``, with the refusal's code)."""
    purpose = purpose or x_purpose  # as `read_purpose` reads it, without a dependency node of its own
    # today as `TodayDep` gives it (tests override `get_today`), without the thread-pool hop
    # FastAPI makes for a sync dependency
    today = request.app.dependency_overrides.get(get_today, get_today)()
    settings = settings_of(request)
    catalogue = measures_of(request)
    credit_checks.open_matter(catalogue, matter, principal)
    logged = credit_checks.logged_purpose(matter, purpose)
    conn = loop_connection(settings.database_url) if settings.event_loop_reads else None
    basis = None
    if conn is not None:  # SQLite file: log and read on the event loop (see deps.subject_read)
        await log_read_async(request, principal, uscc, logged)
        try:
            valid, _stale = credit_checks.stored_bases(conn, [uscc], today)
            basis = valid.get(uscc)
        except OperationalError:  # locked: the thread below reads it
            basis = None
        if basis is None:
            basis = (await run_in_threadpool(
                _in_session, settings, lambda session: credit_checks.bases(session, [uscc], today)))[uscc]
    else:
        def work(session: Session) -> credit_checks.Basis:
            log_reads(session, request, principal, [uscc], logged)
            return credit_checks.bases(session, [uscc], today)[uscc]

        basis = await run_in_threadpool(_in_session, settings, work)
    return _json(credit_checks.check_result(catalogue, matter, today, basis))


@router.post("/batch", response_model=CreditCheckBatchOut, responses=error_responses(*_ERRORS))
def check_batch(request: Request, body: CreditCheckBatchIn, principal: Checker, today: TodayDep) -> Response:
    """The joint check of up to 10,000 subjects for one matter: one result per distinct code, in
    the order given. Every code is logged (one entry each, one commit) before anything is read; a
    refused batch (a code not valid, over the limit, a matter not the caller's) is logged too,
    each code as far as it parses, ``denied``."""
    catalogue = measures_of(request)
    credit_checks.open_matter(catalogue, body.matter, principal)
    usccs = list(dict.fromkeys(body.usccs))
    settings = settings_of(request)

    def work(session: Session) -> dict[str, credit_checks.Basis]:
        log_reads(session, request, principal, usccs, credit_checks.logged_purpose(body.matter, body.purpose))
        return credit_checks.bases(session, usccs, today)

    found = _in_session(settings, work)
    return _json({"matter": body.matter, "checked_on": today.isoformat(), "catalogue_version": catalogue.version,
                  "results": [credit_checks.check_result(catalogue, body.matter, today, found[u]) for u in usccs]})


__all__ = ["router"]
