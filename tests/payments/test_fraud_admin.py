"""The fraud analyst in the admin: approve or decline a held payment (step-up), thresholds."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from payments import services
from payments.fraud import update_risk_settings
from payments.fraud.selectors import get_risk_settings
from payments.fraud.services import ensure_risk_settings
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import audit_events, make_user
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(
    analyst: User,
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
) -> Payment:
    """1,000 SEK on a new card, above a 500 SEK review limit: waiting for an analyst."""
    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 50_000, "EUR": 5_000, "USD": 5_000},
        by=analyst,
    )
    payment = services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(1000),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("held"),
        by=alice,
    )
    assert payment.awaiting_risk_review
    return payment


def review_url(payment: Payment) -> str:
    return reverse("admin:payments_payment_risk_review", args=[payment.pk])


def test_the_review_queue_lists_held_payments_with_a_decision_button(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    queue = client.get(reverse("admin:payments_payment_changelist") + "?risk_review=waiting")
    page = client.get(reverse("admin:payments_payment_change", args=[held.pk])).content.decode()

    assert f"/admin/payments/payment/{held.pk}/change/" in queue.content.decode()
    assert review_url(held) in page
    assert "on a new card is above the review limit of 500.00 SEK" in page


def test_an_analyst_approves_and_the_card_is_charged_and_the_invoice_paid(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(analyst).post(
        review_url(held), {"decision": "approve", "reason": "called the customer: genuine"}
    )

    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.risk_reviewed_by, held.risk_review_note) == (
        "succeeded",
        analyst,
        "called the customer: genuine",
    )
    invoice = held.invoice
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_paid) == (Invoice.Status.PAID, 100_000)
    assert SandboxCharge.objects.get().amount == 100_000
    event = audit_events("payment.risk_approved", held)[0]
    assert (event.actor_id, event.details["reason"]) == (
        str(analyst.pk),
        "called the customer: genuine",
    )
    assert audit_events("payment.succeeded", held)


def test_an_analyst_declines_and_the_held_amount_is_released(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(analyst).post(
        review_url(held), {"decision": "decline", "reason": "card reported stolen"}
    )

    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.failure_code) == ("failed", "risk_declined")
    assert services.held_amount(held.invoice) == 0
    invoice = held.invoice
    invoice.refresh_from_db()
    assert (invoice.status, invoice.amount_due) == (Invoice.Status.OPEN, 100_000)
    assert not SandboxCharge.objects.exists()
    assert audit_events("payment.risk_declined", held)[0].details["reason"] == (
        "card reported stolen"
    )
    assert audit_events("payment.failed", held)[0].details["code"] == "risk_declined"


def test_a_decision_needs_a_reason(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(analyst).post(review_url(held), {"decision": "approve"})
    assert response.status_code == 200
    held.refresh_from_db()
    assert held.awaiting_risk_review


def test_a_payment_is_decided_once(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    client.post(review_url(held), {"decision": "decline", "reason": "stolen"})

    response = client.post(review_url(held), {"decision": "approve", "reason": "changed my mind"})

    assert response.status_code == 200
    assert "not waiting for a risk review" in response.content.decode()
    held.refresh_from_db()
    assert held.status == "failed"
    assert not SandboxCharge.objects.exists()


def test_an_operator_without_the_permission_posting_a_decision_is_refused_and_audited(
    held: Payment, admin_client_for: Callable[[User], Client]
) -> None:
    operator = make_user("oscar", is_staff=True)
    operator.groups.add(Group.objects.get(name="Payments operator"))
    client = admin_client_for(operator)

    response = client.post(review_url(held), {"decision": "approve", "reason": "let it through"})

    assert response.status_code == 403
    held.refresh_from_db()
    assert held.awaiting_risk_review
    assert not SandboxCharge.objects.exists()
    event = audit_events("payment.risk_review_refused", held)[0]
    assert (event.actor_id, event.details["rule"]) == (str(operator.pk), "permission")


def test_the_customer_cannot_approve_her_own_held_payment(held: Payment, alice: User) -> None:
    client = Client()
    client.force_login(alice)

    response = client.post(review_url(held), {"decision": "approve", "reason": "it is me"})

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
    held.refresh_from_db()
    assert held.awaiting_risk_review


def test_a_decision_with_a_stale_second_factor_asks_for_step_up(
    held: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    with time_machine.travel(timezone.now() + datetime.timedelta(minutes=10)):
        response = client.post(review_url(held), {"decision": "approve", "reason": "fine"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("security:step_up"))
    held.refresh_from_db()
    assert held.awaiting_risk_review


# --- thresholds in the admin -------------------------------------------------------


def settings_url() -> str:
    return reverse("admin:payments_risksettings_change", args=[ensure_risk_settings().pk])


def test_an_analyst_edits_the_thresholds_and_the_change_is_audited(
    analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    response = admin_client_for(analyst).post(
        settings_url(),
        {"max_failed_attempts": "3", "new_card_limits": "SEK 2500.00\neur 300,50"},
    )

    assert response.status_code == 302
    row = get_risk_settings()
    assert (row.max_failed_attempts, row.new_card_limits) == (3, {"SEK": 250_000, "EUR": 30_050})
    event = audit_events("fraud.risk_settings_changed")[0]
    assert event.actor_id == str(analyst.pk)
    assert event.details["changes"]["max_failed_attempts"] == {"before": 5, "after": 3}


@pytest.mark.parametrize(
    ("posted", "field", "message"),
    [
        ({"max_failed_attempts": "0"}, "max_failed_attempts", "a whole number from 1 to 1000"),
        ({"max_failed_attempts": "lots"}, "max_failed_attempts", "Enter a whole number"),
        ({"new_card_limits": "SEK"}, "new_card_limits", "line 1: write a currency and an amount"),
        ({"new_card_limits": "SEK 10\nSEK 20"}, "new_card_limits", "line 2: SEK is given twice"),
        ({"new_card_limits": "SEK ten"}, "new_card_limits", "line 1: &#x27;ten&#x27; is not an"),
        ({"new_card_limits": "SEK 0"}, "new_card_limits", "the limit for SEK must be more"),
        ({"new_card_limits": "KRONOR 5"}, "new_card_limits", "line 1: &#x27;5&#x27; is not an"),
    ],
)
def test_bad_thresholds_are_refused_on_their_field_and_change_nothing(
    analyst: User,
    admin_client_for: Callable[[User], Client],
    posted: dict[str, str],
    field: str,
    message: str,
) -> None:
    values = {"max_failed_attempts": "5", "new_card_limits": "SEK 10000.00", **posted}

    response = admin_client_for(analyst).post(settings_url(), values)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field]
    assert message in response.content.decode()
    assert get_risk_settings().max_failed_attempts == 5
    assert not audit_events("fraud.risk_settings_changed")


def test_an_operator_cannot_change_the_thresholds(
    admin_client_for: Callable[[User], Client],
) -> None:
    operator = make_user("oscar", is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="view_payment"))
    response = admin_client_for(operator).post(
        settings_url(), {"max_failed_attempts": "1000", "new_card_limits": ""}
    )
    assert response.status_code == 403
    assert get_risk_settings().max_failed_attempts == 5


def test_a_new_card_the_payer_did_not_keep_is_erased_once_the_review_is_decided(
    analyst: User,
    thousand_sek_invoice: Invoice,
    alice: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    from payments.vault import services as key_services
    from tests.payments.test_card_entry import sealed

    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 50_000, "EUR": 5_000, "USD": 5_000},
        by=analyst,
    )
    card = sealed(
        key_services.current_entry_key(),
        {"number": APPROVED, "expiry": "12/39", "cvc": "123"},
        alice,
    )
    payment = services.pay_invoice_with_new_card(
        thousand_sek_invoice,
        amount=sek(1000),
        card=card,
        keep_card=False,
        idempotency_key=key("new-card"),
        by=alice,
    )
    assert payment.awaiting_risk_review
    assert PaymentMethod.objects.get().status == PaymentMethod.Status.ACTIVE  # needed to charge

    admin_client_for(analyst).post(review_url(payment), {"decision": "approve", "reason": "ok"})

    payment.refresh_from_db()
    assert payment.status == "succeeded"
    assert PaymentMethod.objects.get().status == PaymentMethod.Status.DELETED
