"""Delivery errors: each names its field or rule (billing's hierarchy)."""

from __future__ import annotations

from billing.exceptions import BillingError


class DeliveryError(BillingError):
    """Base of every delivery error."""


class InvalidPgpKey(DeliveryError):
    """An uploaded PGP key that is malformed, secret, revoked, expired or cannot encrypt."""

    field = "pgp_key"


class PgpError(DeliveryError):
    """GnuPG failed (the company key is missing, or signing/encrypting failed)."""

    field = "pgp"


class LinkRefused(DeliveryError):
    """A portal link that is unknown, used, expired or not for this user."""

    field = "link"


class LinkExpired(LinkRefused):
    """The link's validity has run out."""


class LinkUsed(LinkRefused):
    """The link was already opened once."""


class RetryRefused(DeliveryError):
    """Sending a delivery again was asked by someone without the permission."""

    field = "user"
