"""Real-time events: built by the domain functions, sent after their transaction commits.

Every event goes to the tenant's group and, when it concerns a service, to that service's
group, and to the ticket's own group, so a display or a station receives only what concerns
it. The database stays the source of truth: a broadcast that fails is logged, never raised,
and screens re-read their state when they reconnect.

Loss is made visible with sequence numbers. Each message carries `seq` (per tenant: the
tenant group's counter) and `group` / `group_seq` (the counter of the group it was delivered
through — a screen subscribed only to some services sees its own consecutive numbers). A
screen that sees `group_seq` jump re-reads its state over HTTP. The counters live:

- in Redis (`INCR`) when `REDIS_URL` is set: atomic across every Daphne process, one round
  trip per event, and on the same server that carries the events — when it is down there is
  nothing to number. A database counter was rejected: it would be one more write per event,
  and a per-tenant counter row locked inside the domain transaction would serialise every
  operation of a tenant; incremented after commit it would cost a second transaction.
- in this process otherwise: the in-memory channel layer only reaches this process's
  sockets, so a process counter is exact. A restart drops every socket; screens reconnect,
  get the new baseline in the `hello` message and re-read their state.

Sending through Redis costs two round trips on one persistent connection: the INCR pipeline,
then a PUBLISH pipeline to the groups (see `_publish_to_redis`) — per event, or per
operation for the events an operation publishes inside `batch()`.

Redis unreachable (stopped, or stalled: connections accepted and never answered): the first
failure (timeouts 1 s) opens this process's circuit for that Redis (tenants/redis_outage.py),
shared with the cache, so broadcasts are skipped for a while instead of each request waiting
on it, and the outage is logged once, not per broadcast.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import redis
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from tenants.redis_outage import UNREACHABLE, RedisOutage

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "queue_update",
    "ticket_update",
    "ticket_called",
    "service_called",
    "service_started",
    "payment_update",
    "equipment_update",
)
# What a public screen (display, the customer's phone) may receive: no names, CPF or phone,
# whatever another caller of `publish` adds for the operators.
PUBLIC_FIELDS = frozenset(
    {
        "type",
        "tenant",
        "at",
        "seq",
        "group",
        "group_seq",
        "ticket_id",
        "number",
        "ticket_status",
        "line_id",
        "service_id",
        "service",
        "status",
        "equipment_id",
        "equipment",
        "room",
        "call_count",
        # equipment_update: a device's state and the server times screens count down to.
        "state",
        "until",
        "ends_at",
        "hard_maximum",
        # payment_update: whoever follows the ticket (its phone page) learns how payment went.
        "payment_status",
        "method",
    }
)
SEQ_PREFIX = "totem:seq:"
# A ticket's counter is only useful while someone follows the ticket.
TICKET_SEQ_TTL = 2 * 24 * 3600
# How long a request waits for the in-memory layer's helper thread (see _send_in_memory).
SEND_TIMEOUT = 3.0


def tenant_group(tenant_id: int) -> str:
    return f"tenant.{tenant_id}"


def service_group(tenant_id: int, service_id: int) -> str:
    return f"tenant.{tenant_id}.service.{service_id}"


def ticket_group(token: str) -> str:
    return f"ticket.{token}"


def device_group(equipment_id: int) -> str:
    """The sockets of one device (every browser paired as it): not for events, see
    `device_changed`."""
    return f"device.{equipment_id}"


def public(payload: dict) -> dict:
    """The event as a public screen may see it."""
    return {key: value for key, value in payload.items() if key in PUBLIC_FIELDS}


def event_payload(kind: str, *, tenant_id: int, ticket=None, line=None, **data) -> dict:
    """Small JSON: type, tenant, ticket id and number, service, device, status and time."""
    payload: dict = {"type": kind, "tenant": tenant_id, "at": timezone.now().isoformat()}
    if ticket is not None:
        payload.update(ticket_id=ticket.id, number=ticket.number, ticket_status=ticket.status)
    if line is not None:
        payload.update(line_id=line.id, service_id=line.service_id, status=line.status)
        if line.equipment_id:
            payload["equipment_id"] = line.equipment_id
    payload.update(data)
    return payload


def publish(
    kind: str,
    *,
    tenant_id: int,
    ticket=None,
    line=None,
    token: str = "",
    service_ids: Iterable[int] = (),
    **data,
) -> None:
    """Queue an event to be broadcast once the surrounding transaction commits.

    `service_ids`: more services whose groups hear it (a device's state concerns every
    station of the services it runs).

    Inside a savepoint that rolls back, the event is dropped with it (Django discards the
    savepoint's on_commit callbacks); outside any transaction it is sent at once. Inside
    `batch()`, it is sent with the batch's other events.
    """
    assert kind in EVENT_TYPES, kind
    payload = event_payload(kind, tenant_id=tenant_id, ticket=ticket, line=line, **data)
    groups = [tenant_group(tenant_id)]
    if payload.get("service_id"):
        groups.append(service_group(tenant_id, payload["service_id"]))
    for service_id in service_ids:
        if service_id != payload.get("service_id"):
            groups.append(service_group(tenant_id, service_id))
    if token or ticket is not None:
        groups.append(ticket_group(token or ticket.token))
    if getattr(_batching, "depth", 0):
        transaction.on_commit(lambda: _batching.committed.append((groups, payload)))
    else:
        transaction.on_commit(lambda: _send([(groups, payload)]))


def process_local_warning() -> str:
    """For a worker process (spooler, worker) started on its own: a warning when the channel
    layer is the in-memory one, whose events reach only this process's sockets — none."""
    if not isinstance(get_channel_layer(), InMemoryChannelLayer):
        return ""
    return (
        "warning: without REDIS_URL the events of this process reach no screen; "
        "in that mode Daphne runs the spooler and the worker itself (RUN_WORKERS_IN_WEB, "
        "on by default without REDIS_URL)"
    )


def device_changed(equipment_ids: Iterable[int]) -> None:
    """Tell the open sockets of these devices, once the transaction commits, to re-check
    that they may stay open (a pairing revoked, a device deleted): those that may not close.

    Not an event: unnumbered, and never shown. Lost (Redis down), the sockets' own periodic
    re-check closes them a little later (totem/consumers.py). Never raises, like `_send`.
    """
    groups = [device_group(pk) for pk in sorted(set(equipment_ids))]
    if groups:
        transaction.on_commit(lambda: _notify(groups, {"type": "device.changed"}))


def _notify(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _deliver(layer, [(group, message) for group in groups])
    except RedisDown as error:
        log.warning("%s to %s skipped: %s", message["type"], ", ".join(groups), error)
    except Exception:  # noqa: BLE001 — the change is committed; the re-check catches up
        log.exception("%s to %s failed", message["type"], ", ".join(groups))


_batching = threading.local()


@contextmanager
def batch() -> Iterator[None]:
    """Send the events an operation publishes together, after its transaction commits.

    Use inside the operation's transaction. Each event still commits or rolls back with the
    transaction or savepoint it was published in; those that committed go out in one
    numbering round trip and one publishing round trip, where each took two of its own
    (a call publishes four events: 8 → 2 round trips; a tenth of a call cycle's CPU).
    """
    if not getattr(_batching, "depth", 0):
        # Empty at the outermost entry: a batch whose sending callback never ran (an earlier
        # on_commit callback raised) must not go out with this one.
        _batching.depth, _batching.committed = 0, []
    _batching.depth += 1
    try:
        yield
    finally:
        _batching.depth -= 1
        if not _batching.depth:
            # After the events' own callbacks: Django runs them in the order they were added.
            transaction.on_commit(_send_committed)


def _send_committed() -> None:
    events, _batching.committed = _batching.committed, []
    if events:
        _send(events)


def _send(events: list[tuple[list[str], dict]]) -> None:
    """Number each event in each of its groups and send it there, all in one go. Never
    raises: a broadcast must never undo or fail a committed change; screens catch up on the
    next gap or reconnect.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    kinds = ", ".join(payload["type"] for _, payload in events)
    try:
        numbers = iter(next_sequences([group for groups, _ in events for group in groups]))
        messages = []
        for groups, payload in events:
            mine = [next(numbers) for _ in groups]
            messages += [
                (group, {**payload, "seq": mine[0], "group": group, "group_seq": number})
                for group, number in zip(groups, mine, strict=True)
            ]
        _transmit(layer, messages)
    except RedisDown as error:
        # The outage itself was logged once, when it began (RedisOutage).
        log.debug("broadcast of %s skipped: %s", kinds, error)
    except Exception:  # noqa: BLE001 — see above
        log.exception("broadcast of %s failed; screens will catch up on reconnect", kinds)


def _transmit(layer, messages: list[tuple[str, dict]]) -> None:
    """Hand numbered messages to their groups (a test drops them here to fake a loss)."""
    _deliver(layer, [(group, {"type": "event", "event": message}) for group, message in messages])


def _deliver(layer, messages: list[tuple[str, dict]]) -> None:
    """Send channel messages (their `type` names the consumers' handler) to their groups."""
    if isinstance(layer, InMemoryChannelLayer):
        _send_in_memory(layer, messages)
    else:
        _publish_to_redis(layer, messages)


def _send_in_memory(layer, messages: list[tuple[str, dict]]) -> None:
    """The in-memory layer's queues belong to the server's event loop: reach it from there."""

    async def send_all() -> None:
        for group, message in messages:
            await layer.group_send(group, message)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(send_all)()  # a sync view (asgiref hops to the server's loop) or a test
    else:
        # Sync code running in an event loop's thread (allowed by DJANGO_ALLOW_ASYNC_UNSAFE,
        # e.g. under Playwright's sync API) cannot use async_to_sync: deliver from a thread.
        errors: list[Exception] = []

        def deliver() -> None:
            try:
                async_to_sync(send_all)()
            except Exception as error:  # noqa: BLE001 — re-raised in the caller's thread
                errors.append(error)

        helper = threading.Thread(target=deliver, name="events-send")
        helper.start()
        helper.join(timeout=SEND_TIMEOUT)
        if errors:
            raise errors[0]
        if helper.is_alive():
            raise TimeoutError(f"the server loop did not take the events in {SEND_TIMEOUT} s")


def _publish_to_redis(layer, messages: list[tuple[str, dict]]) -> None:
    """PUBLISH every message in one pipeline, as the pub/sub layer's `group_send` would.

    The layer's `group_send` is async: called through `async_to_sync` from a thread without
    a server loop (a command, a worker, the bench) it made a new event loop, and with it a new
    Redis connection and handshake, per event — over a third of the CPU of a call. This uses
    the persistent blocking client and writes the bytes the layer writes: its `serialize`, on
    the channel "<prefix>__group__<group>" (channels-redis 4, pinned in pyproject.toml), to
    the one Redis host the layer is configured with. The real-time tests receive them through
    real consumers and Daphne, so a change in that format fails them.
    """
    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    (host,) = config["hosts"]
    url = host["address"] if isinstance(host, dict) else host
    client = _redis(url)
    prefix = config.get("prefix", "asgi")
    pipe = client.pipeline(transaction=False)
    for group, message in messages:
        body = layer.serialize(message)
        pipe.publish(f"{prefix}__group__{group}", body)
    try:
        pipe.execute()
    except UNREACHABLE as error:
        raise _mark_down(url, error) from error
    RedisOutage.of(url).answered()


# --- sequence numbers ---------------------------------------------------------------------


class RedisDown(Exception):
    """Redis did not answer; events are not numbered nor sent for a few seconds."""


_clients: dict[str, redis.Redis] = {}
_local: OrderedDict[str, int] = OrderedDict()
_local_lock = threading.Lock()
# Enough for every group of a busy day; the oldest (tickets long served) are forgotten first.
LOCAL_MAX_GROUPS = 20_000


def _redis(url: str) -> redis.Redis | None:
    if not url:
        return None
    outage = RedisOutage.of(url)
    if not outage.available():
        raise RedisDown(f"Redis at {outage.address} was unreachable moments ago")
    client = _clients.get(url)
    if client is None:
        # Short timeouts, and one quick retry only for a refused or reset connection (a pooled
        # connection a Redis restart closed), none after a timeout: a request that publishes
        # must never wait long on a dead or silent Redis.
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=1,
            socket_timeout=1,
            health_check_interval=30,
            retry=Retry(
                ExponentialBackoff(cap=0.1, base=0.01), 1, supported_errors=(redis.ConnectionError,)
            ),
        )
        _clients[url] = client
    return client


def _mark_down(url: str, error: Exception) -> RedisDown:
    outage = RedisOutage.of(url)
    outage.failed(error)
    return RedisDown(f"Redis at {outage.address} is unreachable ({error})")


def next_sequences(groups: list[str]) -> list[int]:
    """Increment and return each group's counter, in one round trip."""
    client = _redis(settings.REDIS_URL)
    if client is None:
        with _local_lock:
            numbers = []
            for group in groups:
                _local[group] = _local.get(group, 0) + 1
                _local.move_to_end(group)
                numbers.append(_local[group])
            while len(_local) > LOCAL_MAX_GROUPS:
                _local.popitem(last=False)
            return numbers
    pipe = client.pipeline(transaction=False)
    incr_at = []
    for group in groups:
        incr_at.append(len(pipe))
        pipe.incr(SEQ_PREFIX + group)
        if group.startswith("ticket."):
            pipe.expire(SEQ_PREFIX + group, TICKET_SEQ_TTL)
    try:
        results = pipe.execute()
    except UNREACHABLE as error:
        raise _mark_down(settings.REDIS_URL, error) from error
    RedisOutage.of(settings.REDIS_URL).answered()
    return [results[i] for i in incr_at]


def current_sequences(groups: list[str]) -> dict[str, int]:
    """Each group's last number (0 when none yet): the baseline a screen starts from.

    Blocking (Redis): consumers call it through `sync_to_async`. With Redis down it answers
    zeros; the screen re-reads its state on the next event anyway.
    """
    try:
        client = _redis(settings.REDIS_URL)
    except RedisDown:
        return dict.fromkeys(groups, 0)
    if client is None:
        with _local_lock:
            return {group: _local.get(group, 0) for group in groups}
    try:
        values = client.mget([SEQ_PREFIX + group for group in groups])
    except UNREACHABLE as error:
        _mark_down(settings.REDIS_URL, error)
        return dict.fromkeys(groups, 0)
    RedisOutage.of(settings.REDIS_URL).answered()
    return {group: int(value or 0) for group, value in zip(groups, values, strict=True)}
