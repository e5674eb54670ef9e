"""Request bodies past MAX_REQUEST_BODY_BYTES are refused with 413 while they stream in.

Two guards, because Daphne calls the application only once it holds the whole body: Twisted
writes the body to a temporary file as it arrives (any chunked body, or one declared over
100 kB), and Daphne then puts all of it into the application's queue at once, in memory,
before the application reads its first chunk. A 300 MB upload grew a Daphne process by
300 MB whatever the application did (Django's DATA_UPLOAD_MAX_MEMORY_SIZE acts later still).

- `LimitedWebRequest` is Daphne's request with a byte count: it answers 413 as soon as the
  declared length or the bytes received pass the limit, and drops the rest unstored.
- `BodySizeLimit` wraps the HTTP application and counts `http.request` chunks, for a server
  that streams bodies to the application (uvicorn, hypercorn); under Daphne the request
  above has refused the body before it gets here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from daphne.http_protocol import WebRequest
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext

# How long a refused connection is still read (and the bytes dropped) after the 413: closing
# a socket with unread data sends a reset, and a client still uploading then loses the 413
# it had not read yet. A client that reads it stops within a round trip.
LINGER_SECONDS = 5


def too_large_message() -> bytes:
    limit = filesizeformat(settings.MAX_REQUEST_BODY_BYTES)
    return (gettext("Request too large: the limit is %(size)s.") % {"size": limit}).encode()


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length among an ASGI scope's headers, if any."""
    for name, value in headers:
        if name.lower() == b"content-length" and value.isdigit():
            return int(value)
    return None


class LimitedWebRequest(WebRequest):
    """Daphne's request, refusing a body over MAX_REQUEST_BODY_BYTES while it arrives."""

    body_received = 0
    body_refused = False

    def gotLength(self, length: int | None) -> None:
        # Called once the headers are in, before any byte of the body (and before Twisted
        # answers "100 Continue", which a refused request must not get).
        super().gotLength(length)
        if length is not None and length > settings.MAX_REQUEST_BODY_BYTES:
            self.refuse_body()

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_refused:
            return
        self.body_received += len(data)
        if self.body_received > settings.MAX_REQUEST_BODY_BYTES:
            self.refuse_body()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        # A refused body ended: there is nothing to parse and no application to call.
        if not self.body_refused:
            super().requestReceived(command, path, version)

    def refuse_body(self) -> None:
        from twisted.internet import reactor

        self.body_refused = True
        self.requestHeaders.removeHeader(b"Expect")
        body = too_large_message()
        transport = self.channel.transport
        transport.write(
            b"HTTP/1.1 413 Content Too Large\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: %d\r\n"
            b"Connection: close\r\n\r\n%s" % (len(body), body)
        )
        reactor.callLater(LINGER_SECONDS, transport.loseConnection)


Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


class BodySizeLimit:
    """ASGI middleware: an HTTP body over MAX_REQUEST_BODY_BYTES gets 413, never the app.

    Chunks are passed on as they come, so nothing is held here. Past the limit the app is
    told the client left (Django then drops what it read and answers nothing) and the 413
    is sent in its place.
    """

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.MAX_REQUEST_BODY_BYTES
        if (declared_length(scope["headers"]) or 0) > limit:
            await self.refuse(send)
            return
        received = 0
        over = False

        async def counting_receive() -> dict:
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, counting_receive, send)
        if over:
            await self.refuse(send)

    async def refuse(self, send: Send) -> None:
        body = too_large_message()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % len(body)),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
