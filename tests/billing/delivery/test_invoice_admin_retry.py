"""The invoice's admin page (billing/admin/invoice_background.py) shows a delivery that
failed for good, with the reason, and a "Retry now" only a billing clerk may use (a
confirmation page, then the audited service); every other role, a customer and an outsider
are refused and nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from billing.delivery import services
from billing.delivery.models import Delivery
from billing.documents.models import InvoiceDocument
from security.models import User
from security.roles import (
    ACCOUNTANT,
    AUDITOR,
    BILLING_CLERK,
    FRAUD_ANALYST,
    PAYMENTS_OPERATOR,
    SECURITY_OFFICER,
)
from tests.billing.delivery.conftest import Mailbox
from tests.factories import audit_events, make_user, with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def failed(
    alice_document: InvoiceDocument, smtp_server: Mailbox, gnupg_home: Path, settings: Any
) -> Delivery:
    """Alice's invoice delivery, refused by her mail server until it failed for good."""
    settings.DELIVERY_MAX_ATTEMPTS = 1
    smtp_server.refuse.add(alice_document.invoice.customer.email)
    delivery = services.queue_delivery(alice_document.invoice, by=SYSTEM)
    failed = services.attempt_delivery(delivery.pk, by=SYSTEM)
    assert failed.status == Delivery.Status.FAILED
    return failed


def _urls(delivery: Delivery) -> tuple[str, str]:
    invoice = delivery.invoice_id
    return (
        reverse("admin:billing_invoice_change", args=[invoice]),
        reverse("admin:billing_invoice_retry_delivery", args=[invoice, delivery.pk]),
    )


def test_a_billing_clerk_sees_why_a_delivery_failed_and_retries_it(
    failed: Delivery, clerk: User, admin_client_for: Callable[[User], Client]
) -> None:
    change, retry = _urls(failed)
    client = admin_client_for(with_role(clerk, BILLING_CLERK))

    page = client.get(change).content.decode()
    assert 'id="background-work"' in page and "version 1, signed" in page
    assert "Failed after 1 attempt: recipient refused: 550" in page
    assert f'id="retry-delivery-{failed.pk}"' in page
    confirm = client.get(retry)
    assert confirm.status_code == 200 and "recipient refused" in confirm.content.decode()

    done = client.post(retry)

    assert done.status_code == 302 and done["Location"] == change
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.QUEUED
    [event] = audit_events("invoice.delivery_retried", failed.invoice)
    assert event.details["previous_status"] == "failed" and "550" in event.details["last_error"]
    assert f'id="retry-delivery-{failed.pk}"' not in client.get(change).content.decode()


@pytest.mark.parametrize(
    "role", [ACCOUNTANT, PAYMENTS_OPERATOR, FRAUD_ANALYST, AUDITOR, SECURITY_OFFICER]
)
def test_other_roles_see_the_failure_but_may_not_retry(
    role: str, failed: Delivery, admin_client_for: Callable[[User], Client]
) -> None:
    change, retry = _urls(failed)
    client = admin_client_for(with_role(make_user("staffer", is_staff=True), role))

    page = client.get(change)
    if page.status_code == 200:  # the roles that read invoices see why, without the button
        assert "recipient refused: 550" in page.content.decode()
        assert "retry-delivery" not in page.content.decode()
    assert client.get(retry).status_code in (403, 404)
    assert client.post(retry).status_code in (403, 404)
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.FAILED
    assert not audit_events("invoice.delivery_retried")


def test_customers_and_outsiders_never_reach_the_retry(
    failed: Delivery, alice: User, outsider: User
) -> None:
    _, retry = _urls(failed)
    for person in (alice, outsider):
        client = Client()
        client.force_login(person)
        response = client.post(retry)
        assert response.status_code == 302 and "/login" in response["Location"]
    assert Client().post(retry).status_code == 302
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.FAILED
    assert not audit_events("invoice.delivery_retried")


def test_a_delivery_is_retried_only_through_its_own_invoice(
    failed: Delivery,
    make_open_invoice: Callable[..., Any],
    bob_company: Any,
    clerk: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    other = make_open_invoice(bob_company)
    wrong = reverse("admin:billing_invoice_retry_delivery", args=[other.pk, failed.pk])

    client = admin_client_for(with_role(clerk, BILLING_CLERK))

    assert client.post(wrong).status_code == 404
    assert Delivery.objects.get(pk=failed.pk).status == Delivery.Status.FAILED
