"""Helpers of the attack tests (a uniquely named module: several test packages have a
``conftest.py``, so tests must not ``import conftest``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def server_key(app) -> str:
    """The key the running app signs its tokens with (what a legitimate login gets)."""
    return app.state.settings.jwt_secret.get_secret_value()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def tiers_serve(tmp_path: Path, database_url: str, *, workers: int = 2, **env: str) -> Iterator[str]:
    """``tiers serve`` as the README runs it (its defaults: no proxy trusted), on a free port, with
    ``workers`` uvicorn workers; yields the base URL and stops the whole process group."""
    import signal

    port = free_port()
    full_env = {**os.environ, "TIERS_DATABASE_URL": database_url, "TIERS_KEYS_DIR": str(tmp_path / "keys"),
                "TIERS_DATA_DIR": str(tmp_path / "data"), "TIERS_SQLITE_SYNCHRONOUS": "NORMAL", **env}
    log = tmp_path / f"serve-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "serving.cli.main", "serve", "--port", str(port),
                                 "--workers", str(workers), "--no-access-log"],
                                env=full_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError("tiers serve exited: " + log.read_text()[-3000:])
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("tiers serve did not answer /health: " + log.read_text()[-3000:])
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
