"""Single-use links: they open once, for the right customer, before they expire."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from audit import SYSTEM
from billing.delivery import services
from billing.delivery.models import InvoiceLink
from billing.documents.models import InvoiceDocument
from security.models import User
from tests.billing.delivery.conftest import Mailbox
from tests.factories import audit_events


@pytest.fixture
def link_path(alice_document: InvoiceDocument, smtp_server: Mailbox, gnupg_home: Path) -> str:
    delivery = services.queue_delivery(alice_document.invoice, by=SYSTEM)
    services.attempt_delivery(delivery.pk, by=SYSTEM)
    match = re.search(rb"/l/[A-Za-z0-9_-]+/", smtp_server.messages[-1][2])
    assert match
    return match.group(0).decode()


def _as(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_alice_opens_her_link_once_after_login(
    link_path: str, alice: User, alice_document: InvoiceDocument
) -> None:
    assert Client().get(link_path).status_code == 302  # to the login first
    assert InvoiceLink.objects.get().used_at is None

    response = _as(alice).get(link_path)

    assert response.status_code in (200, 302)
    assert InvoiceLink.objects.get().used_by == alice
    assert len(audit_events("invoice.link_opened", alice_document.invoice)) == 1


@pytest.mark.django_db
def test_a_used_link_is_refused(link_path: str, alice: User) -> None:
    _as(alice).get(link_path)

    response = _as(alice).get(link_path)

    assert response.status_code == 410
    assert "Länken har redan använts" in response.content.decode()  # Alice reads Swedish


@pytest.mark.django_db
def test_an_expired_link_is_refused_and_stays_unused(link_path: str, alice: User) -> None:
    later = timezone.now() + datetime.timedelta(days=15)
    with time_machine.travel(later, tick=False):
        response = _as(alice).get(link_path)

    assert response.status_code == 410
    assert "Länken har slutat gälla" in response.content.decode()
    assert InvoiceLink.objects.get().used_at is None


@pytest.mark.django_db
def test_bob_cannot_open_alices_link_nor_fetch_her_pdf_by_id(
    link_path: str, bob: User, alice_document: InvoiceDocument
) -> None:
    response = _as(bob).get(link_path)
    assert response.status_code == 404
    assert InvoiceLink.objects.get().used_at is None
    assert alice_document.invoice.display_number.encode() not in response.content
    pdf = _as(bob).get(f"/documents/invoices/{alice_document.invoice_id}/pdf/")
    assert pdf.status_code == 404


@pytest.mark.django_db
def test_a_made_up_token_is_refused(alice: User, link_path: str) -> None:
    assert _as(alice).get("/l/not-a-real-token/").status_code == 404


@pytest.mark.django_db
def test_staff_follow_the_mfa_rule_on_links(
    link_path: str, clerk: User, admin_client_for: Callable[[User], Any]
) -> None:
    assert _as(clerk).get(link_path).status_code == 302  # second factor first
    assert admin_client_for(clerk).get(link_path).status_code == 404  # not a customer
