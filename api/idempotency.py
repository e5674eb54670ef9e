"""Idempotency keys on every POST, as Stripe's: a retried request gets the first reply.

The reply is stored per API key and Idempotency-Key with a fingerprint of the request
(method, path, and the body as canonical JSON). The same key again with the same request
replays the stored reply (header `Idempotent-Replayed: true`); with another request it is
refused (422). The key's row is inserted first, in the transaction that runs the operation:
a second request with the same key waits on the unique index until the first commits, then
replays its reply, so an operation never runs twice. An operation that fails with a bug
rolls back with its row, and may be retried with the same key; a refusal (409, 404, 422)
is a reply like any other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import Schema
from ninja.params.functions import Header

from api.models import IdempotentReply
from api.problems import as_problem, problem, response

# Visible ASCII, as a UUID or any client's own scheme.
KEY_SHAPE = r"^[\x21-\x7e]+$"
IdempotencyKey = Header(
    ...,
    alias="Idempotency-Key",
    description="A unique key per operation (a UUID): a retry with it gets the first reply.",
    min_length=1,
    max_length=255,
    pattern=KEY_SHAPE,
)


def canonical_body(body: bytes) -> bytes:
    """A JSON body as one text per meaning (keys sorted, no spaces), so that a retry that
    re-serialised the same request (another client library, pretty-printed, keys in another
    order) is the same request; a body that is not JSON is taken as sent."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), canonical_body(request.body)):
        digest.update(part + b"\x00")
    return digest.hexdigest()


def replay(request: HttpRequest, reply: IdempotentReply, print_: str) -> HttpResponse:
    if reply.fingerprint != print_:
        return response(
            problem(
                request,
                "idempotency_key_reused",
                _("This Idempotency-Key was used with another request; use a new key."),
            ),
            422,
        )
    answer = response(reply.body, reply.status)
    answer["Idempotent-Replayed"] = "true"
    return answer


def idempotent(
    request: HttpRequest, key: str, operation: Callable[[], tuple[int, Schema]]
) -> HttpResponse:
    """Run `operation` (which returns a status and a schema) once per Idempotency-Key.

    `key` was validated by the view's signature (IdempotencyKey: required, its shape).
    """
    print_ = fingerprint(request)
    with transaction.atomic():
        try:
            with transaction.atomic():
                reply = IdempotentReply.objects.create(
                    api_key=request.api_key, key=key, fingerprint=print_
                )
        except IntegrityError:
            done = IdempotentReply.objects.get(api_key=request.api_key, key=key)
            return replay(request, done, print_)
        try:
            # A savepoint: a refused operation leaves nothing half-done (a ticket without
            # its payment), and its refusal is still the reply kept for the key.
            with transaction.atomic():
                status, result = operation()
            body = result.model_dump(mode="json")
        except Exception as error:
            body = as_problem(request, error)
            if body is None:
                raise
            status = body["status"]
        reply.status, reply.body = status, body
        reply.save(update_fields=["status", "body"])
    return response(body, status)
