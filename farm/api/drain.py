"""Read and drop what is left of a request body before answering, so that every client reads
the answer.

urllib and http.client send a whole body before they read an answer, and ask for
`Connection: close`: when the server answers (a 401, a 413, a 422...) without reading the
body and closes, the unread bytes make the kernel reset the connection, and the client sees
"connection reset" instead of the answer. So whatever the app answers, any part of the
body it did not read is read and dropped first, up to DISCARD_LIMIT_BYTES. A client that
sends `Expect: 100-continue` (curl does) and has not been told to go on is answered at
once: it sends no body. A body declared bigger than the limit is not read at all: the
answer goes out with `Connection: close`, which a client that sends it anyway may see as a
reset; the CI client (deploy/ci/farm_render.py) checks GET /limits before it uploads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

DISCARD_LIMIT_BYTES = 1024**3
"""The most of an unread request body that is read and dropped before an answer (bytes);
past it the connection is closed instead."""

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class DrainUnreadBody:
    """ASGI middleware: before the response starts, the rest of the request body is dropped."""

    def __init__(self, app: Any, limit_bytes: int = DISCARD_LIMIT_BYTES) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = {"started": False, "ended": False}

        async def tracked() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body["started"] = True
                body["ended"] = not message.get("more_body", False)
            else:
                body["ended"] = True          # the client went away
            return message

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start" and not body["ended"]:
                if not await self._drop_rest(scope, tracked, body["started"]):
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
                body["ended"] = True
            await send(message)

        await self.app(scope, tracked, answer)

    async def _drop_rest(self, scope: Message, receive: Receive, started: bool) -> bool:
        """True when the body was read to its end; False when it was left (close the connection)."""
        headers = dict(scope.get("headers") or [])
        if not started and b"100-continue" in headers.get(b"expect", b"").lower():
            return False          # the client waits for "100 Continue" before it sends the body: it never will
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit_bytes:
            return False
        dropped = 0
        while dropped <= self.limit_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return False
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False
