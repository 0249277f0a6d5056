"""Admin: brand, last 4, expiry, fingerprint prefix, never a number; key status is gated."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Customer
from payments.models import CardSecret, DataKey, PaymentMethod
from payments.vault import services as key_services
from payments.vault.services import tokenize
from security.models import User
from tests.payments.conftest import AMEX, MASTERCARD, VISA, card

pytestmark = pytest.mark.django_db

AdminLogin = Callable[[User], Client]


def test_payment_method_pages_never_show_a_full_number_or_the_token(
    alice_company: Customer,
    alice: User,
    root: User,
    admin_client_for: AdminLogin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    methods = [
        tokenize(card(VISA), customer=alice_company, by=alice),
        tokenize(card(MASTERCARD), customer=alice_company, by=alice),
        tokenize(card(AMEX, cvc="1234"), customer=alice_company, by=alice),
    ]
    client = admin_client_for(root)
    pages = [client.get(reverse("admin:payments_paymentmethod_changelist"))]
    pages += [
        client.get(reverse("admin:payments_paymentmethod_change", args=[m.pk])) for m in methods
    ]
    pages.append(client.get(reverse("admin:payments_paymentmethod_changelist") + "?q=1111"))

    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        for number in (VISA, MASTERCARD, AMEX):
            assert number not in html
            assert number[:6] + number[-4:] not in html
        for method in methods:
            assert method.token not in html
            assert method.fingerprint not in html
    listing = pages[0].content.decode()
    assert "4444" in listing and "0005" in listing and methods[0].fingerprint[:12] in listing
    for number in (VISA, MASTERCARD, AMEX):
        assert number not in caplog.text


def test_the_admin_cannot_add_change_or_delete_payment_methods(
    alice_card: PaymentMethod, root: User, admin_client_for: AdminLogin
) -> None:
    client = admin_client_for(root)
    assert client.get(reverse("admin:payments_paymentmethod_add")).status_code == 403
    delete_url = reverse("admin:payments_paymentmethod_delete", args=[alice_card.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert PaymentMethod.objects.filter(pk=alice_card.pk, status="active").exists()
    assert CardSecret.objects.filter(token=alice_card.token).exists()


def test_the_key_status_page_shows_keys_and_record_counts_to_a_security_officer(
    alice_company: Customer, alice: User, officer: User, admin_client_for: AdminLogin
) -> None:
    tokenize(card(VISA), customer=alice_company, by=alice)
    tokenize(card(MASTERCARD), customer=alice_company, by=alice)
    old = DataKey.objects.get()
    new = key_services.rotate_data_key(by=alice)
    tokenize(card(AMEX, cvc="1234"), customer=alice_company, by=alice)

    page = admin_client_for(officer).get(reverse("admin:payments_datakey_changelist"))

    assert page.status_code == 200
    html = page.content.decode()
    assert new.hex_id in html and old.hex_id in html
    assert '<td id="kek-current">1</td>' in html
    decrypt_only = html[html.index('id="decrypt-only"') :]
    assert f"<td>{old.hex_id}</td>" in decrypt_only and "<td>2</td>" in decrypt_only
    assert bytes(new.wrapped_key or b"").hex() not in html


def test_the_key_status_page_is_refused_without_its_permission(
    clerk: User, admin_client_for: AdminLogin
) -> None:
    clerk.is_staff = True
    clerk.save()
    response = admin_client_for(clerk).get(reverse("admin:payments_datakey_changelist"))
    assert response.status_code == 403
