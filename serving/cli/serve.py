"""``tiers serve``: run the API and pages with uvicorn."""

from __future__ import annotations

import ipaddress
import os

import typer

from serving.cli.app import app


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="interface to bind"),
    port: int = typer.Option(8000, min=1, max=65535, help="TCP port"),
    workers: int = typer.Option(1, min=1, max=64, help="uvicorn worker processes"),
    reload: bool = typer.Option(False, help="reload on code changes (development)"),
    access_log: bool = typer.Option(True, "--access-log/--no-access-log",
                                    help="one log line per request (costs CPU under load; reads of credit "
                                         "data are in the query log either way)"),
) -> None:
    """Serve the API (/api/v1, /docs) and pages on http://HOST:PORT (migrations run at startup).

    uvicorn picks uvloop and httptools when they are installed (``uvicorn[standard]``). The
    client's address is the socket's peer: X-Forwarded-For is believed only from the proxies in
    TIERS_FORWARDED_ALLOW_IPS (none by default; uvicorn itself would believe 127.0.0.1)."""
    import uvicorn

    from serving.cli.admin import database_or_exit, settings_or_exit

    # fail fast with exit 2 before uvicorn spawns workers; in development this also makes the
    # keys on first start, once, before the workers read them
    settings = settings_or_exit()
    database_or_exit(settings)
    warn_if_pools_exceed_the_server(settings, workers)
    # the workers read their settings from the environment: the credit reports' QR codes must
    # point to this server, not to the default port
    os.environ["TIERS_PUBLIC_URL"] = public_url_for(settings, host, port)
    # uvicorn's own worker ping timeout (5 s) is kept: a plan for a city of more than
    # `plan_inline_subjects` runs in a process of its own (serving.services.plan_jobs), so no
    # request holds a worker's GIL for seconds (issue 22)
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers, reload=reload,
                access_log=access_log, **proxy_options(settings))


def warn_if_pools_exceed_the_server(settings, workers: int) -> None:
    """Each worker's pool holds up to ``threadpool_size + 1`` connections (its threads and the query
    log's writer): say so when the workers together may ask a PostgreSQL server for more than it
    accepts (its default ``max_connections`` of 100 fits two workers), before a burst of requests
    meets "too many clients already"."""
    from serving.db.session import connection_limit

    limit = connection_limit(settings.database_url)
    wanted = workers * (settings.threadpool_size + 1)
    if limit is not None and wanted > limit:
        typer.echo(f"warning: {workers} workers × (TIERS_THREADPOOL_SIZE {settings.threadpool_size} + 1) = {wanted} "
                   f"connections at most, the server accepts {limit}: raise max_connections or lower "
                   "TIERS_THREADPOOL_SIZE (docs/postgres.md)", err=True)


def proxy_options(settings) -> dict:
    """uvicorn's proxy options for ``settings``: proxy headers only from the configured proxies.

    uvicorn's own default trusts X-Forwarded-For from 127.0.0.1, so anyone connecting from the
    host itself (or through a local proxy that passes the header on) could claim any address and
    escape the per-address login limit."""
    allowed = settings.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(allowed), "forwarded_allow_ips": allowed or None}


def public_url_for(settings, host: str, port: int) -> str:
    """The address credit reports' QR codes point to: ``TIERS_PUBLIC_URL`` when it is set, else
    the address this server listens on (a wildcard bind is reached through the loopback here;
    behind a proxy or on another host, set TIERS_PUBLIC_URL)."""
    if "public_url" in settings.model_fields_set:
        return settings.public_url
    shown = "127.0.0.1" if _unspecified(host) else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def _unspecified(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a name, not an address
        return host == ""
