"""Zero-setup mode: the printer spooler and the worker run inside the Daphne process.

Without Redis, events travel through the in-memory channel layer, which reaches only the
sockets of the process that sends them: a ticket printed by a spooler process of its own, or
a no-show marked by a worker process, would change on no screen until it polled. So when
`RUN_WORKERS_IN_WEB` is on (the default without `REDIS_URL`; `make run`), Daphne runs the
spooler's loop and the worker's loops itself, each in a thread of its own started from the
server's event loop through `sync_to_async`. asgiref remembers that loop in such a thread, so
an event sent there (`tickets.events`, through `async_to_sync`) is handed to the loop that
owns the sockets, as from a view.

The alternative, a channel layer that crosses processes on SQLite (a table of events that each
Daphne polls), was not taken: a distributed part of our own, polling several times a second
forever, for a mode that is one machine by definition. Production has Redis for that, and
runs `run_printer_spooler` and `run_worker` as services of their own (docs/deploy.md).

The loops start when Daphne's reactor runs, and stop before it shuts down (SIGINT, SIGTERM)
once the print job or periodic job in hand is finished. Where the application is only
imported (tests, commands) nothing starts.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future

from asgiref.sync import sync_to_async
from twisted.internet import defer  # not the reactor: importing that would install one

from equipment.management.commands.run_printer_spooler import Command as SpoolerCommand
from equipment.management.commands.run_printer_spooler import quiet_escpos
from equipment.spooler import Spooler
from ops.worker import Worker

log = logging.getLogger(__name__)

# How long Daphne's shutdown waits for the work in hand.
STOP_SECONDS = 30
# A loop that died of an unexpected error is started again after this pause.
RESTART_SECONDS = 5


class DaemonThreads(Executor):
    """A new daemon thread per call. A loop holds its thread until `stop`; a daemon thread
    never holds the process's exit (Daphne's shutdown that gave up waiting, a reloader), as a
    ThreadPoolExecutor's threads would. What it leaves half done is safe: the print job's
    and the periodic job's leases run out, an uncommitted transaction rolls back."""

    def __init__(self, name: str) -> None:
        self.name = name

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001 — handed to the awaiting task
                future.set_exception(error)

        threading.Thread(target=run, name=self.name, daemon=True).start()
        return future


class Background:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.tasks: list[asyncio.Task] = []

    def loops(self) -> list[tuple[str, Callable[[], None]]]:
        # The spooler command's own loop and progress lines (on Daphne's output).
        spooler_command = SpoolerCommand()
        spooler_command.stop = self.stop
        spooler = Spooler(say=spooler_command.say)
        worker = Worker(say=spooler_command.say)
        loops = [
            ("spooler", lambda: spooler_command.run_forever(spooler, 1.0, 30.0)),
            *[(name, lambda run=run: run(self.stop)) for name, run in worker.loops()],
        ]
        spooler_command.say(
            f"inside Daphne: spooler {spooler.name} for every printer, worker "
            f"({', '.join(worker.jobs)}, webhooks)"
        )
        return loops

    def start(self) -> None:
        """Called in the server's event loop, once it runs."""
        quiet_escpos()
        loop = asyncio.get_running_loop()
        for name, run in self.loops():
            self.tasks.append(loop.create_task(self.keep_running(name, run)))

    async def keep_running(self, name: str, run: Callable[[], None]) -> None:
        # A thread of its own, never the loop's default pool: a loop holds it until stop.
        executor = DaemonThreads(f"totem-{name}")
        while not self.stop.is_set():
            try:
                await sync_to_async(run, thread_sensitive=False, executor=executor)()
            except Exception:  # noqa: BLE001 — a standalone one would be restarted by systemd
                log.exception("%s stopped on an error; starting it again", name)
                await asyncio.sleep(RESTART_SECONDS)

    def shut_down(self) -> defer.Deferred | None:
        """Daphne's reactor is stopping: end the loops after the work in hand; the reactor
        waits for the returned Deferred."""
        self.stop.set()
        if not self.tasks:
            return None
        return defer.Deferred.fromFuture(
            asyncio.ensure_future(asyncio.wait(self.tasks, timeout=STOP_SECONDS))
        )


def run_beside_daphne() -> None:
    """Run the spooler and the worker in this process once Daphne's reactor runs.

    Only where Daphne installed its reactor (`daphne`, `manage.py runserver`): importing
    Twisted's reactor anywhere else would install the wrong one, and a test or a command that
    imports the application must not start anything.
    """
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None:
        return
    background = Background()
    # When the reactor starts it has not yet entered the asyncio loop; callLater runs in it.
    reactor.callWhenRunning(reactor.callLater, 0, background.start)
    reactor.addSystemEventTrigger("before", "shutdown", background.shut_down)
