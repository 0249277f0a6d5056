"""``/api/schema/`` (OpenAPI 3, drf-spectacular) and ``/api/docs/``: the same schema as a
page rendered on the server, in the site's own look, with no outside script, style or
font (it keeps the site's Content-Security-Policy; Swagger UI and Redoc would need the
sidecar package or a CDN, docs/decisions.md). Both are public: they describe the API,
never data."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny


class SchemaView(SpectacularAPIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            if not isinstance(operation, dict):
                continue
            scopes = [s for req in operation.get("security", []) for s in req.get("oauth2", [])]
            rows.append(
                {
                    "path": path,
                    "method": method.upper(),
                    "summary": operation.get("summary") or operation.get("description", ""),
                    "scopes": scopes,
                    "responses": sorted(operation.get("responses", {})),
                    "anchor": operation.get("operationId", f"{method}-{path}"),
                }
            )
    return rows


def api_docs(request: HttpRequest) -> HttpResponse:
    """The API's reference page, from the live schema."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    security = schema.get("components", {}).get("securitySchemes", {}).get("oauth2", {})
    scopes = security.get("flows", {}).get("authorizationCode", {}).get("scopes", {})
    context = {
        "title": "Tillit API",
        "operations": _operations(schema),
        "scopes": sorted(scopes.items()),
        "error_fields": ["type", "code", "message", "field", "request_id"],
    }
    return render(request, "security/api_docs.html", context)
