"""API test helpers: registered applications and access tokens as django-oauth-toolkit
stores them (the OAuth flows themselves are tested end to end in test_oauth_flows.py)."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, set_token_value
from rest_framework.test import APIClient

from security.keyring import forget_cached_keyrings
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


# --- the resources' tests (billing.api, payments.api) --------------------------------------

ALL_SCOPES = (
    "customers:read",
    "customers:write",
    "invoices:read",
    "invoices:write",
    "payments:read",
    "payments:write",
    "payment_methods:read",
    "payment_methods:write",
)


@pytest.fixture(autouse=True)
def vault_keyring(settings: Any, tmp_path: Path) -> Iterator[Path]:
    """Each test gets its own vault keyring file, never the demo's (as tests/payments)."""
    path = tmp_path / "keys" / "vault_keyring.json"
    settings.VAULT_KEYRING_PROVIDER = "file"
    settings.VAULT_KEYRING_FILE = path
    settings.VAULT_KEYRING_CREATE = True
    settings.VAULT_ENTRY_KEY_BITS = 2048
    forget_cached_keyrings()
    yield path
    forget_cached_keyrings()


class Api:
    """A client calling /api/v1/ with one bearer token (``raw``)."""

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(_url(path), params)

    def post(self, path: str, body: Any = None, *, key: str | None = None, **extra: Any) -> Any:
        """A POST with a fresh Idempotency-Key (or ``key``); JSON unless ``content_type``."""
        headers = {"HTTP_IDEMPOTENCY_KEY": key or uuid.uuid4().hex}
        if "content_type" in extra:
            return self.client.post(_url(path), body, **headers, **extra)
        payload = body if body is not None else {}
        return self.client.post(_url(path), payload, format="json", **headers)

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(_url(path), body, format="json")

    def delete(self, path: str) -> Any:
        return self.client.delete(_url(path))


def _url(path: str) -> str:
    return path if path.startswith("/") else f"/api/v1/{path}"


def make_token(user: User | None, scopes: tuple[str, ...] | list[str]) -> str:
    """A real access token: of an app a customer user signed in to (authorization code), or,
    when ``user`` is None, of a server integration with its integration account."""
    if user is None:
        account = make_user(f"api-integration-{secrets.token_hex(4)}")
        account.set_unusable_password()
        account.save()
        application = make_application(f"integration {account.username}", user=account)
    else:
        application = make_application(
            f"app for {user.username} {secrets.token_hex(4)}",
            grant=Application.GRANT_AUTHORIZATION_CODE,
            client_type=Application.CLIENT_PUBLIC,
            redirect_uris="https://app.example/callback",
        )
    return issue_token(application, user=user, scopes=" ".join(scopes))


@pytest.fixture
def api_as(db: None) -> Callable[..., Api]:
    """``api_as(user_or_None, scopes=ALL_SCOPES)``: a client with a fresh token."""

    def build(user: User | None, scopes: tuple[str, ...] | list[str] = ALL_SCOPES) -> Api:
        return Api(make_token(user, scopes))

    return build


@pytest.fixture
def alice_api(api_as: Callable[..., Api], alice: User) -> Api:
    return api_as(alice)


@pytest.fixture
def bob_api(api_as: Callable[..., Api], bob: User) -> Api:
    return api_as(bob)


@pytest.fixture
def erp_api(api_as: Callable[..., Api]) -> Api:
    """A server integration (client credentials) with every scope."""
    return api_as(None)


def error_fields(response: Any) -> set[str]:
    """The fields the one error shape names (the first error's and every listed one's)."""
    error = error_of(response)
    return {str(error["field"])} | {str(e["field"]) for e in error.get("errors", [])}


# The documents fixtures (the test signing key, signed invoices) and the payments ones
# (Alice's 1,000 SEK invoice, her saved cards tokenized by her).
from tests.billing.documents.conftest import (  # noqa: E402, F401
    alice_document,
    sign_invoice,
    signing_key,
    signing_key_dir,
)
from tests.payments.fixtures import saved_card, thousand_sek_invoice  # noqa: E402, F401
