"""OpenAPI (drf-spectacular) for the API's shared parts: the OAuth 2.0 security scheme
with its flows and scopes, each operation's scopes read from the view's
``required_scopes`` (so the schema cannot disagree with what is enforced)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from security.api.permissions import required_scopes_for


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "security.api.authentication.BearerAuthentication"
    name = "oauth2"

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[str]]:
        scopes = required_scopes_for(auto_schema.view, auto_schema.method) or []
        return {self.name: list(scopes)}

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scopes = dict(settings.OAUTH2_PROVIDER["SCOPES"])  # type: ignore[call-overload]
        return {
            "type": "oauth2",
            "description": "OAuth 2.0 bearer tokens (docs/api.md). PKCE (S256) is required "
            "for the authorization code flow.",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "/oauth/authorize/",
                    "tokenUrl": "/oauth/token/",
                    "refreshUrl": "/oauth/token/",
                    "scopes": scopes,
                },
                "clientCredentials": {
                    "tokenUrl": "/oauth/token/",
                    "scopes": {
                        k: v for k, v in scopes.items() if k not in ("openid", "profile", "email")
                    },
                },
            },
        }
