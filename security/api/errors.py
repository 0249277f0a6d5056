"""One error shape for every error the API gives (docs/api.md, "Errors")::

    {"error": {"type": "invalid_request", "code": "invalid", "message": "...",
               "field": "lines[0].quantity", "request_id": "req_..."}}

``type`` is the broad class a client branches on (the table in ``STATUS_TYPES``),
``code`` the precise reason, ``message`` a sentence for a developer, ``field`` the input
concerned (or null) and ``request_id`` the ``X-Request-Id`` of the answer. A validation
error with several problems lists all of them in ``errors`` (each with field, code and
message); the first is the one above.

``exception_handler`` (REST framework's ``EXCEPTION_HANDLER``) turns every exception a
view raises into this shape: REST framework's own (parse errors, 401, 403, 404, 405, 406,
415, 429), Django's (404, PermissionDenied, ValidationError), the apps' domain errors
registered with ``register_domain_error`` and, last, anything else as a 500 that names
the request id and nothing of the failure (the trace goes to the server log only).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

from security.api.requests import request_id_of
from security.exceptions import NotAllowed, SecurityError, StepUpRequired

logger = logging.getLogger("security.api")

STATUS_TYPES = {
    400: "invalid_request",
    401: "authentication",
    403: "permission",
    404: "not_found",
    405: "invalid_request",
    406: "invalid_request",
    409: "conflict",
    413: "invalid_request",
    415: "invalid_request",
    422: "idempotency",
    429: "rate_limit",
    500: "server",
}

_DRF_CODES = {
    exceptions.ParseError: "malformed_body",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "rate_limited",
    exceptions.NotFound: "not_found",
}


class ApiError(exceptions.APIException):
    """An error answered in the one shape; raised by API code for what REST framework has
    no exception of its own for (413, 409, 422, a missing scope...)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        field: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.message = message
        self.error_code = code
        self.field = field
        self.type = type_ or STATUS_TYPES.get(status_code, "invalid_request")
        self.headers = headers or {}


def insufficient_user_authentication(message: str) -> ApiError:
    """401 for a customer's token whose second factor is older than the step-up window
    (decision 74, RFC 9470): the client sends the customer through ``/oauth/authorize``
    with ``max_age`` (the challenge's) and retries with the new token."""
    from django.conf import settings

    max_age = int(settings.SECURITY_STEP_UP_SECONDS)
    return ApiError(
        message,
        status_code=401,
        code="insufficient_user_authentication",
        field="step_up",
        headers={
            "WWW-Authenticate": (
                'Bearer realm="tillit",error="insufficient_user_authentication",'
                'error_description="A second factor confirmed more recently is required",'
                f"max_age={max_age}"
            )
        },
    )


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than the limit of {limit} bytes",
            status_code=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            code="body_too_large",
        )


# Domain errors of the apps: exception class -> (HTTP status, code). The most specific
# registered class of an exception decides; its ``message`` (or str) and ``field`` are used.
_DOMAIN_ERRORS: dict[type[BaseException], tuple[int, str]] = {
    NotAllowed: (403, "not_allowed"),
    StepUpRequired: (403, "step_up_required"),
    SecurityError: (400, "invalid"),
}


def register_domain_error(exc_class: type[BaseException], *, status_code: int, code: str) -> None:
    """Answer ``exc_class`` (and its subclasses without their own entry) with this status and
    code: each app's ``api`` package registers its error hierarchy once."""
    _DOMAIN_ERRORS[exc_class] = (status_code, code)


def error_body(
    request: HttpRequest | None,
    *,
    status_code: int,
    code: str,
    message: str,
    field: str | None = None,
    type_: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The one shape, as a dict ready to render."""
    body: dict[str, Any] = {
        "type": type_ or STATUS_TYPES.get(status_code, "invalid_request"),
        "code": code,
        "message": message,
        "field": field,
        "request_id": request_id_of(request),
    }
    if errors:
        body["errors"] = errors
    return {"error": body}


def error_json(
    request: HttpRequest, *, status_code: int, code: str, message: str, field: str | None = None
) -> JsonResponse:
    """The one shape outside a REST framework view (the API's 404 for unknown paths)."""
    body = error_body(request, status_code=status_code, code=code, message=message, field=field)
    return JsonResponse(body, status=status_code)


def _flatten(detail: Any, path: str = "") -> Iterator[dict[str, Any]]:
    """Every (field, code, message) of a REST framework validation error, fields as
    ``lines[0].quantity``; errors of the whole body have the field null."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "__all__"):
                yield from _flatten(value, path)
            elif isinstance(key, int) or str(key).isdigit():
                yield from _flatten(value, f"{path}[{key}]")
            else:
                yield from _flatten(value, f"{path}.{key}" if path else str(key))
    elif isinstance(detail, list):
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in detail):
            for item in detail:
                yield from _flatten(item, path)
        else:
            for index, item in enumerate(detail):
                if item:
                    yield from _flatten(item, f"{path}[{index}]")
    else:
        code = getattr(detail, "code", None) or "invalid"
        yield {"field": path or None, "code": str(code), "message": str(detail)}


def _field_of(exc: BaseException) -> str | None:
    field = getattr(exc, "field", None)
    return None if field in (None, "", "__all__") else str(field)


def _domain_entry(exc: BaseException) -> tuple[int, str] | None:
    for klass in type(exc).__mro__:
        if klass in _DOMAIN_ERRORS:
            return _DOMAIN_ERRORS[klass]
    return None


def _auth_message(request: Any) -> tuple[str, str]:
    oauth2_error = getattr(request, "oauth2_error", None) or getattr(
        getattr(request, "_request", None), "oauth2_error", None
    )
    has_bearer = str(request.META.get("HTTP_AUTHORIZATION", "")).lower().startswith("bearer ")
    if oauth2_error or has_bearer:
        return "invalid_token", "the access token is invalid, expired or revoked"
    return "not_authenticated", "send an access token: Authorization: Bearer <token>"


def _response_for(exc: BaseException, request: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        body = error_body(
            request,
            status_code=exc.status_code,
            code=exc.error_code,
            message=exc.message,
            field=exc.field,
            type_=exc.type,
        )
        return exc.status_code, body, dict(exc.headers)
    if isinstance(exc, exceptions.ValidationError):
        errors = list(_flatten(exc.detail)) or [
            {"field": None, "code": "invalid", "message": "the request is invalid"}
        ]
        first = errors[0]
        body = error_body(
            request,
            status_code=400,
            code=first["code"],
            message=first["message"],
            field=first["field"],
            errors=errors if len(errors) > 1 else None,
        )
        return 400, body, headers
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        code, message = _auth_message(request)
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        status_code = exc.status_code
        return (
            status_code,
            error_body(request, status_code=status_code, code=code, message=message),
            headers,
        )
    if isinstance(exc, exceptions.Throttled):
        if exc.wait is not None:
            headers["Retry-After"] = str(max(1, int(exc.wait + 0.999)))
        message = f"too many requests; retry after {headers.get('Retry-After', 'a while')} s"
        return (
            429,
            error_body(request, status_code=429, code="rate_limited", message=message),
            headers,
        )
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        fallback = codes if isinstance(codes, str) else "error"
        code = next((c for k, c in _DRF_CODES.items() if isinstance(exc, k)), fallback)
        message = str(exc.detail) if isinstance(exc.detail, str) else code.replace("_", " ")
        if isinstance(exc, exceptions.ParseError):
            message = f"the body is not valid JSON: {exc.detail}"
        if isinstance(exc, exceptions.PermissionDenied):
            code = "forbidden"
        return (
            exc.status_code,
            error_body(request, status_code=exc.status_code, code=code, message=message),
            headers,
        )
    if isinstance(exc, (Http404, ObjectDoesNotExist)):
        message = "no such object (or not yours)"
        return 404, error_body(request, status_code=404, code="not_found", message=message), headers
    if isinstance(exc, PermissionDenied):
        message = str(exc) or "you may not do this"
        return 403, error_body(request, status_code=403, code="forbidden", message=message), headers
    entry = _domain_entry(exc)
    if entry is not None:
        status_code, code = entry
        message = str(getattr(exc, "message", "") or exc)
        body = error_body(
            request, status_code=status_code, code=code, message=message, field=_field_of(exc)
        )
        return status_code, body, headers
    if isinstance(exc, DjangoValidationError):
        errors = [
            {"field": None if f == "__all__" else f, "code": "invalid", "message": m}
            for f, messages in getattr(exc, "message_dict", {"__all__": exc.messages}).items()
            for m in messages
        ]
        first = errors[0]
        body = error_body(
            request,
            status_code=400,
            code="invalid",
            message=first["message"],
            field=first["field"],
            errors=errors if len(errors) > 1 else None,
        )
        return 400, body, headers
    logger.exception("API request %s failed", request_id_of(request))
    message = "something went wrong on our side; quote the request id when you report it"
    return (
        500,
        error_body(request, status_code=500, code="internal_error", message=message),
        headers,
    )


def _set_rollback() -> None:
    """As REST framework's own handler does: a request-wide transaction is rolled back."""
    for db in connections.all():
        if db.settings_dict.get("ATOMIC_REQUESTS") and db.in_atomic_block:
            db.set_rollback(True)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """REST framework's exception handler: every exception, the one shape, no trace."""
    request = context.get("request")
    _set_rollback()
    status_code, body, headers = _response_for(exc, request)
    return Response(body, status=status_code, headers=headers)


@csrf_exempt  # an unknown API path is a 404 for every method, never the portal's CSRF page
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any path under /api/ that names no endpoint: 404 in the one shape (not the portal's
    HTML page)."""
    return error_json(
        request, status_code=404, code="unknown_endpoint", message="no API endpoint at this path"
    )
