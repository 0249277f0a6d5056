"""How a customer proved who they were at consent, carried from the consent page to the
access tokens of the grant (decision 74, RFC 9470): the consent records when the signed-in
customer's portal session last authenticated (the ID token's ``auth_time``) and when it
last confirmed a second factor; each access token issued from that grant, and each one a
refresh token issues after it, keeps those moments, never later ones. The API's bearer
check reads the second factor's, and ``security.selectors.is_step_up_fresh`` holds it to
the portal's step-up window.

Called by django-oauth-toolkit's validator (``security.api.oauth``) inside the transaction
that writes the grant or the token, whose audit event (``api.token_issued``,
``api.token_refreshed``) says whether a second factor came with it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import NamedTuple

from oauth2_provider.models import AccessToken, Grant

from security.models import ApiStepUp


class ConsentAuthentication(NamedTuple):
    """When the consenting session last authenticated, and last confirmed a second factor
    (None without one)."""

    authenticated_at: datetime | None
    mfa_verified_at: datetime | None


def record_consent_authentication(*, grant_code: str, moments: ConsentAuthentication) -> None:
    """Keep on the grant just issued how its customer's session proved who they were."""
    if moments.authenticated_at is None and moments.mfa_verified_at is None:
        return
    grant = Grant.objects.filter(code=grant_code).only("pk").first()
    if grant is not None:
        ApiStepUp.objects.create(
            grant=grant,
            authenticated_at=moments.authenticated_at,
            mfa_verified_at=moments.mfa_verified_at,
        )


def _moments(found: tuple[datetime | None, datetime | None] | None) -> ConsentAuthentication | None:
    return ConsentAuthentication(*found) if found is not None else None


def authentication_of_grant(grant_code: str) -> ConsentAuthentication | None:
    """How the customer of this authorization code proved who they were (or None)."""
    return _moments(
        ApiStepUp.objects.filter(grant__code=grant_code)
        .values_list("authenticated_at", "mfa_verified_at")
        .first()
    )


def authentication_of_access_token(access_token_id: int | None) -> ConsentAuthentication | None:
    """How the customer behind this access token proved who they were (or None)."""
    if access_token_id is None:
        return None
    return _moments(
        ApiStepUp.objects.filter(access_token_id=access_token_id)
        .values_list("authenticated_at", "mfa_verified_at")
        .first()
    )


def carry_authentication(*, raw_access_token: str, moments: ConsentAuthentication) -> None:
    """Give the access token just issued (its raw value, never stored or logged) the
    moments of its grant's authentication."""
    checksum = hashlib.sha256(raw_access_token.encode("utf-8")).hexdigest()
    token = AccessToken.objects.filter(token_checksum=checksum).only("pk").first()
    if token is not None:
        ApiStepUp.objects.update_or_create(
            access_token=token,
            defaults={
                "authenticated_at": moments.authenticated_at,
                "mfa_verified_at": moments.mfa_verified_at,
            },
        )
