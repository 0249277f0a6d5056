"""Server-side request forgery: in production mode an endpoint must be HTTPS on a public
address, checked at registration and again before every POST."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest

from billing.models import Customer, Invoice
from billing.webhooks import services, transport
from billing.webhooks.exceptions import InvalidEndpointUrl
from billing.webhooks.models import WebhookDelivery, WebhookEndpoint
from security.models import User
from tests.billing.webhooks.conftest import Receiver, stepped_up
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def production(settings: Any) -> None:
    settings.WEBHOOKS_ALLOW_HTTP = False
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False


def _resolving(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """DNS is outside the machine: answer for these names, as a resolver would."""
    real = socket.getaddrinfo

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in names:
            family = {True: socket.AF_INET6, False: socket.AF_INET}
            return [(family[":" in a], socket.SOCK_STREAM, 6, "", (a, port)) for a in names[host]]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/tillit",  # not HTTPS
        "ftp://hooks.example.com/",
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://172.16.0.1/hooks",
        "https://192.168.1.10/hooks",
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://[::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://[fd00::1]/hooks",
        "https://0.0.0.0/hooks",
        "https://224.0.0.1/hooks",
        "https://internal.example.com/hooks",  # a public name for a private address
        "https://mixed.example.com/hooks",  # one public, one private address
        "https://admin:pw@hooks.example.com/",
        "https:///no-host",
        "https://hooks.example.com:99999/",
        " https://hooks.example.com/",
    ],
)
def test_production_refuses_urls_that_reach_inside(
    url: str, production: None, officer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _resolving(
        monkeypatch,
        {
            "hooks.example.com": ["93.184.215.14"],
            "internal.example.com": ["10.0.0.7"],
            "mixed.example.com": ["93.184.215.14", "127.0.0.1"],
        },
    )
    with pytest.raises(InvalidEndpointUrl) as refused:
        services.create_webhook_endpoint(
            url=url, events=["invoice.paid"], by=officer, request=stepped_up(officer)
        )

    assert refused.value.field == "url"
    assert not WebhookEndpoint.objects.exists()
    assert audit_events("webhooks.endpoint_created") == []


def test_production_accepts_https_on_a_public_address(
    production: None, officer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    _resolving(monkeypatch, {"hooks.example.com": ["93.184.215.14", "2606:2800:21f:cb07::1"]})

    endpoint, secret = services.create_webhook_endpoint(
        url="https://hooks.example.com/tillit?source=erp",
        events=["invoice.paid"],
        by=officer,
        request=stepped_up(officer),
    )

    assert endpoint.url == "https://hooks.example.com/tillit?source=erp"
    assert secret.startswith("whsec_")
    target = transport.check_url(endpoint.url)
    assert (target.host, target.port, target.path) == (
        "hooks.example.com",
        443,
        "/tillit?source=erp",
    )
    assert target.address in {"93.184.215.14", "2606:2800:21f:cb07::1"}


def test_a_name_that_turns_private_after_registration_gets_no_post(
    receiver: Receiver,
    register: Callable[..., Any],
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    settings: Any,
) -> None:
    """Registered while allowed (or resolving elsewhere then); checked again before the POST."""
    _endpoint, _ = register(receiver.url)
    make_open_invoice(alice_company)
    settings.WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = False

    delivery = services.attempt_webhook_delivery(WebhookDelivery.objects.get().pk)

    assert receiver.requests == []
    assert delivery.status == "pending"  # retried: an operator may fix the URL
    assert "internal address" in delivery.last_error


def test_the_post_connects_to_the_address_that_was_checked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second lookup between the check and the connection (DNS rebinding): a name that
    answers a harmless address once and another afterwards still reaches the first."""
    port = receiver.url.split(":")[2].split("/")[0]
    answers = iter([["127.0.0.1"], ["10.9.9.9"], ["10.9.9.9"]])
    real = socket.getaddrinfo

    def rebinding(host: str, p: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, p)) for a in next(answers)]
        return real(host, p, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)

    answer = transport.post(f"http://rebind.example.com:{port}/hooks/", b"{}", {})

    assert answer.status == 200
    assert receiver.requests[-1].headers["Host"] == f"rebind.example.com:{port}"
