"""Redis off the critical path: what a process does while Redis does not answer.

Redis carries the shared cache (login and pairing throttling, the kiosks' rate limit, the
kiosk's provider-check window) and the real-time events. None of it may stop a sale, a call, a
login or a pairing, whether Redis is stopped (connections refused at once) or stalled (the
kernel accepts connections and nothing ever answers, so only a timeout ends a command):

- every command has short timeouts (connect 1 s, reply 1 s: settings.py and tickets/events.py);
- the first failure opens this process's circuit for that Redis: for REDIS_RETRY_SECONDS
  nothing asks it, then one caller probes while the others keep skipping, and its answer
  closes the circuit or opens it again. A stalled Redis so costs one request one timeout per
  window per process, never every request;
- one warning when an outage begins in the process and one when it ends, never one per request.

While the circuit is open the cache is this process's memory (`FallbackRedisCache`): limits
count per process, as they do on the zero-setup default, rather than failing closed (HTTP 500,
the sale lost) or opening (no login throttle at all while Redis is down — or can be made slow
by whoever floods it). With N Daphne processes, a guesser gets at most N times the limit for
the length of the outage. Counts kept in memory are forgotten when Redis returns; those in
Redis were kept. Events are skipped (tickets/events.py); screens re-read their state.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache

log = logging.getLogger(__name__)

# What says Redis is away, as opposed to a wrong command (ResponseError), which must surface.
# Refused, reset, timed out, and also still loading its data after a restart.
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


class RedisOutage:
    """This process's circuit breaker for one Redis server (one per address, shared by the
    cache and the events, so one outage is one warning)."""

    _known: dict[str, RedisOutage] = {}
    _known_lock = threading.Lock()

    def __init__(self, address: str) -> None:
        self.address = address.split("@")[-1]  # never a password in the logs
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._retry_at = 0.0
        self._skipped = 0

    @classmethod
    def of(cls, address: str) -> RedisOutage:
        """The breaker of the Redis at `address` (a URL), made on first use."""
        found = cls._known.get(address)
        if found is not None:
            return found
        with cls._known_lock:
            return cls._known.setdefault(address, cls(address))

    def available(self) -> bool:
        """Whether to ask Redis now: always while it answers; during an outage, only the
        first caller after each REDIS_RETRY_SECONDS (the probe)."""
        if self._down_since is None:  # the common case, without the lock
            return True
        now = time.monotonic()
        with self._lock:
            if self._down_since is None:
                return True
            if now < self._retry_at:
                self._skipped += 1
                return False
            self._retry_at = now + settings.REDIS_RETRY_SECONDS
            return True

    def failed(self, error: Exception) -> None:
        """A command did not get an answer: leave Redis alone for a while."""
        now = time.monotonic()
        with self._lock:
            began = self._down_since is None
            if began:
                self._down_since, self._skipped = now, 0
            else:
                self._skipped += 1
            self._retry_at = now + settings.REDIS_RETRY_SECONDS
        if began:
            log.warning(
                "Redis at %s is unreachable (%s): limits count in this process and events are "
                "skipped until it answers; asking again every %s s",
                self.address,
                error,
                settings.REDIS_RETRY_SECONDS,
            )

    def answered(self) -> None:
        """A command got its answer: the outage, if any, is over."""
        if self._down_since is None:
            return
        with self._lock:
            if self._down_since is None:
                return
            lasted, skipped = time.monotonic() - self._down_since, self._skipped
            self._down_since, self._retry_at = None, 0.0
        log.warning(
            "Redis at %s answers again after %.0f s (%s uses skipped or failed meanwhile)",
            self.address,
            lasted,
            skipped,
        )


class UnreachableRedisFilter(logging.Filter):
    """The tracebacks libraries log while Redis is unreachable become the outage's one
    warning: channels-redis logs one every second from its receive loop, Daphne one per
    WebSocket it could not open without Redis (a TV retries every few seconds). They are
    outage signals like any failed command. Set on those loggers in settings.LOGGING; other
    records, and other errors of those loggers, pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, UNREACHABLE) or not settings.REDIS_URL:
            return True
        RedisOutage.of(settings.REDIS_URL).failed(error)
        return False


class FallbackRedisCache(RedisCache):
    """Django's Redis cache, or this process's memory while that Redis is unreachable."""

    def __init__(self, server: str, params: dict) -> None:
        super().__init__(server, params)
        self.outage = RedisOutage.of(self._servers[0])
        # Django makes a cache object per thread; one name gives them one shared memory. Room
        # for every kiosk's and every guessed login's counter, more than LocMem's default 300.
        self.local = LocMemCache(
            f"redis-fallback:{self._servers[0]}",
            {**params, "OPTIONS": {"MAX_ENTRIES": 20_000}},
        )
        self._writer = None  # a client of the primary's pool, made once (see `hit`)

    def hit(self, key: str, window: int) -> int:
        """Count one more in `key`, whose window of `window` seconds its first count starts;
        the count so far. One round trip, one script run atomically by Redis (`HIT`): add,
        then incr with its existence check, were three on every kiosk request; a MULTI of
        the three commands was one, but redis-py builds each pipeline's table of reply
        callbacks anew (0.3 ms of CPU a kiosk request, 0.05 ms for the script)."""
        if self.outage.available():
            try:
                full = self.make_and_validate_key(key)
                # Django's get_client makes a client object per call (0.3 ms of copying reply
                # callbacks, on every kiosk request); one on the same pool serves them all.
                if self._writer is None:
                    self._writer = self._cache.get_client(full, write=True)
                client = self._writer
                # EVAL with the script's text, not EVALSHA: one round trip always, even
                # after a restart emptied Redis's script cache (Redis compiles it once).
                count = client.eval(HIT, 1, full, window)
            except UNREACHABLE as error:
                self.outage.failed(error)
            else:
                self.outage.answered()
                return count
        return hit_in(self.local, key, window)


# The counter of `FallbackRedisCache.hit`: started with its window by its first count. A
# counter left without expiry (by an INCR of an expired key, as the add-then-incr of
# earlier versions could) would lock a kiosk out for good (seen in the soak): it gets its
# window back.
HIT = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
local count = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


def hit_in(cache: BaseCache, key: str, window: int) -> int:
    """`FallbackRedisCache.hit` on any other cache (this process's memory)."""
    cache.add(key, 0, window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, window)
        return 1
    if count == 1:
        # The key may have expired between incr's existence check and the increment, and
        # Redis's INCR then creates it without an expiry: a counter that never resets would
        # lock a kiosk out for good (seen in the soak). Give the window back to it.
        cache.touch(key, window)
    return count


def _redis_or_local(name: str):
    def method(self: FallbackRedisCache, *args, **kwargs):
        if self.outage.available():
            try:
                result = getattr(RedisCache, name)(self, *args, **kwargs)
            except UNREACHABLE as error:
                self.outage.failed(error)
            else:
                self.outage.answered()
                return result
        return getattr(self.local, name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"`{name}` on Redis, or on this process's memory while Redis is away."
    return method


# Every operation RedisCache sends to Redis (the rest of the cache API is built on these).
for _name in (
    "add",
    "get",
    "set",
    "touch",
    "delete",
    "get_many",
    "has_key",
    "incr",
    "set_many",
    "delete_many",
    "clear",
):
    setattr(FallbackRedisCache, _name, _redis_or_local(_name))
