"""The API's request log: one row per request made with a valid key, whatever its answer."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from api.models import ApiRequest
from tenants.audit import client_ip


class ApiRequestLogMiddleware:
    """Writes ApiRequest after the view answered. Only requests whose key was accepted carry
    `request.api_key` (api.auth.KeyAuth): a wrong key names nobody to log it under."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        key = getattr(request, "api_key", None)
        if key is not None:
            ApiRequest.objects.create(
                tenant_id=key.tenant_id,
                api_key=key,
                method=request.method[:8],
                path=request.path[:200],
                status=response.status_code,
                idempotency_key=request.headers.get("Idempotency-Key", "")[:255],
                ip=client_ip(request),
            )
        return response
