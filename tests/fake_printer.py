"""A network thermal printer for tests: a TCP server on 127.0.0.1 that records what it gets.

It speaks no ESC/POS back (neither do most cheap printers on port 9100): each connection's
bytes are one print. `decode_text` and `qr_contents` read those bytes the way a person reads
the paper: the text (CP860) without the commands, and what each native QR code holds.
"""

from __future__ import annotations

import socket
import socketserver
import threading

ESC, GS = 0x1B, 0x1D
# Commands the layouts emit, by their bytes after ESC / GS: total length including the prefix.
ESC_LENGTHS = {
    ord("@"): 2,  # initialise
    ord("t"): 3,  # code page
    ord("E"): 3,  # bold
    ord("a"): 3,  # align
    ord("!"): 3,  # print mode (size)
    ord("d"): 3,  # feed n lines
    ord("-"): 3,  # underline
    ord("M"): 3,  # font
    ord("{"): 3,  # upside down
    ord("2"): 2,  # default line spacing
    ord("3"): 3,  # line spacing
}
GS_LENGTHS = {
    ord("B"): 3,  # inverted
    ord("!"): 3,  # character size
    ord("b"): 3,  # smoothing
}


class FakePrinter:
    """Start with `with FakePrinter() as printer:`; `printer.port`, `printer.prints`, and
    `printer.connections` (how many were accepted, printing or not)."""

    def __init__(self) -> None:
        self.prints: list[bytes] = []
        self.connections = 0
        self._arrived = threading.Condition()
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with fake._arrived:
                    fake.connections += 1
                chunks = []
                while data := self.request.recv(65536):
                    chunks.append(data)
                if chunks:  # a heartbeat connects and leaves without printing
                    with fake._arrived:
                        fake.prints.append(b"".join(chunks))
                        fake._arrived.notify_all()

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakePrinter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """The prints, once `count` have arrived (the server reads in its own thread)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.prints) >= count, timeout)
        return list(self.prints)


def refusing_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _commands(data: bytes):
    """Yield ("text", bytes) and ("cmd", bytes) pieces; unknown commands are an error, so a
    layout that starts emitting something new cannot slip text past the decoder."""
    i, text = 0, bytearray()
    while i < len(data):
        byte = data[i]
        if byte not in (ESC, GS):
            text.append(byte)
            i += 1
            continue
        if text:
            yield "text", bytes(text)
            text = bytearray()
        op = data[i + 1]
        if byte == ESC and op in ESC_LENGTHS:
            size = ESC_LENGTHS[op]
        elif byte == GS and op in GS_LENGTHS:
            size = GS_LENGTHS[op]
        elif byte == GS and op == ord("V"):  # cut: GS V m, or GS V m n for m 65/66
            size = 4 if data[i + 2] in (65, 66) else 3
        elif byte == GS and data[i + 1 : i + 3] == b"(k":  # 2D code: GS ( k pL pH data
            size = 5 + data[i + 3] + 256 * data[i + 4]
        elif byte == GS and data[i + 1 : i + 3] == b"v0":  # raster image
            width = data[i + 4] + 256 * data[i + 5]
            height = data[i + 6] + 256 * data[i + 7]
            size = 8 + width * height
        else:
            raise ValueError(f"unknown ESC/POS command {data[i : i + 4]!r} at {i}")
        yield "cmd", data[i : i + size]
        i += size
    if text:
        yield "text", bytes(text)


def decode_text(data: bytes) -> str:
    """The printed text: commands dropped, CP860 decoded."""
    return "".join(piece.decode("cp860") for kind, piece in _commands(data) if kind == "text")


def qr_contents(data: bytes) -> list[str]:
    """What each native QR code holds: the data of its `GS ( k … 1 P 0` (store) command."""
    found = []
    for kind, piece in _commands(data):
        if kind == "cmd" and piece[:3] == b"\x1d(k" and piece[5:8] == b"1P0":
            found.append(piece[8:].decode("utf-8"))
    return found
