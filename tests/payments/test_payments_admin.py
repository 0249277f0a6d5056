"""The payments admin: refunds with permission and step-up, bank file upload, the review list."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from payments import services
from payments.exceptions import InvalidPayment
from payments.gateways.models import SandboxCharge
from payments.models import BankLine, Payment, PaymentMethod, Refund
from payments.reconciliation.camt054 import sample_camt054
from payments.reconciliation.review import dismiss_bank_line
from security.models import User
from tests.factories import audit_events, make_user
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db


def _operator(*codenames: str) -> User:
    user = make_user("operator", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label="payments", codename=codename)
        )
    return user


@pytest.fixture
def paid(
    thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod], alice: User
) -> Payment:
    return services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(1000),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("paid"),
        by=alice,
    )


def test_an_operator_refunds_part_of_a_payment_with_a_fresh_second_factor(
    paid: Payment, admin_client_for: Callable[[User], Client]
) -> None:
    operator = _operator("view_payment", "refund_payment")
    client = admin_client_for(operator)

    response = client.post(
        reverse("admin:payments_payment_refund", args=[paid.pk]),
        {"amount": "400.00", "reason": "goodwill: late delivery", "purpose": "reopen"},
    )

    assert response.status_code == 302
    paid.refresh_from_db()
    assert (paid.status, paid.refunded_amount) == ("partially_refunded", 40_000)
    invoice = paid.invoice
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (Invoice.Status.OPEN, 40_000)
    assert SandboxCharge.objects.get().refunded_amount == 40_000
    event = audit_events("payment.refunded", paid)[0]
    assert (event.actor_id, event.details["amount"]) == (str(operator.pk), 40_000)
    assert (
        audit_events("payment.refund_requested", paid)[0].details["reason"].startswith("goodwill")
    )


def test_a_refund_above_what_is_left_is_refused(
    paid: Payment, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(_operator("view_payment", "refund_payment"))
    url = reverse("admin:payments_payment_refund", args=[paid.pk])
    client.post(url, {"amount": "600.00", "reason": "part one", "purpose": "reopen"})

    response = client.post(url, {"amount": "500.00", "reason": "too much", "purpose": "reopen"})

    assert response.status_code == 200
    assert "more than is left to refund" in response.content.decode()
    assert Refund.objects.filter(status="succeeded").count() == 1


def test_a_refund_needs_the_permission(
    paid: Payment, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(_operator("view_payment"))
    response = client.post(
        reverse("admin:payments_payment_refund", args=[paid.pk]),
        {"amount": "1", "reason": "x", "purpose": "reopen"},
    )
    assert response.status_code == 403
    assert not Refund.objects.exists()


def test_a_refund_with_a_stale_second_factor_asks_for_step_up(
    paid: Payment, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(_operator("view_payment", "refund_payment"))
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=10)):
        response = client.post(
            reverse("admin:payments_payment_refund", args=[paid.pk]),
            {"amount": "100.00", "reason": "x", "purpose": "reopen"},
        )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security:step_up"))
    assert not Refund.objects.exists()


def test_the_service_refuses_a_refund_without_step_up(paid: Payment) -> None:
    from payments.exceptions import RefundRefused

    operator = _operator("refund_payment")
    with pytest.raises(RefundRefused) as caught:
        services.refund_payment(
            paid, amount=sek(1), reason="x", purpose="reopen", by=operator, request=None
        )
    assert caught.value.field == "step_up"


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "confirm your second factor again (step-up) to refund"),
        ("sv", "bekräfta din andra faktor igen (stegvis verifiering) för att återbetala"),
    ],
)
def test_staff_refusals_speak_the_staff_members_language(
    paid: Payment, language: str, expected: str
) -> None:
    from django.utils import translation

    from payments.exceptions import RefundRefused

    operator = _operator("refund_payment")
    with translation.override(language), pytest.raises(RefundRefused) as caught:
        services.refund_payment(
            paid, amount=sek(1), reason="x", purpose="reopen", by=operator, request=None
        )
    assert caught.value.message == expected
    with translation.override("sv"), pytest.raises(InvalidPayment) as refused:
        dismiss_bank_line(BankLine(pk=1), reason=" ", by=operator)
    assert (refused.value.field, refused.value.message) == (
        "reason",
        "ange skälet till att raden avfärdas",
    )


def test_a_bank_file_is_uploaded_and_its_review_line_resolved(
    thousand_sek_invoice: Invoice, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(
        _operator("add_bankfile", "view_bankfile", "view_bankline", "change_bankline")
    )
    content = sample_camt054(
        [{"amount": "300.00", "reference": thousand_sek_invoice.ocr_reference}]
    )

    uploaded = client.post(
        reverse("admin:payments_bankfile_upload"),
        {"file": SimpleUploadedFile("camt.xml", content, content_type="application/xml")},
    )
    line = BankLine.objects.get()
    review_list = client.get(reverse("admin:payments_bankline_changelist"), {"status": "review"})
    resolved = client.post(
        reverse("admin:payments_bankline_resolve", args=[line.pk]),
        {"invoice_number": thousand_sek_invoice.display_number},
    )

    assert uploaded.status_code == 302
    assert line.reason == "amount_mismatch"
    assert "Resolve" in review_list.content.decode()
    assert resolved.status_code == 302
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.amount_due == 70_000


def test_a_malformed_upload_is_refused_by_name(
    admin_client_for: Callable[[User], Client],
) -> None:
    client = admin_client_for(_operator("add_bankfile", "view_bankfile"))
    response = client.post(
        reverse("admin:payments_bankfile_upload"),
        {"file": SimpleUploadedFile("x.xml", b"<Document>", content_type="application/xml")},
    )
    assert response.status_code == 200
    assert "Refused, nothing recorded" in response.content.decode()
