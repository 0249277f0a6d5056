"""Issue 17, item 14: a delivery link lands on the invoice's portal page, not a fallback.

(Every URL name the code reverses is checked in tests/config/test_url_names.py.)
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.delivery.models import InvoiceLink
from billing.models import Customer, Invoice
from security.models import User

pytestmark = pytest.mark.django_db


def test_an_invoice_link_opens_the_invoice_page_in_the_portal(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, alice: User
) -> None:
    invoice = make_open_invoice(alice_company)
    token = "link-token-for-alice-0123456789abcdef"
    now = timezone.now()
    InvoiceLink.objects.create(
        invoice=invoice,
        token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        expires_at=now + datetime.timedelta(days=1),
    )
    client = Client()
    client.force_login(alice)

    response = client.get(f"/l/{token}/")

    assert response.status_code == 302
    assert response["Location"] == reverse("portal:invoice", args=[invoice.pk])
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert invoice.display_number in page.content.decode()
