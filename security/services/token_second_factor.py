"""A customer's second factor carried from the consent page to the access tokens of the
grant (decision 74, RFC 9470): the consent records when the signed-in customer last
confirmed a second factor, each access token issued from that grant, and each one a refresh
token issues after it, keeps that moment, never a later one. The API's bearer check reads
it, and ``security.selectors.is_step_up_fresh`` holds it to the portal's step-up window.

Called by django-oauth-toolkit's validator (``security.api.oauth``) inside the transaction
that writes the grant or the token, whose audit event (``api.token_issued``,
``api.token_refreshed``) says whether a second factor came with it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from oauth2_provider.models import AccessToken, Grant

from security.models import ApiStepUp


def record_consent_second_factor(*, grant_code: str, mfa_verified_at: datetime) -> None:
    """Keep on the grant just issued when its customer last confirmed a second factor."""
    grant = Grant.objects.filter(code=grant_code).only("pk").first()
    if grant is not None:
        ApiStepUp.objects.create(grant=grant, mfa_verified_at=mfa_verified_at)


def second_factor_of_grant(grant_code: str) -> datetime | None:
    """When the customer of this authorization code confirmed a second factor (or None)."""
    return (
        ApiStepUp.objects.filter(grant__code=grant_code)
        .values_list("mfa_verified_at", flat=True)
        .first()
    )


def second_factor_of_access_token(access_token_id: int | None) -> datetime | None:
    """When the customer behind this access token confirmed a second factor (or None)."""
    if access_token_id is None:
        return None
    return (
        ApiStepUp.objects.filter(access_token_id=access_token_id)
        .values_list("mfa_verified_at", flat=True)
        .first()
    )


def carry_second_factor(*, raw_access_token: str, mfa_verified_at: datetime) -> None:
    """Give the access token just issued (its raw value, never stored or logged) the
    moment of its grant's second factor."""
    checksum = hashlib.sha256(raw_access_token.encode("utf-8")).hexdigest()
    token = AccessToken.objects.filter(token_checksum=checksum).only("pk").first()
    if token is not None:
        ApiStepUp.objects.update_or_create(
            access_token=token, defaults={"mfa_verified_at": mfa_verified_at}
        )
