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


ERROR_STATUSES = {
    "400": "Bad input: malformed JSON, a field that fails validation (named in `field`).",
    "401": "No bearer token, or one that is invalid, expired or revoked.",
    "403": "The token lacks a scope (`missing_scope`) or the actor may not do this.",
    "404": "No such object, or not the token's to see.",
    "409": "A conflict: the Idempotency-Key is in use, or the object's state forbids it.",
    "413": "The body is larger than the limit.",
    "415": "The body is not `application/json`.",
    "429": "Throttled: retry after the `Retry-After` header's seconds.",
}
POST_ONLY_STATUSES = {
    "422": "The Idempotency-Key was used with other parameters or on another endpoint.",
}

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message", "field", "request_id"],
            "properties": {
                "type": {
                    "type": "string",
                    "enum": sorted(
                        {
                            "invalid_request",
                            "authentication",
                            "permission",
                            "not_found",
                            "conflict",
                            "idempotency",
                            "rate_limit",
                            "server",
                        }
                    ),
                },
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string", "nullable": True},
                "request_id": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "field": {"type": "string", "nullable": True},
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
            },
        }
    },
}


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the one error shape as the ``Error`` component,
    answering every status an endpoint may give on every operation (endpoint authors do
    not repeat it), and the ``Idempotency-Key`` header on every POST."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {})["Error"] = _ERROR_SCHEMA
    reference = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            statuses = dict(ERROR_STATUSES)
            if method == "post":
                statuses.update(POST_ONLY_STATUSES)
                parameters = operation.setdefault("parameters", [])
                if not any(p.get("name") == "Idempotency-Key" for p in parameters):
                    parameters.append(
                        {
                            "in": "header",
                            "name": "Idempotency-Key",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 255},
                            "description": "Retry safely: the first answer is replayed (24 h).",
                        }
                    )
            for status, description in statuses.items():
                operation["responses"].setdefault(
                    status, {"description": description, "content": reference}
                )
    return result
