"""Errors as RFC 9457 problem details (`application/problem+json`), in the request's language.

Every refusal of the API is one of these: `type` names the kind of problem (listed in
docs/api.md), `title` says it in a few words, `detail` says what happened this time, `code`
is the same kind as a short stable string for programs, and `errors` lists the fields at
fault. Titles and details follow Accept-Language (pt-BR or English) through Django's
LocaleMiddleware; the domain's refusals are already sentences for screens.
"""

from __future__ import annotations

import json
import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from tenants.errors import DomainError

log = logging.getLogger(__name__)
CONTENT_TYPE = "application/problem+json"

# code → (HTTP status, title). The titles are translated when a problem is answered.
KINDS = {
    "invalid_request": (422, gettext_lazy("Invalid request")),
    "invalid_cursor": (400, gettext_lazy("Invalid cursor")),
    "idempotency_key_reused": (422, gettext_lazy("Idempotency key already used")),
    "unauthenticated": (401, gettext_lazy("Missing or invalid API key")),
    "insufficient_scope": (403, gettext_lazy("The API key lacks a scope")),
    "not_found": (404, gettext_lazy("Not found")),
    "refused": (409, gettext_lazy("Operation refused")),
    "rate_limited": (429, gettext_lazy("Too many requests")),
    "server_error": (500, gettext_lazy("Server error")),
}


class FieldError(Schema):
    field: str
    message: str
    code: str = ""


class Problem(Schema):
    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    errors: list[FieldError] = []


class ApiError(Exception):
    """A refusal of the API itself (not of a domain operation): one of KINDS."""

    def __init__(self, code: str, detail: str, errors: list[dict] | None = None) -> None:
        assert code in KINDS, code
        self.code, self.detail, self.errors = code, detail, errors or []
        super().__init__(detail)


def problem(request: HttpRequest, code: str, detail: str, errors: list[dict] | None = None) -> dict:
    """The problem document of kind `code` for this request."""
    status, title = KINDS[code]
    return {
        "type": f"/api/v1/problems/{code}",
        "title": str(title),
        "status": status,
        "detail": str(detail),
        "instance": request.path,
        "code": code,
        "errors": errors or [],
    }


def response(body: dict, status: int) -> HttpResponse:
    """A JSON answer: a problem document gets its own media type."""
    content_type = (CONTENT_TYPE if status >= 400 else "application/json") + "; charset=utf-8"
    return HttpResponse(
        json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False),
        status=status,
        content_type=content_type,
    )


def as_problem(request: HttpRequest, error: Exception) -> dict | None:
    """The problem document for an error an operation may end with, None for a bug."""
    if isinstance(error, ApiError):
        return problem(request, error.code, error.detail, error.errors)
    if isinstance(error, Http404):
        return problem(request, "not_found", _("No such object for this API key."))
    if isinstance(error, DjangoValidationError):
        fields = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
        errors = [
            {"field": field, "message": str(message)}
            for field, messages in fields.items()
            for message in messages
        ]
        return problem(request, "invalid_request", errors[0]["message"], errors)
    if isinstance(error, DomainError):
        return problem(request, "refused", str(error))
    return None


# Pydantic's messages are English only: the common kinds, by their `type`, in the request's
# language (the placeholders are the error's `ctx`). Others keep pydantic's English words; the
# type is in `code` either way, for programs.
FIELD_MESSAGES = {
    "missing": gettext_lazy("Required."),
    "json_invalid": gettext_lazy("The body is not valid JSON."),
    "string_type": gettext_lazy("Must be text."),
    "string_too_short": gettext_lazy("At least %(min_length)s characters."),
    "string_too_long": gettext_lazy("At most %(max_length)s characters."),
    "string_pattern_mismatch": gettext_lazy("Not in the expected format."),
    "int_type": gettext_lazy("Must be a whole number."),
    "int_parsing": gettext_lazy("Must be a whole number."),
    "int_from_float": gettext_lazy("Must be a whole number."),
    "bool_type": gettext_lazy("Must be true or false."),
    "bool_parsing": gettext_lazy("Must be true or false."),
    "greater_than_equal": gettext_lazy("Must be at least %(ge)s."),
    "less_than_equal": gettext_lazy("Must be at most %(le)s."),
    "too_short": gettext_lazy("At least %(min_length)s items."),
    "too_long": gettext_lazy("At most %(max_length)s items."),
    "list_type": gettext_lazy("Must be a list."),
    "model_type": gettext_lazy("Must be an object."),
    "dict_type": gettext_lazy("Must be an object."),
    "enum": gettext_lazy("Must be one of: %(expected)s."),
    "literal_error": gettext_lazy("Must be one of: %(expected)s."),
}


def _field_message(item: dict) -> str:
    kind, context = item.get("type", ""), item.get("ctx") or {}
    if kind == "value_error" and "error" in context:
        # Our own validators raise a translated sentence (api/schemas.py).
        return str(context["error"])
    if kind in FIELD_MESSAGES:
        try:
            return str(FIELD_MESSAGES[kind]) % context
        except (KeyError, TypeError, ValueError):
            pass
    return str(item.get("msg", ""))


def _validation(request: HttpRequest, error: NinjaValidationError) -> list[dict]:
    errors = []
    for item in error.errors:
        # ("body", "payload", "services", 0) → "services.0", ("header", "Idempotency-Key") →
        # "Idempotency-Key": the name the client sent, without ninja's place and argument.
        where = [str(part) for part in item.get("loc", ())]
        if where[:1] and where[0] in ("body", "header", "query", "path"):
            where = where[2:] if where[1:2] == ["payload"] else where[1:]
        errors.append(
            {
                "field": ".".join(where),
                "message": _field_message(item),
                "code": str(item.get("type", "")),
            }
        )
    return errors


def install(api: NinjaAPI) -> None:
    """Answer every error of `api` with a problem document."""

    def handle(request: HttpRequest, error: Exception) -> HttpResponse:
        body = as_problem(request, error)
        if body is None:
            if isinstance(error, NinjaValidationError):
                body = problem(
                    request,
                    "invalid_request",
                    _("Some fields are missing or invalid."),
                    _validation(request, error),
                )
            elif isinstance(error, Throttled):
                body = problem(request, "rate_limited", _("Too many requests for this API key."))
            elif isinstance(error, AuthenticationError):
                body = problem(
                    request,
                    "unauthenticated",
                    _("Send the key as “Authorization: Bearer <key>”; it may have been revoked."),
                )
            elif isinstance(error, HttpError):
                body = problem(request, "invalid_request", str(error))
                body["status"] = error.status_code
            elif isinstance(error, OperationalError | InterfaceError):
                # The database is away: config.middleware answers 503 with Retry-After.
                raise error
            else:
                log.exception("API error on %s %s", request.method, request.path)
                body = problem(request, "server_error", _("Something went wrong on our side."))
        answer = response(body, body["status"])
        if body["status"] == 401:
            answer["WWW-Authenticate"] = 'Bearer realm="api"'
        return answer

    # Ninja looks a handler up by the error's class first: each of its defaults is replaced.
    for kind in (Exception, Http404, HttpError, NinjaValidationError):
        api.add_exception_handler(kind, handle)
