"""Two test workers on one machine (pytest-xdist, `make test`), each with Redis of its own.

Loaded with `-p tests.parallel` (pyproject.toml) so that it runs before pytest-django reads
the settings. Each worker already gets a PostgreSQL database of its own (`test_<name>_gw0`);
here it also gets a Redis database (the cache is flushed between tests) and a prefix for
pub/sub, which knows no databases: the workers' tenants have the same ids, and a display in
one worker would hear the other's calls. The Daphne processes a test starts inherit both.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1"… set before this runs


def worker_redis_url(url: str, index: int) -> str:
    """The worker's database: the URL's own number plus the worker's index (16 at most)."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + index) % 16}"))


if WORKER and os.environ.get("REDIS_URL"):
    index = int(WORKER.removeprefix("gw"))
    os.environ["REDIS_URL"] = worker_redis_url(os.environ["REDIS_URL"], index)
    os.environ["REDIS_PREFIX"] = f"totem-test-{WORKER}"
