"""django-oauth-toolkit's validator with what Tillit adds: every token issued, refreshed
and revoked is audited (``api.token_issued``, ``api.token_refreshed``,
``api.token_revoked``), a refresh token presented again after use (its family then
revoked by django-oauth-toolkit) is audited as ``api.refresh_token_reused``, and ID
tokens and userinfo carry the customer's name and e-mail address for the ``profile`` and
``email`` scopes. Events name the client, the grant and the scopes, never a token."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from django.db import transaction
from oauth2_provider.models import get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator

from audit import record
from security.services import token_second_factor
from security.services.token_second_factor import ConsentAuthentication

# The consent page's credentials carrying how the session proved who the customer is: its
# last authentication and its second factor (never parameters).
CONSENT_AUTHENTICATED = "tillit_consent_authenticated_at"
CONSENT_SECOND_FACTOR = "tillit_consent_second_factor_at"


def _actor(request: Any) -> Any:
    """The user a token acts for, or the client itself (client credentials)."""
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "pk", None) is not None:
        return user
    return request.client


def _grant_authentication(request: Any) -> ConsentAuthentication | None:
    """How the customer behind this token request proved who they were: at consent
    (authorization code), or as the refreshed token's grant did (refresh). Read before
    django-oauth-toolkit revokes the refreshed token's access token."""
    if request.grant_type == "authorization_code":
        return token_second_factor.authentication_of_grant(str(request.code or ""))
    if request.grant_type == "refresh_token":
        # Set by django-oauth-toolkit's validate_refresh_token (vars: never a parameter).
        previous = vars(request).get("refresh_token_instance")
        if not isinstance(previous, get_refresh_token_model()):
            return None
        return token_second_factor.authentication_of_access_token(previous.access_token_id)
    return None


def _moment(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


class TillitOAuth2Validator(OAuth2Validator):
    def save_authorization_code(
        self, client_id: str, code: dict[str, Any], request: Any, *args: Any, **kwargs: Any
    ) -> Any:
        with transaction.atomic():
            result = super().save_authorization_code(client_id, code, request, *args, **kwargs)
            # Set by the consent page (ConsentView) from the session. Read from the instance
            # only: oauthlib's Request answers any other attribute name from the request's
            # query and body parameters, which the client writes.
            token_second_factor.record_consent_authentication(
                grant_code=code["code"],
                moments=ConsentAuthentication(
                    authenticated_at=_moment(vars(request).get(CONSENT_AUTHENTICATED)),
                    mfa_verified_at=_moment(vars(request).get(CONSENT_SECOND_FACTOR)),
                ),
            )
        return result

    def save_bearer_token(
        self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any
    ) -> Any:
        refreshed = request.grant_type == "refresh_token"
        # The token and its event commit together (or neither does).
        with transaction.atomic():
            moments = _grant_authentication(request)
            result = super().save_bearer_token(token, request, *args, **kwargs)
            if moments is not None:
                token_second_factor.carry_authentication(
                    raw_access_token=token["access_token"], moments=moments
                )
            record(
                "api.token_refreshed" if refreshed else "api.token_issued",
                actor=_actor(request),
                obj=request.client,
                client_id=request.client.client_id,
                grant_type=request.grant_type,
                scopes=str(token.get("scope", "")),
                refreshable=bool(token.get("refresh_token")),
                second_factor=moments is not None and moments.mfa_verified_at is not None,
            )
        return result

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        valid = bool(
            super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        )
        if not valid:
            checksum = hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()
            used = (
                get_refresh_token_model()
                .objects.filter(token_checksum=checksum, revoked__isnull=False)
                .select_related("user")
                .first()
            )
            if used is not None:
                record(
                    "api.refresh_token_reused",
                    actor=used.user or client,
                    obj=client,
                    client_id=client.client_id,
                    family=str(used.token_family or ""),
                )
        return valid

    def revoke_token(
        self, token: str, token_type_hint: str | None, request: Any, *args: Any, **kwargs: Any
    ) -> Any:
        result = super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        client = getattr(request, "client", None)
        if client is not None:
            record(
                "api.token_revoked",
                actor=client,
                obj=client,
                client_id=client.client_id,
                kind=token_type_hint or "unknown",
            )
        return result

    def get_id_token_dictionary(
        self, token: Any, token_handler: Any, request: Any
    ) -> tuple[dict[str, Any], Any]:
        """django-oauth-toolkit's claims, with ``auth_time`` the moment the consenting
        session last authenticated (OIDC Core 2), not the user's last sign-in anywhere;
        a token whose grant did not record it keeps django-oauth-toolkit's."""
        claims, expiration_time = super().get_id_token_dictionary(token, token_handler, request)
        moments = _grant_authentication(request)
        if moments is not None and moments.authenticated_at is not None:
            claims["auth_time"] = int(moments.authenticated_at.timestamp())
        return claims, expiration_time

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user = request.user
        scopes = set(getattr(request, "scopes", None) or [])
        claims: dict[str, Any] = {}
        if "profile" in scopes:
            claims["name"] = user.get_full_name() or user.get_username()
        if "email" in scopes and user.email:
            claims["email"] = user.email
        return claims
