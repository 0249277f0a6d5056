"""The demo's API clients: registered once, usable with what seed_demo prints (which is
never a token), refused in production."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client
from oauth2_provider.models import AccessToken, Application

from security.exceptions import NotAllowed
from security.services.demo_clients import ensure_demo_api_clients, format_demo_clients

pytestmark = pytest.mark.django_db


def test_the_printed_demo_secret_gets_a_token_and_no_token_is_printed() -> None:
    clients = ensure_demo_api_clients()
    assert ensure_demo_api_clients() == clients
    assert Application.objects.count() == 2
    text = format_demo_clients(clients, "http://127.0.0.1:8000")
    credentials = base64.b64encode(
        f"{clients.erp_client_id}:{clients.erp_secret}".encode()
    ).decode()
    answer = Client().post(
        "/oauth/token/",
        {"grant_type": "client_credentials", "scope": "invoices:read"},
        HTTP_AUTHORIZATION=f"Basic {credentials}",
    )
    assert answer.status_code == 200
    assert answer.json()["access_token"] not in text
    assert clients.erp_secret in text and "code_challenge_method=S256" in text
    assert AccessToken.objects.count() == 1


def test_the_demo_clients_never_exist_in_production(settings: Any) -> None:
    settings.PRODUCTION = True
    with pytest.raises(NotAllowed):
        ensure_demo_api_clients()
    assert not Application.objects.exists()
