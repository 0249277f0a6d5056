"""bench/api.py's layer endpoints: the API's stack with an empty view, one layer added at a
time, to price each layer per request (in-process only: bench/api.py routes Django to
this module with ``override_settings(ROOT_URLCONF=...)``; the product never serves them).

Each endpoint reads the JSON body and answers a small object with 201, as a create does;
the layers are the product's own classes, in the order a request meets them:

- ``plain``: Django and the middleware stack, a plain view (``json.loads`` of the body);
- ``drf``: REST framework's view, its JSON parser (``BoundedJSONParser``) and renderer,
  no authentication;
- ``token``: the bearer token check (``BearerAuthentication``) and the scopes permission;
- ``throttle``: and the throttle (``ApiRateThrottle``: one counting statement);
- ``idempotent``: every endpoint's base (``security.api.views.ApiView``): and the body limit
  and the Idempotency-Key's claim and stored answer.
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as product_urlpatterns
from security.api.authentication import BearerAuthentication
from security.api.permissions import Scopes
from security.api.throttling import ApiRateThrottle
from security.api.views import ApiView

ANSWER = {"id": 1, "status": "draft"}
LAYERS = ("plain", "drf", "token", "throttle", "idempotent")


@csrf_exempt
def plain(request: HttpRequest) -> JsonResponse:
    json.loads(request.body)
    return JsonResponse(ANSWER, status=201)


class Drf(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    throttle_classes: list[Any] = []

    def post(self, request: Request) -> Response:
        request.data  # noqa: B018 (parsed as a view's body is)
        return Response(ANSWER, status=201)


class Token(Drf):
    authentication_classes = [BearerAuthentication]
    permission_classes = [Scopes]
    required_scopes = {"POST": ["invoices:write"]}


class Throttle(Token):
    throttle_classes = [ApiRateThrottle]


class Idempotent(ApiView):
    required_scopes = {"POST": ["invoices:write"]}

    def post(self, request: Request) -> Response:
        request.data  # noqa: B018
        return Response(ANSWER, status=201)


urlpatterns = [
    path("api/v1/_layers/plain", plain),
    path("api/v1/_layers/drf", Drf.as_view()),
    path("api/v1/_layers/token", Token.as_view()),
    path("api/v1/_layers/throttle", Throttle.as_view()),
    path("api/v1/_layers/idempotent", Idempotent.as_view()),
    *product_urlpatterns,
]
