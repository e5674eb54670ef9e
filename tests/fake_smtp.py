"""An SMTP server for tests: a TCP server on 127.0.0.1 that takes every mail and records
every byte it gets, STARTTLS included when given a certificate.

Enough SMTP for smtplib: EHLO/HELO, STARTTLS, AUTH (any credentials), MAIL, RCPT, DATA,
RSET, NOOP, QUIT. `received` is every byte as it arrived (after STARTTLS, decrypted), so a
test can say that nothing reached it.
"""

from __future__ import annotations

import socketserver
import ssl
import threading


class FakeSMTP:
    """Start with `with FakeSMTP() as smtp:`; `smtp.port`, `smtp.connections`,
    `smtp.received` (bytes) and `smtp.messages` (each mail's DATA)."""

    def __init__(
        self, tls: ssl.SSLContext | None = None, implicit_tls: ssl.SSLContext | None = None
    ) -> None:
        """`tls`: offer STARTTLS with it; `implicit_tls`: TLS from the first byte (port 465)."""
        self.connections = 0
        self.received = b""
        self.messages: list[bytes] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 5

            def reply(self, line: str) -> None:
                self.wfile.write(line.encode() + b"\r\n")

            def line(self) -> bytes:
                data = self.rfile.readline()
                with fake._lock:
                    fake.received += data
                return data

            def start_tls(self, context: ssl.SSLContext) -> bool:
                try:
                    self.request = context.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    return False  # the client refused our certificate
                self.rfile = self.request.makefile("rb")
                self.wfile = self.request.makefile("wb", buffering=0)
                return True

            def handle(self) -> None:
                with fake._lock:
                    fake.connections += 1
                if implicit_tls is not None and not self.start_tls(implicit_tls):
                    return
                self.reply("220 fake.test ESMTP")
                while data := self.line():
                    verb = data[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        offered = ["STARTTLS"] if tls is not None else []
                        for extension in ["fake.test", *offered]:
                            self.reply(f"250-{extension}")
                        self.reply("250 AUTH PLAIN LOGIN")
                    elif verb == b"STAR" and tls is not None:
                        self.reply("220 go ahead")
                        if not self.start_tls(tls):
                            return
                    elif verb == b"AUTH":
                        self.reply("235 accepted")
                    elif verb == b"DATA":
                        self.reply("354 go on")
                        lines = []
                        while (body := self.line()) not in (b".\r\n", b""):
                            lines.append(body)
                        with fake._lock:
                            fake.messages.append(b"".join(lines))
                        self.reply("250 queued")
                    elif verb == b"QUIT":
                        self.reply("221 bye")
                        return
                    elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                        self.reply("250 ok")
                    else:
                        self.reply("502 not implemented")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeSMTP:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
