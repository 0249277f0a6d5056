"""Bearer tokens only: django-oauth-toolkit's check, plus what it leaves to us: a token of
a deactivated account, or of a client whose integration account is deactivated, is refused
like an expired one (401). No session authentication on the API, so no CSRF question."""

from __future__ import annotations

from typing import Any

from oauth2_provider.contrib.rest_framework import OAuth2Authentication


class BearerAuthentication(OAuth2Authentication):
    www_authenticate_realm = "tillit"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        user, token = result
        acting = user if user is not None else token.application.user
        if acting is not None and not acting.is_active:
            request.oauth2_error = {"error": "invalid_token"}
            return None
        return result
