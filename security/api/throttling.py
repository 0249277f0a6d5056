"""Throttles per client application and per user (rates ``API_THROTTLE_CLIENT_RATE`` and
``API_THROTTLE_USER_RATE``); over either, 429 in the error shape with ``Retry-After``.

They count in Django's cache: the default (per process) is enough for the demo and one
server; several servers share a limit through a shared cache (``CACHES``, docs/api.md).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ClientRateThrottle(SimpleRateThrottle):
    """Every token of one application together."""

    scope = "api_client"

    def get_rate(self) -> str:
        return str(settings.API_THROTTLE_CLIENT_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        token = request.auth
        if token is None:
            return None
        return f"throttle_api_client_{token.application_id}"


class UserRateThrottle(SimpleRateThrottle):
    """Every token acting for one customer user, whichever app holds it."""

    scope = "api_user"

    def get_rate(self) -> str:
        return str(settings.API_THROTTLE_USER_RATE)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        token = request.auth
        if token is None or token.user_id is None:
            return None
        return f"throttle_api_user_{token.user_id}"
