"""``tiers serve``: run the API and pages with uvicorn."""

from __future__ import annotations

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

    from serving.cli.admin import settings_or_exit

    # fail fast with exit 2 before uvicorn spawns workers; in development this also makes the
    # keys on first start, once, before the workers read them
    settings = settings_or_exit()
    uvicorn.run("serving.app:create_app", factory=True, host=host, port=port, workers=workers, reload=reload,
                access_log=access_log, **proxy_options(settings))


def proxy_options(settings) -> dict:
    """uvicorn's proxy options for ``settings``: proxy headers only from the configured proxies.

    uvicorn's own default trusts X-Forwarded-For from 127.0.0.1, so anyone connecting from the
    host itself (or through a local proxy that passes the header on) could claim any address and
    escape the per-address login limit."""
    allowed = settings.forwarded_allow_ips.strip()
    return {"proxy_headers": bool(allowed), "forwarded_allow_ips": allowed or None}
