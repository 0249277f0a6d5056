"""The errors each endpoint documents, in the API's one error shape
(``security.api.errors``; docs/api.md, "Errors")."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

_ITEM = {
    "field": serializers.CharField(allow_null=True),
    "code": serializers.CharField(),
    "message": serializers.CharField(),
}
ERROR = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "type": serializers.CharField(),
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "field": serializers.CharField(allow_null=True),
                "request_id": serializers.CharField(),
                "errors": inline_serializer("ErrorItem", _ITEM, many=True, required=False),
            },
        )
    },
)

_WHY = {
    400: "Bad input: the field named is wrong (nothing changed).",
    401: "No valid bearer token.",
    403: "The token lacks the scope, or its holder may not do this.",
    404: "No such object, or not the caller's (the same answer).",
    409: "The object's state does not allow this now (or the Idempotency-Key is in use).",
    413: "The body is larger than the limit.",
    415: "The body is not JSON.",
    422: "The Idempotency-Key was used with another request.",
    429: "Too many requests: retry after Retry-After seconds.",
    503: "Card payments are unavailable for now (nothing was charged).",
}
READ = (401, 403, 404, 429)
WRITE = (400, 401, 403, 404, 409, 413, 415, 422, 429)


def errors(*codes: int) -> dict[int, Any]:
    """The ``responses`` entries of these error statuses."""
    return {code: OpenApiResponse(ERROR, description=_WHY[code]) for code in codes}
