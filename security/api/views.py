"""The base of every API view, and ``GET /api/v1/me``.

``ApiView`` (and ``ApiGenericView`` for REST framework's generic views) adds to REST
framework's view what every endpoint needs: a body over ``API_MAX_BODY_BYTES`` refused
before it is read (413), and ``Idempotency-Key`` on POST (``security.api.idempotency``)
claimed after authentication, scopes and throttles, its answer stored after the view.
Endpoint authors subclass one of them, declare ``required_scopes`` and call services with
``actor_of(request)``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponseBase
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from security.api import idempotency
from security.api.parsers import check_body_size, check_body_type
from security.api.principal import principal_of


class IdempotentMixin:
    """Body limit and Idempotency-Key for a REST framework view (put it first in the bases)."""

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        check_body_size(request)
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        check_body_type(request)
        self._idempotency_claim = None
        if request.method == "POST":
            match = request.resolver_match
            endpoint = match.route if match is not None else request.path
            self._idempotency_claim = idempotency.claim(request, endpoint=endpoint)

    def handle_exception(self, exc: Exception) -> HttpResponseBase:
        if isinstance(exc, idempotency.Replay):
            return exc.response
        return super().handle_exception(exc)  # type: ignore[misc]

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        claimed = getattr(self, "_idempotency_claim", None)
        if claimed is not None:
            self._idempotency_claim = None
            idempotency.store_answer(claimed, response)
        return response


class ApiView(IdempotentMixin, APIView):
    """Base of the API's plain views."""


class ApiGenericView(IdempotentMixin, generics.GenericAPIView):
    """Base of the API's generic views (lists with the cursor pagination, details)."""


_Me = inline_serializer(
    "Me",
    {
        "kind": serializers.ChoiceField(choices=["customer", "integration"]),
        "client_id": serializers.CharField(),
        "application": serializers.CharField(),
        "user": serializers.CharField(help_text="The acting account's username."),
        "scopes": serializers.ListField(child=serializers.CharField()),
    },
)


class MeView(ApiView):
    """Who the token acts for: the kind of actor, the client and its scopes. Any token."""

    required_scopes: dict[str, list[str]] = {"GET": []}

    @extend_schema(responses=_Me, summary="The token's principal and scopes")
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        return Response(
            {
                "kind": principal.kind,
                "client_id": principal.client_id,
                "application": principal.application.name,
                "user": principal.user.get_username(),
                "scopes": sorted(principal.scopes),
            }
        )
