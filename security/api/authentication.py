"""Bearer tokens only (no session authentication on the API, so no CSRF question).

Our own check on REST framework's public authentication interface, reading the tokens
django-oauth-toolkit issues (it keeps the token, authorize, revoke and OIDC endpoints):
the token is found by django-oauth-toolkit's SHA-256 checksum in one query, compiled once
per process (``db.compiled``), that also reads its application, its user, the
application's integration account and when the customer behind it last confirmed a second
factor (``security.ApiStepUp``, decision 74: put on the request for the step-up rule,
``security.selectors.is_step_up_fresh``). Going through oauthlib to ask the same question cost
3-5 ms of Python per request (docs/benchmarks.md, "API token check").

Refused like an expired token (401 ``invalid_token``): an unknown token (a prefix of a
real one, a refresh token, an authorization code: none is stored under that checksum as
an access token), an expired or revoked one (django-oauth-toolkit deletes a revoked
access token), one restricted to another resource (RFC 8707), one whose application is no
longer usable, and one whose acting account (the customer user, or the client's
integration account) is deactivated. A token a staff account consented to is refused
later, with 403 (``security.api.principal``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.authentication import BaseAuthentication

from db.compiled import compiled
from security.models import ApiStepUp
from security.selectors import API_SECOND_FACTOR_ATTRIBUTE

_INVALID = {"error": "invalid_token"}
# Longer than any token we issue (django-oauth-toolkit's are 30 characters): an absurd
# header is not even hashed.
_MAX_TOKEN_LENGTH = 512


@compiled(str)
def _access_token_by_checksum(checksum: str) -> Any:
    return AccessToken.objects.select_related(
        "application", "application__user", "user", "tillit_step_up"
    ).filter(token_checksum=checksum)[:1]


def bearer_token_of(request: Any) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (the scheme in any case), or None when
    the request does not send one. Never from the query string or the body (RFC 9700)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def find_access_token(raw: str) -> AccessToken | None:
    """The stored access token with this value, with its application, user and the
    application's integration account read in the same query; None if there is none."""
    if not raw or len(raw) > _MAX_TOKEN_LENGTH:
        return None
    checksum = hashlib.sha256(raw.encode("utf-8")).hexdigest()
    found: AccessToken | None = _access_token_by_checksum.first(checksum)
    return found


def _usable(token: AccessToken, request: Any) -> bool:
    if token.expires is None or timezone.now() >= token.expires:
        return False
    application = token.application
    if application is None or not application.is_usable(request):
        return False
    if token.resource and not token.allows_audience(request.build_absolute_uri(request.path)):
        return False
    acting = token.user if token.user_id is not None else application.user
    return acting is None or bool(acting.is_active)


class BearerAuthentication(BaseAuthentication):
    """``(user, access token)`` for a valid bearer token (``user`` is None for a client-
    credentials token: it acts through its integration account, ``security.api.principal``);
    None, with ``request.oauth2_error`` set, for any other token."""

    www_authenticate_realm = "tillit"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        raw = bearer_token_of(request)
        if raw is None:
            return None
        token = find_access_token(raw)
        if token is None or not _usable(token, request):
            request.oauth2_error = _INVALID
            return None
        try:
            step_up: ApiStepUp | None = token.tillit_step_up
        except ApiStepUp.DoesNotExist:
            step_up = None
        # On Django's request: the services are given that one (``request._request``).
        setattr(
            request._request,
            API_SECOND_FACTOR_ATTRIBUTE,
            step_up.mfa_verified_at if step_up is not None else None,
        )
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        challenge = f'Bearer realm="{self.www_authenticate_realm}"'
        if getattr(request, "oauth2_error", None):
            challenge += ',error="invalid_token"'
        return challenge
