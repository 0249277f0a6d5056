"""The API's scopes, one per resource and action (``OAUTH2_PROVIDER["SCOPES"]`` names and
explains them; docs/api.md has the table), and which an application may be granted.

``openid``, ``profile`` and ``email`` are OpenID Connect's and only make sense for a token
that acts for a person (authorization code). The rest are ``<resource>:<action>``; a
``write`` scope never implies the matching ``read`` one.
"""

from __future__ import annotations

from django.conf import settings

OIDC_SCOPES = frozenset({"openid", "profile", "email"})


def all_scopes() -> frozenset[str]:
    """Every scope the server knows."""
    return frozenset(settings.OAUTH2_PROVIDER["SCOPES"])  # type: ignore[call-overload]


def api_scopes() -> frozenset[str]:
    """The resource scopes (everything but OpenID Connect's)."""
    return all_scopes() - OIDC_SCOPES
