"""Request bodies are bounded before anything reads them (a pure ASGI middleware).

A declared ``Content-Length`` over the limit is refused at once, unread; a body without one
(chunked) is counted as it streams and refused as soon as it passes the limit. Either way the
answer is 413 ``body_too_large``, before a parser, a form decoder or authentication has had to
hold the whole body in memory.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def too_large_message(limit: int) -> str:
    return f"请求体过大：上限 {limit} 字节 (request body too large: at most {limit} bytes)"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit: FastAPI re-raises an
    ``HTTPException`` met while reading the body, and the service's handler renders it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit))


class BodySizeLimit:
    """At most ``max_bytes`` of request body per HTTP request."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        message = too_large_message(max_bytes)
        self._body = json.dumps({"error": {"code": "body_too_large", "message": message}},
                                ensure_ascii=False).encode("utf-8")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1  # unparseable: refuse rather than trust it
                if declared > self.max_bytes:
                    await self._reject(send)
                    return
                break
        received = 0
        started = False
        limit = self.max_bytes

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracking_send)
        except BodyTooLarge:  # read outside a route (a middleware): answer here if nothing was sent
            if started:
                raise
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        headers = [(b"content-type", b"application/json; charset=utf-8"),
                   (b"content-length", str(len(self._body)).encode()), (b"connection", b"close")]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": self._body})
