"""The API's own bearer check (security.api.authentication), attacked with what it could get
wrong: tokens that are not access tokens, tokens that are almost right, tokens of things
that are gone. Each refusal is the one error shape, 401 ``invalid_token``, with a bearer
challenge, and echoes nothing of the token."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from oauth2_provider.models import Application, Grant, RefreshToken, set_token_value

from security.api.authentication import BearerAuthentication
from security.models import User
from tests.api.conftest import bearer, error_of, issue_token

pytestmark = pytest.mark.django_db


def _refused(client: Client, token: str, **headers: str) -> None:
    response = client.get("/api/v1/me", **(headers or bearer(token)))
    assert response.status_code == 401, response.content
    assert error_of(response)["code"] == "invalid_token"
    assert response["WWW-Authenticate"] == 'Bearer realm="tillit",error="invalid_token"'
    if token:
        assert token not in response.content.decode()


def test_a_valid_token_is_accepted_in_any_case_of_the_scheme(
    client: Client, integration: Application
) -> None:
    token = issue_token(integration, scopes="invoices:read")
    for scheme in ("Bearer", "bearer", "BEARER"):
        response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"{scheme} {token}")
        assert response.status_code == 200, scheme
        assert response.json()["kind"] == "integration"


def test_a_prefix_or_an_extension_of_a_real_token_is_refused(
    client: Client, integration: Application
) -> None:
    token = issue_token(integration, scopes="invoices:read")
    _refused(client, token[:-1])
    _refused(client, token[:8])
    _refused(client, token + "A")
    _refused(client, f"{token} {token}")


def test_a_refresh_token_presented_as_an_access_token_is_refused(
    client: Client, customer_app: Application, alice: User
) -> None:
    raw = secrets.token_urlsafe(30)
    issue_token(customer_app, user=alice, scopes="invoices:read")
    refresh = RefreshToken(user=alice, application=customer_app)
    set_token_value(refresh, raw)
    refresh.save()
    _refused(client, raw)


def test_an_authorization_code_presented_as_an_access_token_is_refused(
    client: Client, customer_app: Application, alice: User
) -> None:
    code = secrets.token_urlsafe(30)
    Grant.objects.create(
        user=alice,
        application=customer_app,
        code=code,
        expires=timezone.now() + timedelta(minutes=1),
        redirect_uri="https://app.example/callback",
        scope="invoices:read",
    )
    _refused(client, code)


def test_the_token_of_a_deleted_application_is_refused(
    client: Client, integration: Application
) -> None:
    token = issue_token(integration, scopes="invoices:read")
    integration.delete()
    _refused(client, token)


def test_the_token_of_a_deactivated_integration_account_is_refused(
    client: Client, integration: Application
) -> None:
    token = issue_token(integration, scopes="invoices:read")
    User.objects.filter(pk=integration.user_id).update(is_active=False)
    _refused(client, token)


def test_a_token_that_expires_now_is_refused(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:read", expires_in=0)
    _refused(client, token)


def test_a_token_restricted_to_another_resource_is_refused(
    client: Client, integration: Application
) -> None:
    from oauth2_provider.models import AccessToken

    token = issue_token(integration, scopes="invoices:read")
    AccessToken.objects.filter(application=integration).update(
        resource=["https://elsewhere.example/api"]
    )
    _refused(client, token)


def test_an_empty_or_absurd_bearer_is_refused_without_a_lookup(client: Client) -> None:
    _refused(client, "", HTTP_AUTHORIZATION="Bearer ")
    with CaptureQueriesContext(connection) as queries:
        _refused(client, "", HTTP_AUTHORIZATION="Bearer " + "A" * 10_000)
    assert not [q for q in queries.captured_queries if "oauth2_provider_accesstoken" in q["sql"]]


def test_a_token_in_the_query_string_is_not_read(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:read")
    response = client.get("/api/v1/me", {"access_token": token})
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_another_scheme_is_not_a_bearer_token(client: Client, integration: Application) -> None:
    token = issue_token(integration, scopes="invoices:read")
    response = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 401
    assert error_of(response)["code"] == "not_authenticated"


def test_the_check_is_one_query_for_either_kind_of_token(
    integration: Application, customer_app: Application, alice: User
) -> None:
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    factory = APIRequestFactory()
    for token in (
        issue_token(integration, scopes="invoices:read"),
        issue_token(customer_app, user=alice, scopes="invoices:read"),
    ):
        request = Request(factory.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}"))
        with CaptureQueriesContext(connection) as queries:
            _user, stored = BearerAuthentication().authenticate(request)  # type: ignore[misc]
            acting = stored.user if stored.user_id else stored.application.user
            assert acting.is_active
        assert len(queries) == 1
