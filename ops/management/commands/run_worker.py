"""`manage.py run_worker`: the periodic jobs and outgoing webhooks, until SIGTERM (ops/worker.py).

A service beside Daphne and the spooler, on one machine or several (the jobs are claimed, so
each runs once per period whatever the number of workers). `--once` runs what is due and one
batch of webhooks, then exits.
"""

from __future__ import annotations

import signal
import threading
import time

from django.core.management.base import BaseCommand

from ops.worker import Worker
from tickets import events


class Command(BaseCommand):
    help = (
        "Run the periodic jobs (expiry, alerts, repair, daily statistics, retention) when due "
        "and deliver outgoing webhooks, until SIGTERM."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="Run the jobs that are due, then stop."
        )

    def handle(self, *args, **options) -> None:
        worker = Worker(say=self.say)
        if warning := events.process_local_warning():
            self.say(warning)
        if options["once"]:
            ran = worker.run_due()
            worker.deliver_webhooks()
            worker.send_whatsapp()
            self.say(f"worker {worker.name}: ran {', '.join(ran) or 'no job'}")
            return
        self.stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_signal)
        self.say(f"worker {worker.name} started: {', '.join(worker.jobs)}, webhooks, whatsapp")
        (_, main_loop), *others = worker.loops()
        threads = [
            threading.Thread(target=loop, args=(self.stop,), name=f"worker-{name}")
            for name, loop in others
        ]
        for thread in threads:
            thread.start()
        # The jobs' loop runs in this thread, where the signal handlers run too.
        main_loop(self.stop)
        for thread in threads:
            thread.join()
        self.say(f"worker {worker.name} stopped")

    def say(self, line: str) -> None:
        self.stdout.write(f"{time.strftime('%H:%M:%S')} {line}")
        self.stdout.flush()  # progress shows at once when the output is a file or a pipe

    def on_signal(self, signum, frame) -> None:
        # Only a flag: the job and the webhook batch in hand finish, then the loops end.
        self.say("stopping after the work in hand")
        self.stop.set()
