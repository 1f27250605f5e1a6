"""Load shedding: a worker answers a fast 503 instead of queueing without bound.

A pure ASGI middleware (not ``BaseHTTPMiddleware``, which costs a task and a stream per request).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.errors import Overloaded

# liveness must answer while the worker sheds load
_NEVER_SHED = frozenset({"/health"})


class InFlightLimit:
    """At most ``limit`` HTTP requests in flight in this worker; the next ones get 503 ``overloaded``
    with ``Retry-After`` at once, so an overloaded service stays fast to say so (and never lets a
    request wait 30 s for a database connection)."""

    def __init__(self, app: ASGIApp, limit: int, retry_after_s: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.in_flight = 0
        self._error = Overloaded(f"more than {limit} requests in flight in this worker; retry shortly",
                                 retry_after_s=retry_after_s)
        self._body = json.dumps({"error": {"code": self._error.code, "message": self._error.message}}).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _NEVER_SHED:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self._reject(send)
            return
        self.in_flight += 1  # one event loop per worker: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _reject(self, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self._body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in self._error.headers.items()]
        await send({"type": "http.response.start", "status": self._error.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
