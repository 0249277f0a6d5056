"""The risk decision point: blocks after too many failures, review of big amounts on new cards."""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Customer, Invoice
from billing.money import Money
from payments import services
from payments.exceptions import InvalidRiskSettings, RiskReviewRefused
from payments.fraud import assess_card_payment, update_risk_settings
from payments.fraud.models import default_new_card_limits
from payments.fraud.selectors import get_risk_settings
from payments.gateways.models import SandboxCharge
from payments.models import Payment, PaymentMethod
from payments.services import decide_risk_review
from payments.vault.cards import Card
from payments.vault.services import tokenize
from security.models import User
from tests.factories import audit_events, line
from tests.payments.fixtures import APPROVED, DECLINED, INSUFFICIENT, key, sek

pytestmark = pytest.mark.django_db

Cards = Callable[[str], PaymentMethod]


def pay(invoice: Invoice, card: PaymentMethod, by: User, n: object, amount: int = 1000) -> Payment:
    return services.pay_invoice(
        invoice, amount=sek(amount), payment_method=card, idempotency_key=key(n), by=by
    )


def fail_times(count: int, invoice: Invoice, card: PaymentMethod, by: User, tag: str) -> None:
    for n in range(count):
        assert pay(invoice, card, by, f"{tag}{n}").failure_code in {
            "card_declined",
            "insufficient_funds",
        }


# --- block -------------------------------------------------------------------------


def test_the_sixth_failure_of_a_card_in_an_hour_blocks_the_next_attempt(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    declined = saved_card(DECLINED)
    fail_times(5, thousand_sek_invoice, declined, alice, "d")

    sixth = pay(thousand_sek_invoice, declined, alice, "sixth")
    assert (sixth.risk_decision, sixth.failure_code) == ("allow", "card_declined")

    charges = SandboxCharge.objects.count()
    # Another token of the same card number (same keyed fingerprint) is blocked too.
    blocked = pay(thousand_sek_invoice, saved_card(DECLINED), alice, "seventh")

    assert (blocked.status, blocked.risk_decision, blocked.failure_code) == (
        "failed",
        "block",
        "risk_blocked",
    )
    assert [r["rule"] for r in blocked.risk_reasons] == ["card_failures", "customer_failures"]
    assert SandboxCharge.objects.count() == charges  # never sent to the acquirer
    event = audit_events("payment.blocked", blocked)[0]
    assert (event.details["risk"], event.details["rules"]) == (
        "block",
        ["card_failures", "customer_failures"],
    )
    assert not audit_events("payment.started", blocked)
    assert services.held_amount(thousand_sek_invoice) == 0


def test_a_card_failing_for_another_customer_is_blocked_by_its_fingerprint(
    thousand_sek_invoice: Invoice,
    make_open_invoice: Callable[..., Invoice],
    bob_company: Customer,
    bob: User,
    alice_company: Customer,
    alice: User,
) -> None:
    bob_invoice = make_open_invoice(bob_company, [line("Consulting", "1", "100.00")])
    bobs_token = tokenize(
        Card.from_input(number=DECLINED, expiry="12/39", cvc="123"), customer=bob_company, by=bob
    )
    for n in range(6):
        services.pay_invoice(
            bob_invoice,
            amount=bob_invoice.due,
            payment_method=bobs_token,
            idempotency_key=key(f"bob{n}"),
            by=bob,
        )
    alices_token = tokenize(
        Card.from_input(number=DECLINED, expiry="12/39", cvc="123"),
        customer=alice_company,
        by=alice,
    )

    blocked = pay(thousand_sek_invoice, alices_token, alice, "alice")

    assert blocked.risk_decision == "block"
    assert [r["rule"] for r in blocked.risk_reasons] == ["card_failures"]  # Alice had none


def test_the_sixth_failure_of_a_customer_in_an_hour_blocks_even_a_good_card(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    fail_times(3, thousand_sek_invoice, saved_card(DECLINED), alice, "d")
    fail_times(3, thousand_sek_invoice, saved_card(INSUFFICIENT), alice, "i")

    blocked = pay(thousand_sek_invoice, saved_card(APPROVED), alice, "good")

    assert (blocked.status, blocked.failure_code) == ("failed", "risk_blocked")
    assert [r["rule"] for r in blocked.risk_reasons] == ["customer_failures"]
    assert blocked.risk_reasons[0]["failures"] == 6
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.status == Invoice.Status.OPEN


def test_failures_older_than_an_hour_do_not_count(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    declined = saved_card(DECLINED)
    with time_machine.travel(timezone.now() - datetime.timedelta(minutes=61)):
        fail_times(1, thousand_sek_invoice, declined, alice, "old")
    fail_times(5, thousand_sek_invoice, declined, alice, "new")

    allowed = pay(thousand_sek_invoice, saved_card(APPROVED), alice, "good")

    assert (allowed.risk_decision, allowed.status) == ("allow", "succeeded")


def test_a_blocked_attempt_does_not_itself_extend_the_block(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    declined = saved_card(DECLINED)
    start = timezone.now()
    fail_times(6, thousand_sek_invoice, declined, alice, "d")
    with time_machine.travel(start + datetime.timedelta(minutes=50)):
        assert pay(thousand_sek_invoice, declined, alice, "b").failure_code == "risk_blocked"
    with time_machine.travel(start + datetime.timedelta(minutes=62)):
        assert pay(thousand_sek_invoice, saved_card(APPROVED), alice, "ok").status == "succeeded"


def test_the_limit_of_failures_is_the_analysts_setting(
    thousand_sek_invoice: Invoice, saved_card: Cards, alice: User, analyst: User
) -> None:
    update_risk_settings(
        max_failed_attempts=2,
        new_card_limits={"SEK": 1_000_000, "EUR": 100_000, "USD": 100_000},
        by=analyst,
        request=None,
    )
    fail_times(3, thousand_sek_invoice, saved_card(DECLINED), alice, "d")

    assert pay(thousand_sek_invoice, saved_card(APPROVED), alice, "x").risk_decision == "block"


# --- review ------------------------------------------------------------------------


@pytest.fixture
def review_above_500_sek(analyst: User) -> None:
    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 50_000, "EUR": 5_000, "USD": 5_000},
        by=analyst,
    )


@pytest.fixture
def held(
    review_above_500_sek: None, thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> Payment:
    """Alice pays 1,000 SEK with a card never used before: held for review."""
    return pay(thousand_sek_invoice, saved_card(APPROVED), alice, "held")


def test_an_amount_above_the_limit_on_a_new_card_is_held_for_review(
    held: Payment, thousand_sek_invoice: Invoice
) -> None:
    assert (held.status, held.risk_decision, held.awaiting_risk_review) == (
        "pending",
        "review",
        True,
    )
    assert held.risk_reasons[0]["rule"] == "new_card_amount"
    assert "above the review limit of 500.00 SEK" in held.risk_reasons[0]["message"]
    assert not SandboxCharge.objects.exists()  # not charged
    assert services.held_amount(thousand_sek_invoice) == 100_000  # but the amount is held
    thousand_sek_invoice.refresh_from_db()
    assert thousand_sek_invoice.amount_due == 100_000
    assert audit_events("payment.started", held)[0].details["risk"] == "review"


def test_a_held_payment_reserves_its_amount_against_other_payments(
    held: Payment, thousand_sek_invoice: Invoice, saved_card: Cards, alice: User
) -> None:
    from payments.exceptions import PaymentInProgress

    # Not even the part its amount leaves free: the invoice waits for the analyst.
    with pytest.raises(PaymentInProgress) as refused:
        pay(thousand_sek_invoice, saved_card(APPROVED), alice, "second", amount=100)
    assert "under review" in refused.value.message


def test_a_card_already_captured_for_the_customer_is_not_new(
    review_above_500_sek: None,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    saved_card: Cards,
    alice: User,
) -> None:
    first = make_open_invoice(alice_company, [line("Support", "1", "80.00")])
    pay(first, saved_card(APPROVED), alice, "small", amount=100)
    big = make_open_invoice(alice_company, [line("Licence", "1", "800.00")])

    # Another token of the same card (the customer typed it again): the same fingerprint.
    payment = pay(big, saved_card(APPROVED), alice, "big")

    assert (payment.risk_decision, payment.status) == ("allow", "succeeded")


def test_an_amount_within_the_limit_and_a_currency_without_one_are_allowed(
    review_above_500_sek: None,
    thousand_sek_invoice: Invoice,
    saved_card: Cards,
    alice: User,
    analyst: User,
) -> None:
    card = saved_card(APPROVED)
    assert pay(thousand_sek_invoice, card, alice, "limit", amount=500).risk_decision == "allow"
    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 50_000, "EUR": 5_000, "USD": 5_000},
        by=analyst,
    )
    usd = assess_card_payment(
        payment_method=saved_card(APPROVED),
        customer_id=card.customer_id,
        amount=Money(10**9, "USD"),
    )
    assert usd.decision == "allow"  # no USD limit: never held for its amount


def test_review_payments_survive_the_reconciliation_job(held: Payment) -> None:
    later = timezone.now() + datetime.timedelta(hours=3)
    with time_machine.travel(later):
        counts = services.reconcile_payments()
        assert services.reconcile_payment(held).awaiting_risk_review  # a replay asks nothing

    held.refresh_from_db()
    assert (held.status, held.awaiting_risk_review) == ("pending", True)
    assert counts["checked"] == 0
    assert not audit_events("payment.failed", held)


def test_a_replayed_request_returns_the_held_payment_without_charging(
    held: Payment, thousand_sek_invoice: Invoice, alice: User
) -> None:
    assert held.payment_method is not None
    again = pay(thousand_sek_invoice, held.payment_method, alice, "held")
    assert (again.pk, again.status) == (held.pk, "pending")
    assert not SandboxCharge.objects.exists()


# --- the analyst's decision (service) ----------------------------------------------


def test_the_service_refuses_a_decision_without_step_up(held: Payment, analyst: User) -> None:
    with pytest.raises(RiskReviewRefused) as caught:
        decide_risk_review(held, approve=True, reason="known customer", by=analyst, request=None)
    assert caught.value.field == "step_up"
    held.refresh_from_db()
    assert held.awaiting_risk_review


def test_the_service_refuses_and_audits_a_decision_without_the_permission(
    held: Payment, alice: User
) -> None:
    with pytest.raises(RiskReviewRefused) as caught:
        decide_risk_review(held, approve=True, reason="let me pay", by=alice, request=None)
    assert caught.value.field == "user"
    held.refresh_from_db()
    assert held.awaiting_risk_review
    assert audit_events("payment.risk_review_refused", held)[0].actor_id == str(alice.pk)


# --- thresholds --------------------------------------------------------------------


def test_bad_thresholds_are_refused_naming_the_field_and_change_nothing(analyst: User) -> None:
    before = get_risk_settings()
    for values, field in (
        ({"max_failed_attempts": 0, "new_card_limits": {}}, "max_failed_attempts"),
        ({"max_failed_attempts": "5", "new_card_limits": {}}, "max_failed_attempts"),
        ({"max_failed_attempts": 5, "new_card_limits": {"kronor": 100}}, "new_card_limits"),
        ({"max_failed_attempts": 5, "new_card_limits": {"SEK": -1}}, "new_card_limits"),
        ({"max_failed_attempts": 5, "new_card_limits": ["SEK", 1]}, "new_card_limits"),
    ):
        with pytest.raises(InvalidRiskSettings) as caught:
            update_risk_settings(**values, by=analyst)
        assert caught.value.field == field
    after = get_risk_settings()
    assert (after.max_failed_attempts, after.new_card_limits) == (
        before.max_failed_attempts,
        before.new_card_limits,
    )
    assert not audit_events("fraud.risk_settings_changed")


def test_a_threshold_change_is_audited_with_before_and_after(analyst: User) -> None:
    update_risk_settings(
        max_failed_attempts=3, new_card_limits=default_new_card_limits(), by=analyst
    )
    event = audit_events("fraud.risk_settings_changed")[0]
    assert event.actor_id == str(analyst.pk)
    assert event.details["changes"] == {"max_failed_attempts": {"before": 5, "after": 3}}


def test_only_a_holder_of_the_permission_changes_thresholds(alice: User) -> None:
    with pytest.raises(InvalidRiskSettings):
        update_risk_settings(max_failed_attempts=50, new_card_limits={}, by=alice)
    assert get_risk_settings().max_failed_attempts == 5


# --- cost --------------------------------------------------------------------------


def test_the_pay_path_costs_the_same_risk_queries_however_long_the_history(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    saved_card: Cards,
    alice: User,
) -> None:
    invoice = make_open_invoice(alice_company, [line("Licence", "1", "8000.00")])
    card = saved_card(APPROVED)
    declined = saved_card(DECLINED)
    pay(invoice, card, alice, "warm", amount=10)  # gateway account, keys, caches

    def measured(n: str) -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert pay(invoice, card, alice, n, amount=10).status == "succeeded"
        return [q["sql"] for q in captured.captured_queries]

    few = measured("few")
    for n in range(4):
        pay(invoice, card, alice, f"more{n}", amount=10)
        pay(invoice, declined, alice, f"fail{n}", amount=10)
    many = measured("many")

    assert len(many) == len(few)
    # The thresholds ride on two statements, whatever the history: the card's facts, and
    # the live model's version with the score thresholds (none live here: no row).
    assert sum("payments_risksettings" in sql for sql in many) == 2


def test_the_card_payments_facts_statement_stays_within_psycopgs_query_cache() -> None:
    """psycopg parses a statement's placeholders on every run unless it has at most
    MAX_CACHED_STATEMENT_LENGTH characters and MAX_CACHED_STATEMENT_PARAMS parameters
    (then once per process): the card payment's facts statement must stay within both."""
    from psycopg import _queries

    from payments.services.hot_statements import facts_after_lock

    sql, params = facts_after_lock.sql(1, 1, timezone.now(), 1, "scope", "key", "svc", "")
    assert len(sql) <= _queries.MAX_CACHED_STATEMENT_LENGTH, len(sql)
    assert len(params) <= _queries.MAX_CACHED_STATEMENT_PARAMS, len(params)
