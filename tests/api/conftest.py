"""API fixtures: real OAuth tokens (django-oauth-toolkit's models) for customer Alice, customer
Bob and a server integration, each with the scopes a test gives, and clients that send them.

``api_as(alice, scopes)`` is Alice's app acting for her (authorization code: the token
carries her user); ``api_as(None, scopes)`` is a server integration (client credentials:
no user). A POST carries a fresh Idempotency-Key unless the test gives one.
"""

from __future__ import annotations

import datetime
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from security.keyring import forget_cached_keyrings
from security.models import User

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
    """A client calling /api/v1/ with one bearer token."""

    def __init__(self, token: Any) -> None:
        self.token = token
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.token}")

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(_url(path), params)

    def post(self, path: str, body: Any = None, *, key: str | None = None, **extra: Any) -> Any:
        headers = {"HTTP_IDEMPOTENCY_KEY": key or uuid.uuid4().hex}
        if "content_type" in extra or "format" in extra:
            return self.client.post(_url(path), body, **headers, **extra)
        return self.client.post(
            _url(path), body if body is not None else {}, format="json", **headers
        )

    def patch(self, path: str, body: Any) -> Any:
        return self.client.patch(_url(path), body, format="json")

    def delete(self, path: str) -> Any:
        return self.client.delete(_url(path))


def _url(path: str) -> str:
    return path if path.startswith("/") else f"/api/v1/{path}"


def make_token(user: User | None, scopes: tuple[str, ...] | list[str]) -> Any:
    """A real access token of a registered application: for ``user`` (authorization code
    with PKCE), or a server integration's (client credentials) when ``user`` is None."""
    from oauth2_provider.models import get_access_token_model, get_application_model

    application_model = get_application_model()
    confidential = application_model.CLIENT_CONFIDENTIAL
    application = application_model.objects.create(
        name=f"test app {secrets.token_hex(4)}",
        client_type=confidential,
        authorization_grant_type=(
            application_model.GRANT_CLIENT_CREDENTIALS
            if user is None
            else application_model.GRANT_AUTHORIZATION_CODE
        ),
        redirect_uris="https://app.example/callback",
        algorithm=application_model.RS256_ALGORITHM
        if hasattr(application_model, "RS256_ALGORITHM")
        else "",
    )
    return get_access_token_model().objects.create(
        user=user,
        application=application,
        token=secrets.token_urlsafe(30),
        expires=timezone.now() + datetime.timedelta(minutes=15),
        scope=" ".join(scopes),
    )


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
def integration(api_as: Callable[..., Api]) -> Api:
    """A server integration (client credentials) with every scope."""
    return api_as(None)


def error_fields(response: Any) -> set[str]:
    """The fields the one error shape names."""
    body = response.json()
    return {str(err.get("field")) for err in body.get("errors", [body])}


# The documents fixtures (the test signing key, signed invoices) and the payments ones
# (Alice's 1,000 SEK invoice, her saved cards tokenized by her).
from tests.billing.documents.conftest import (  # noqa: E402, F401
    alice_document,
    sign_invoice,
    signing_key,
    signing_key_dir,
)
from tests.payments.fixtures import saved_card, thousand_sek_invoice  # noqa: E402, F401
