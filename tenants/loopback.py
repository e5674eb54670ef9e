"""The lifecycle the fake providers share (MercadoPago, WhatsApp's Graph API, Focus NFe).

Each fake keeps its own state and handler; this is only the threaded HTTP server they run
on, its address, and starting and stopping it. Tests and `make run` bind it to 127.0.0.1.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when 50 webhooks look a payment up at once;
    # the client then waits for TCP's retransmission (seconds) and times out.
    request_queue_size = 128
    daemon_threads = True


class FakeServer:
    """A fake provider's server: `listen` in `__init__`, then `start()` and `stop()`."""

    server: ThreadingHTTPServer
    thread: threading.Thread | None = None

    def listen(self, handler: type[BaseHTTPRequestHandler], host: str, port: int) -> None:
        self.server = _Server((host, port), handler)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
