"""Answers for when a part of the system is down."""

from __future__ import annotations

import logging
import threading
import time

import psycopg
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

log = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """PostgreSQL unreachable (stopped, restarting, failing over) → every page answers 503
    with Retry-After and a page that retries by itself, instead of a 500. The transaction of
    the failed request was rolled back whole, so nothing is half-written.

    The first failure, met by a view, starts an outage: it is logged once, in one line, and
    from then on requests answer 503 at once, so no middleware, decorator or view meets the
    error and nothing logs a traceback per request. At most once a PROBE_EVERY seconds one
    request asks the database for `SELECT 1` on a connection of its own, outside the pool (a
    pooled request would wait the pool's timeout for a connection that cannot be made). The
    probe that gets an answer ends the outage (logged once too), drops the pool, which may be
    backing off between reconnection attempts, and goes on: Daphne needs no restart.
    """

    PROBE_EVERY = 1.0

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.lock = threading.Lock()
        self.down_since: float | None = None  # monotonic time the outage began
        self.probed_at = 0.0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if self.down_since is not None:
            with self.lock:
                due = time.monotonic() - self.probed_at >= self.PROBE_EVERY
                if due:
                    self.probed_at = time.monotonic()
            if not (due and database_answers()):
                return unavailable(request)
            self.ended()
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        self.began(exception)
        return unavailable(request)

    def began(self, exception: Exception) -> None:
        with self.lock:
            if self.down_since is None:
                self.down_since = time.monotonic()
                # psycopg's messages span lines; the outage is one line of the log.
                log.error("database unavailable: %s", " ".join(str(exception).split()))

    def ended(self) -> None:
        with self.lock:
            if self.down_since is not None:
                log.warning(
                    "database available again after %.0f s", time.monotonic() - self.down_since
                )
                self.down_since = None
                if connection.pool:
                    connection.close_pool()  # the next request opens a fresh one


def database_answers() -> bool:
    """`SELECT 1` on a short-lived connection of its own (PostgreSQL: never a pooled one)."""
    try:
        if connection.vendor != "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        params = {**connection.get_connection_params(), "connect_timeout": 2}
        with psycopg.connect(**params) as probe:
            probe.execute("SELECT 1")
        return True
    except (OperationalError, InterfaceError, psycopg.Error):
        return False


def unavailable(request: HttpRequest) -> HttpResponse:
    """503 with the page that retries by itself (pt-BR, needs no database)."""
    response = HttpResponse(render_to_string("503.html", request=None), status=503)
    response["Retry-After"] = "5"
    if request.headers.get("HX-Request") == "true":
        # htmx swaps nothing on an error status: reload the whole screen, which then shows
        # this page and comes back by itself (the panel's and the kiosk's polls included).
        response["HX-Refresh"] = "true"
    # The outage is logged once above; Django would log every 5xx response again.
    response._has_been_logged = True
    return response
