"""Issue 17, item 13: pages with invoice, payment or account data are never cached.

A shared computer's browser (or a proxy) must not keep a signed-in page: every answer
to a signed-in request says ``Cache-Control: no-store``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Customer, Invoice
from security.models import User

pytestmark = pytest.mark.django_db


def _no_store(response: Any) -> bool:
    return "no-store" in response.get("Cache-Control", "")


def test_every_portal_page_of_a_signed_in_customer_says_no_store(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, alice: User
) -> None:
    invoice = make_open_invoice(alice_company)
    client = Client()
    client.force_login(alice)
    pages = [
        reverse("portal:invoices"),
        reverse("portal:invoice", args=[invoice.pk]),
        reverse("portal:account"),
        reverse("portal_pay:pay", args=[invoice.pk]),
        reverse("portal_pay:cards"),
        reverse("portal_pay:security"),
        reverse("security:account"),
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert _no_store(response), f"{url}: {response.get('Cache-Control')!r}"
        assert "private" in response["Cache-Control"], url


def test_admin_pages_and_refusals_of_a_signed_in_user_say_no_store(
    clerk: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(clerk)
    for url in ("/admin/", "/admin/billing/invoice/", "/portal/"):
        response = client.get(url)
        assert _no_store(response), f"{url} ({response.status_code})"
