"""Score thresholds in the admin: the estimated effect on the last 30 days is shown before
a change is saved; a value outside 0-99 is a form error; nothing saved meanwhile."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Invoice
from payments import services
from payments.fraud.labels import record_label
from payments.fraud.models import RiskEvaluation
from payments.fraud.selectors import get_risk_settings
from payments.fraud.services import ensure_risk_settings
from payments.models import PaymentMethod
from security.models import User
from tests.factories import audit_events
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db

FORM = {"max_failed_attempts": "5", "new_card_limits": "SEK 10000.00\nEUR 1000.00\nUSD 1000.00"}


def url() -> str:
    return reverse("admin:payments_risksettings_change", args=[ensure_risk_settings().pk])


@pytest.fixture
def scored(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    analyst: User,
) -> None:
    """Two payments of the last 30 days, scored 40 (good) and 70 (fraud) as a model did."""
    card = saved_card(APPROVED)
    for n, (score, label) in enumerate([(40, "good"), (70, "fraud")]):
        payment = services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(100),
            payment_method=card,
            idempotency_key=key(f"t{n}"),
            by=alice,
        )
        RiskEvaluation.objects.filter(payment=payment).update(score=score)
        record_label(payment, label=label, source="review", by=analyst)


def test_a_threshold_change_shows_its_effect_first_and_saves_on_the_second_submit(
    scored: None, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    wanted = {**FORM, "review_score": "30", "block_score": "60"}

    shown = client.post(url(), wanted)

    page = shown.content.decode()
    assert shown.status_code == 200
    assert "Estimated effect on the last 30 days (2 payments): blocked 1 (1 fraud, 0 good" in page
    assert "held for review 1 (0 fraud, 1 good; now 0)" in page
    assert (get_risk_settings().review_score, get_risk_settings().block_score) == (65, 75)
    assert audit_events("fraud.risk_settings_changed") == []

    saved = client.post(url(), {**wanted, "confirm_effect": "30:60"})

    assert saved.status_code == 302
    assert (get_risk_settings().review_score, get_risk_settings().block_score) == (30, 60)


def test_a_confirmation_of_other_values_shows_the_effect_again(
    scored: None, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)

    response = client.post(
        url(), {**FORM, "review_score": "30", "block_score": "50", "confirm_effect": "30:60"}
    )

    assert response.status_code == 200
    assert get_risk_settings().block_score == 75


@pytest.mark.parametrize(("review", "block"), [("100", "75"), ("65", "-1"), ("80", "70")])
def test_thresholds_outside_0_to_99_or_crossed_are_refused(
    analyst: User, admin_client_for: Callable[[User], Client], review: str, block: str
) -> None:
    response = admin_client_for(analyst).post(
        url(), {**FORM, "review_score": review, "block_score": block, "confirm_effect": "x"}
    )

    assert response.status_code == 200
    assert "Estimated effect" not in response.content.decode()
    assert (get_risk_settings().review_score, get_risk_settings().block_score) == (65, 75)
