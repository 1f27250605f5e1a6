"""``create_app()`` builds the FastAPI application; nothing runs at import time."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from serving.auth_gate import CredentialsBeforeBody
from serving.body_limit import BodySizeLimit
from serving.deps import log_unlogged_refusal
from serving.errors import install_error_handlers
from serving.headers import SecurityHeaders
from serving.overload import InFlightLimit
from serving.pages import error_page
from serving.services.grades import Regrader
from serving.services.repairs import RepairEligibility
from serving.settings import Settings, get_settings

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"


_running_apps = 0
_running_apps_lock = threading.Lock()


@contextmanager
def _startup_objects_frozen() -> Iterator[None]:
    """While an app runs, the objects that exist at its startup (modules, routes, models) are
    frozen out of the cyclic GC: its full collections, which walked them all and took tens of ms,
    each pause landing in some request's latency, no longer do. The freeze is the process's, so
    it is lifted when the last running app stops (tests run several apps in one process)."""
    global _running_apps
    with _running_apps_lock:
        _running_apps += 1
        gc.collect()
        gc.freeze()
    try:
        yield
    finally:
        with _running_apps_lock:
            _running_apps -= 1
            if _running_apps == 0:
                gc.unfreeze()


async def _warm_up(app: FastAPI, settings: Settings) -> None:
    """Build, before the startup objects are frozen, what would otherwise be built lazily while
    serving: FastAPI's per-route state for every included router (≈ 20 k objects, made by the
    first request that walks the routes) and the checkpoint signer (``cryptography`` imported and
    the key parsed in the checkpoint thread, ≈ 20 ms holding the GIL, at the first checkpoint).
    Left to the first requests they stayed outside the frozen set, and every full collection of
    the cyclic GC walked them again: 6-18 ms pauses, several a minute, under load.
    One request that no route answers walks every router (its 404 touches nothing)."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/.warm-up", "raw_path": b"/.warm-up", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"localhost")], "client": None, "server": None, "state": {}}
    try:
        await app(scope, receive, send)
        from serving.services.checkpoints import prepare_signer
        from serving.services.querylog import keys_for

        prepare_signer(keys_for(settings.database_url).signing_key)
    except Exception:  # an optimisation: never stops the start
        logger.exception("warming up the app failed")


def _anchor_log(settings: Settings) -> None:
    """At startup and at a graceful stop, sign a checkpoint of the log's head as it is: a log
    written before the keyed chain (or by a worker that stopped before its writer's next
    checkpoint) is anchored. Never stops the start or the stop."""
    from serving.deps import new_session
    from serving.services.querylog import anchor_now

    try:
        session = new_session(settings)
        try:
            anchor_now(session)
        finally:
            session.close()
    except Exception:  # e.g. the schema is not migrated yet: /health says so
        logger.exception("could not anchor the query log at startup")


def create_app(settings: Settings | None = None, *, regrader: Regrader | None = None,
               repair_eligibility: RepairEligibility | None = None) -> FastAPI:
    """The service: API under ``/api/v1``, pages, ``/health``.

    ``settings`` defaults to the environment (``TIERS_*``); a key it lacks is made (development
    only: ``serving.keys``). ``regrader`` and
    ``repair_eligibility`` replace the defaults. Without them: when ``settings.store_dir`` is set,
    the real regrader (`serving.services.regrade`, with the models of ``app.state.model_holder``,
    a `ChampionHolder` that ``/health`` reports on); otherwise grades are marked stale. Repair
    eligibility is the catalogue policy's either way (`serving.services.repairs`).
    Migrations run at startup when ``settings.run_migrations_on_startup``.
    """
    from serving.routes import (
        admin,
        admin_pages,
        analyst,
        auth,
        commitments,
        credit_checks,
        credit_reports,
        enterprise,
        gate_pages,
        health,
        pages,
        plans,
        public,
        regulator,
        sector,
        subjects,
        warnings,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        effective = app.dependency_overrides.get(get_settings, lambda: app.state.settings)()
        # sync routes share this many threads; the database pool has as many connections
        anyio.to_thread.current_default_thread_limiter().total_tokens = effective.threadpool_size
        if effective.run_migrations_on_startup:
            from serving.db.migrate import upgrade

            upgrade(effective.database_url)
        _anchor_log(effective)
        await _warm_up(app, effective)
        with _startup_objects_frozen():
            yield
        from serving.services.querylog_flush import flush_all

        flush_all()  # the log's entries committed but not yet fsynced (Settings.querylog_flush_ms)
        _anchor_log(effective)  # a graceful stop anchors the log's last entries too

    app = FastAPI(
        title="tiered-supervision",
        summary="信用分级分类监管: grades, reasons, objections, repair, query log",
        version="0.1.0",
        lifespan=lifespan,
    )
    from serving.keys import with_keys

    configured = with_keys(settings if settings is not None else get_settings())
    app.state.settings = configured  # read by `deps.current_settings`; tests may still override get_settings
    from serving.services.querylog import LogKeys, use_keys

    use_keys(configured.database_url, LogKeys.of(configured))  # the query log's MAC and checkpoint keys
    if configured.store_dir is not None:
        from serving.services.champions import ChampionHolder
        from serving.services.model_registry import GENERAL_MODEL, open_registry
        from serving.services.regrade import make_regrader

        # MLflow is imported on the first regrade or /health, not at startup
        app.state.model_holder = ChampionHolder(lambda: open_registry(configured.mlflow_tracking_uri),
                                                names=(GENERAL_MODEL,))
        regrader = regrader or make_regrader(store_dir=configured.store_dir, models=app.state.model_holder)
    # app.state, not dependency_overrides: with any override present, FastAPI re-analyses every
    # dependency's signature on every request (≈ 8 ms of CPU per read measured); overrides are for tests
    app.state.regrader = regrader
    app.state.repair_eligibility = repair_eligibility
    install_error_handlers(app, error_page, refused=log_unlogged_refusal)
    app.add_middleware(InFlightLimit, limit=configured.max_in_flight_requests)
    # no credential, no body read: a 401 before FastAPI parses up to the body limit
    app.add_middleware(CredentialsBeforeBody, service=app)
    # before the in-flight slot is held and before any body is read
    app.add_middleware(BodySizeLimit, max_bytes=configured.max_request_body_bytes)
    # outermost: the 503s of the in-flight limit carry the headers too
    app.add_middleware(SecurityHeaders, hsts=not configured.is_development)
    # The joint check first: its callers are the departments' systems, at hundreds of requests a
    # second. The router tries the routers in this order and rejects each by matching every one of
    # its routes (FastAPI's included routers, ≈ 10 µs each): behind the others a check cost ≈ 0.25
    # ms of CPU to route (measured; docs/performance-notes.md). No other route matches its paths,
    # so the order changes nothing else (tests/serving/test_srv_credit_checks.py).
    app.include_router(credit_checks.router)
    for module in (auth, subjects, enterprise, regulator, sector, analyst, admin, health, pages):
        app.include_router(module.router)
    app.include_router(plans.router)
    app.include_router(plans.pages_router)
    app.include_router(commitments.router)
    app.include_router(commitments.pages_router)
    app.include_router(warnings.router)
    app.include_router(warnings.pages_router)
    app.include_router(public.router)
    app.include_router(credit_reports.router)
    app.include_router(credit_reports.pages_router)
    app.include_router(sector.models_router)
    app.include_router(sector.pages_router)
    app.include_router(admin_pages.router)
    app.include_router(gate_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
