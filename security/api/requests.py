"""Request ids: every request carries one, echoed in the ``X-Request-Id`` response header
and in every API error, so a client's report and the server's log name the same request.

A client may send its own ``X-Request-Id`` (1-64 characters of letters, digits and
``-_.:``); anything else is replaced by a new random id, so a header cannot inject text
into logs or answers.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-Id"
_META_KEY = "HTTP_X_REQUEST_ID"
_SANE = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


def new_request_id() -> str:
    """A fresh id: ``req_`` and 24 random hex digits."""
    return f"req_{secrets.token_hex(12)}"


def request_id_of(request: HttpRequest | None) -> str:
    """The request's id (given to it by the middleware; made here when the middleware has
    not run, e.g. a request built by hand in a test)."""
    if request is None:
        return new_request_id()
    existing = getattr(request, "request_id", None)
    if existing is None:
        django_request = getattr(request, "_request", None)  # a DRF Request wraps Django's
        existing = getattr(django_request, "request_id", None)
    if existing is None:
        existing = new_request_id()
        request.request_id = existing  # type: ignore[attr-defined]
    return str(existing)


def accepted_request_id(raw: str) -> str:
    """The client's id when it is sane, else a new one."""
    return raw if _SANE.fullmatch(raw) else new_request_id()


class RequestIdMiddleware:
    """Gives each request its id and echoes it on the response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = accepted_request_id(request.META.get(_META_KEY, ""))  # type: ignore[attr-defined]
        response = self.get_response(request)
        response[HEADER] = request.request_id  # type: ignore[attr-defined]
        return response
