"""API test helpers: registered applications and access tokens as django-oauth-toolkit
stores them (the OAuth flows themselves are tested end to end in test_oauth_flows.py)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value

from security.models import User
from tests.factories import make_user


def make_application(
    name: str,
    *,
    grant: str = Application.GRANT_CLIENT_CREDENTIALS,
    user: User | None = None,
    client_type: str = Application.CLIENT_CONFIDENTIAL,
    redirect_uris: str = "",
) -> Application:
    return Application.objects.create(
        name=name,
        user=user,
        client_type=client_type,
        authorization_grant_type=grant,
        redirect_uris=redirect_uris,
        algorithm=Application.RS256_ALGORITHM,
    )


SECRET = "s3cret-for-the-tests-only-0123456789abcdef"


def registered(
    name: str, *, kind: str, scopes: list[str], user: User | None = None, redirect: str = ""
) -> Application:
    """A client as the admin registers it: its Application (secret ``SECRET``, hashed) and
    its ApiClient facts (kind, allowed scopes)."""
    from security.models import ApiClient

    integration = kind == ApiClient.Kind.INTEGRATION
    application = Application(
        name=name,
        user=user,
        client_type=Application.CLIENT_CONFIDENTIAL if integration else Application.CLIENT_PUBLIC,
        authorization_grant_type=(
            Application.GRANT_CLIENT_CREDENTIALS
            if integration
            else Application.GRANT_AUTHORIZATION_CODE
        ),
        redirect_uris=redirect,
        client_secret=SECRET,
        hash_client_secret=True,
        algorithm="" if integration else Application.RS256_ALGORITHM,
    )
    application.save()
    ApiClient.objects.create(
        application=application, kind=kind, allowed_scopes=scopes, created_at=timezone.now()
    )
    return application


def issue_token(
    application: Application,
    *,
    user: User | None = None,
    scopes: str = "",
    expires_in: int = 900,
) -> str:
    """A stored access token (checksum only) and its raw value."""
    raw = secrets.token_urlsafe(30)
    token = AccessToken(
        user=user,
        application=application,
        scope=scopes,
        expires=timezone.now() + timedelta(seconds=expires_in),
    )
    set_token_value(token, raw)
    token.save()
    return raw


def bearer(raw: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture(autouse=True)
def _fresh_throttles() -> Iterator[None]:
    """Throttles count in the cache: each test starts with none used."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def integration(db: None) -> Application:
    """A server integration (client credentials) with its integration account."""
    account = make_user("api-erp")
    account.set_unusable_password()
    account.save()
    return make_application("ERP integration", user=account)


@pytest.fixture
def customer_app(db: None) -> Application:
    """A public app customers sign in to (authorization code with PKCE)."""
    return make_application(
        "Alice's bookkeeping app",
        grant=Application.GRANT_AUTHORIZATION_CODE,
        client_type=Application.CLIENT_PUBLIC,
        redirect_uris="https://app.example/callback",
    )


@pytest.fixture
def token_for() -> Callable[..., str]:
    return issue_token


def error_of(response: Any) -> dict[str, Any]:
    """The error object of an API answer, checked for the one shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"type", "code", "message", "field", "request_id"} <= set(error), error
    assert error["request_id"] == response["X-Request-Id"]
    assert "Traceback" not in response.content.decode()
    return dict(error)
