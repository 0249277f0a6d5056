"""A document whose Factur-X XML breaks an EN 16931 rule is neither signed nor sent: the
failed rules are kept and shown to staff on the invoice, and the signing job, run again
once the cause is fixed, signs and delivers it.

The fault is one the finalization checks cannot catch: a defect in the XML builder (a
VAT category's exemption reason missing from its table, EN 16931 BR-IC-10), put in by
patching that table and "fixed" by undoing the patch, as a deployment of the fix would.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from billing.delivery import tasks
from billing.delivery.models import Delivery
from billing.documents import facturx_xml
from billing.documents.exceptions import InvalidFacturX
from billing.documents.models import DocumentCheckFailure, InvoiceDocument
from billing.models import Customer, Invoice
from security.models import User
from security.roles import BILLING_CLERK, PAYMENTS_OPERATOR
from tests.factories import audit_events, line, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:billing_invoice_changelist")


@pytest.fixture
def intra_eu_invoice(make_open_invoice: Callable[..., Invoice], bob_company: Customer) -> Invoice:
    """Bob's intra-EU invoice (category K): its XML needs an exemption reason (BR-IC-10)."""
    return make_open_invoice(bob_company, [line("Machine", "2", "500.00", "K", "0")])


@pytest.fixture
def builder_defect(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The XML builder loses category K's exemption reason; ``.undo()`` is the fix."""
    monkeypatch.delitem(facturx_xml._EXEMPTION_REASONS, "K")
    return monkeypatch


def _staff(username: str, role: str, admin_client_for: Callable[[User], Client]) -> Client:
    user = make_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return admin_client_for(User.objects.get(pk=user.pk))


def test_a_document_that_breaks_a_rule_is_not_signed_or_sent_and_its_rules_are_kept(
    intra_eu_invoice: Invoice, builder_defect: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidFacturX) as refused:
        tasks.issue_invoice_document(intra_eu_invoice.pk)

    assert [failure.rule for failure in refused.value.failures] == ["BR-IC-10"]
    assert not InvoiceDocument.objects.exists()
    assert not Delivery.objects.exists()
    failure = DocumentCheckFailure.objects.get(invoice=intra_eu_invoice)
    assert failure.rule_ids == ["BR-IC-10"]
    assert "exemption reason" in failure.rules[0]["text"]
    assert failure.resolved_at is None and failure.attempts == 1
    [event] = audit_events("invoice.document_check_failed", intra_eu_invoice)
    assert event.details["rules"] == ["BR-IC-10"] and event.details["attempt"] == 1


def test_the_job_run_again_after_the_fix_signs_and_delivers_and_closes_the_failure(
    intra_eu_invoice: Invoice, builder_defect: pytest.MonkeyPatch
) -> None:
    for _ in range(2):  # the cluster retries the failed job: one record, two attempts
        with pytest.raises(InvalidFacturX):
            tasks.issue_invoice_document(intra_eu_invoice.pk)
    assert DocumentCheckFailure.objects.get().attempts == 2

    builder_defect.undo()
    tasks.issue_invoice_document(intra_eu_invoice.pk)

    document = InvoiceDocument.objects.get(invoice=intra_eu_invoice)
    assert DocumentCheckFailure.objects.get().resolved_at is not None
    [signed] = audit_events("invoice.document_signed", intra_eu_invoice)
    assert signed.details["failed_checks_before"] == 2
    assert signed.details["sha256"] == document.sha256
    assert Delivery.objects.filter(invoice=intra_eu_invoice, kind="invoice").count() == 1
    assert len(audit_events("invoice.document_check_failed", intra_eu_invoice)) == 2


def test_staff_see_the_failed_rules_on_the_invoice_and_sign_it_again_once_fixed(
    intra_eu_invoice: Invoice,
    builder_defect: pytest.MonkeyPatch,
    admin_client_for: Callable[[User], Client],
) -> None:
    with pytest.raises(InvalidFacturX):
        tasks.issue_invoice_document(intra_eu_invoice.pk)
    clerk = _staff("clara", BILLING_CLERK, admin_client_for)
    page = reverse("admin:billing_invoice_change", args=[intra_eu_invoice.pk])

    shown = clerk.get(page).content.decode()
    assert "Not signed and not sent" in shown and "BR-IC-10" in shown
    action = {"action": "check_and_sign_document", "_selected_action": [intra_eu_invoice.pk]}
    still = clerk.post(CHANGELIST, action, follow=True).content.decode()
    assert "still not signed; its XML breaks BR-IC-10" in still
    assert DocumentCheckFailure.objects.get().attempts == 2

    builder_defect.undo()
    done = clerk.post(CHANGELIST, action, follow=True).content.decode()

    assert "signed (version 1) and queued for delivery" in done
    assert "Signed: version 1" in clerk.get(page).content.decode()
    assert InvoiceDocument.objects.filter(invoice=intra_eu_invoice).count() == 1
    [signed] = audit_events("invoice.document_signed", intra_eu_invoice)
    assert signed.actor_id == str(User.objects.get(username="clara").pk)
    assert signed.details["failed_checks_before"] == 2


def test_only_those_who_change_invoices_may_sign_again_and_customers_never_see_the_rules(
    intra_eu_invoice: Invoice,
    builder_defect: pytest.MonkeyPatch,
    admin_client_for: Callable[[User], Client],
    bob: User,
) -> None:
    with pytest.raises(InvalidFacturX):
        tasks.issue_invoice_document(intra_eu_invoice.pk)
    builder_defect.undo()
    operator = _staff("olle", PAYMENTS_OPERATOR, admin_client_for)
    action = {"action": "check_and_sign_document", "_selected_action": [intra_eu_invoice.pk]}

    # The payments operator reads invoices (and so the failure) but changes none of them.
    page = reverse("admin:billing_invoice_change", args=[intra_eu_invoice.pk])
    assert "BR-IC-10" in operator.get(page).content.decode()
    operator.post(CHANGELIST, action, follow=True)
    customer = Client()
    customer.force_login(bob)
    portal = customer.get(reverse("portal:invoice", args=[intra_eu_invoice.pk]))

    assert not InvoiceDocument.objects.exists()
    assert DocumentCheckFailure.objects.get().attempts == 1
    assert portal.status_code == 200
    assert "BR-IC-10" not in portal.content.decode()
