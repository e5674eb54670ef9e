"""Request bodies over MAX_REQUEST_BODY_BYTES are refused with 413 while they stream in,
on a real Daphne (which otherwise reads a whole body before the application runs) and in the
ASGI middleware on its own (for servers that stream bodies to the application)."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest
from asgiref.testing import ApplicationCommunicator
from django.conf import settings

from config.asgi import application
from tests.daphne_server import DaphneProcess, rss_mib, server_env

MIB = 1024 * 1024
CHUNK = b"x" * (64 * 1024)
# The body goes to a path that needs no database: an accepted one gets Django's CSRF refusal.
HEAD = b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def daphne() -> Iterator[DaphneProcess]:
    server = DaphneProcess(server_env())
    try:
        server.wait_until_listening()
        yield server
    finally:
        server.stop()


def chunked(total: int) -> Iterator[bytes]:
    """A chunked body of `total` bytes, one 64 KiB chunk at a time, then its last chunk."""
    for _ in range(total // len(CHUNK)):
        yield b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK)
    yield b"0\r\n\r\n"


def reply(sock: socket.socket) -> bytes:
    """The response's head and what came with it."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return data


def upload(
    address: tuple[str, int], body: Iterator[bytes], *, pid: int
) -> tuple[bytes, int, float]:
    """Stream `body` as a chunked POST until it ends or the server answers; the answer, the
    bytes sent and the server's highest resident memory (MiB) seen meanwhile."""
    peak = rss_mib(pid)
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        for number, piece in enumerate(body):
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
            if number % 128 == 0:  # every 8 MiB
                peak = max(peak, rss_mib(pid))
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body ended
        return reply(sock), sent, max(peak, rss_mib(pid))


def test_a_300_mb_chunked_upload_is_refused_while_streaming_and_daphne_does_not_grow(daphne):
    pid = daphne.process.pid
    before = rss_mib(pid)
    answer, sent, peak = upload(("127.0.0.1", daphne.port), chunked(300 * MIB), pid=pid)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert "o limite é 10,0\xa0MB".encode() in answer
    assert peak - before < 4, f"Daphne grew from {before:.0f} to {peak:.0f} MiB"
    assert sent < 20 * MIB  # refused near the limit, not after the whole body


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(daphne):
    with socket.create_connection(("127.0.0.1", daphne.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (300 * MIB))
        answer = reply(sock)
    # Straight to 413: no "100 Continue" inviting the client to send the body first.
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def test_a_body_at_the_limit_reaches_the_application(daphne):
    limit = settings.MAX_REQUEST_BODY_BYTES
    assert limit == 10 * MIB  # the default
    with socket.create_connection(("127.0.0.1", daphne.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % limit)
        sock.sendall(b"x" * limit)
        answer = reply(sock)
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]  # Django's CSRF check answered
    answer, _, _ = upload(("127.0.0.1", daphne.port), chunked(limit), pid=daphne.process.pid)
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]


async def call(app, scope: dict, body: list[bytes]) -> list[dict]:
    """Run one HTTP request through `app` chunk by chunk; what it sent back."""
    communicator = ApplicationCommunicator(app, scope)
    for number, chunk in enumerate(body):
        await communicator.send_input(
            {"type": "http.request", "body": chunk, "more_body": number < len(body) - 1}
        )
    messages = [await communicator.receive_output(timeout=10)]
    while messages[-1]["type"] != "http.response.body" or messages[-1].get("more_body"):
        messages.append(await communicator.receive_output(timeout=10))
    await communicator.wait(timeout=10)
    return messages


def http_scope(headers: list[tuple[bytes, bytes]] = ()) -> dict:
    return {
        "type": "http",
        "method": "POST",
        "path": "/accounts/login/",
        "raw_path": b"/accounts/login/",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def test_the_asgi_middleware_refuses_a_streamed_body_once_it_passes_the_limit(settings):
    # Daphne refuses such a body before the application runs; a server that streams bodies
    # (uvicorn) hands the chunks to the application, where the middleware counts them.
    settings.MAX_REQUEST_BODY_BYTES = 1000
    messages = await call(application, http_scope(), [b"x" * 600, b"x" * 600, b"x"])
    assert messages[0]["status"] == 413
    assert "o limite é 1000\xa0bytes".encode() in messages[1]["body"]
    # At the limit Django reads it and answers (its CSRF check refuses the login form).
    messages = await call(application, http_scope(), [b"x" * 600, b"x" * 400])
    assert messages[0]["status"] == 403


async def test_the_asgi_middleware_refuses_a_declared_length_without_reading(settings):
    settings.MAX_REQUEST_BODY_BYTES = 1000
    messages = await call(application, http_scope([(b"content-length", b"1001")]), [])
    assert messages[0]["status"] == 413
