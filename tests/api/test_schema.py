"""The OpenAPI schema and its page: every operation documents the error shape and its
scopes, the page needs no outside asset (it keeps the site's CSP)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_the_schema_documents_scopes_and_every_error(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    me = schema["paths"]["/api/v1/me"]["get"]
    assert {"400", "401", "403", "404", "409", "413", "415", "429"} <= set(me["responses"])
    assert me["responses"]["401"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    error = schema["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["required"]) == {"type", "code", "message", "field", "request_id"}
    flows = schema["components"]["securitySchemes"]["oauth2"]["flows"]
    assert "invoices:write" in flows["clientCredentials"]["scopes"]
    assert "openid" not in flows["clientCredentials"]["scopes"]
    assert me["security"] == [{"oauth2": []}]


def test_the_docs_page_lists_the_endpoints_with_no_outside_asset(client: Client) -> None:
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/api/v1/me" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)
    assert "'self'" in response["Content-Security-Policy"]
