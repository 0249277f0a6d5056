"""With a live model: lists and the analysts' rules decide before the score; the score
decides against the thresholds; the evaluation keeps the score and its version."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Customer, Invoice
from payments import services
from payments.fraud import update_risk_settings
from payments.fraud.models import FraudModelVersion
from payments.fraud.rule_services import add_list_entry, create_fraud_rule
from payments.fraud.training import promote_model_version, train_model_version
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.mfa_helpers import stepped_up_request
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(small_payments: list, analyst: User) -> FraudModelVersion:
    """A trained version, live, and thresholds at 0: every scored attempt would block."""
    version = train_model_version(small_payments, source="test", seed=5)
    promote_model_version(version, by=analyst, request=stepped_up_request(analyst))
    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 1_000_000, "EUR": 100_000, "USD": 100_000},
        review_score=0,
        block_score=0,
        by=analyst,
    )
    return version


@pytest.fixture
def pay(
    thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod], alice: User
) -> Callable[[], Payment]:
    return lambda: services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(100),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("model"),
        by=alice,
    )


def test_the_score_blocks_at_the_block_threshold(
    live: FraudModelVersion, pay: Callable[[], Payment]
) -> None:
    payment = pay()

    evaluation = payment.risk_evaluation
    assert (payment.risk_decision, evaluation.decided_by) == ("block", "score")
    assert evaluation.score is not None and evaluation.model_version == live.pk


def test_an_allow_list_entry_decides_before_the_score(
    live: FraudModelVersion, pay: Callable[[], Payment], analyst: User, alice_company: Customer
) -> None:
    add_list_entry(
        list="allow", key="customer", value=str(alice_company.pk), reason="known", by=analyst
    )

    payment = pay()

    assert (payment.risk_decision, payment.risk_evaluation.decided_by) == ("allow", "list")
    assert payment.status == "succeeded"


def test_an_analysts_allow_rule_decides_before_the_score(
    live: FraudModelVersion, pay: Callable[[], Payment], analyst: User
) -> None:
    create_fraud_rule(
        action="allow", expression="amount < 500", description="small", enabled=True, by=analyst
    )

    payment = pay()

    assert (payment.risk_decision, payment.risk_evaluation.decided_by) == ("allow", "rule")
    assert payment.risk_evaluation.score is not None  # scored all the same, for the reports


@pytest.mark.parametrize("one_statement", [True, False])
def test_the_engines_reads_are_the_list_hits_the_rules_the_live_model_and_the_thresholds(
    live: FraudModelVersion, analyst: User, one_statement: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One statement on PostgreSQL (rule_selectors.engine_reads), the same as the three
    reads it stands for (list_hits, live_rules, scoring.live_version) on other databases."""
    from payments.fraud import rule_selectors, scoring
    from payments.fraud.rule_services import remove_list_entry, update_fraud_rule

    if not one_statement:
        monkeypatch.setattr(rule_selectors, "is_postgresql", lambda: False)
    first = create_fraud_rule(
        action="review", expression="amount > 900", description="a", enabled=True, by=analyst
    )
    create_fraud_rule(
        action="block", expression="amount > 5", description="b", enabled=False, by=analyst
    )
    entry = add_list_entry(list="block", key="ip", value="203.0.113.0/24", reason="x", by=analyst)
    add_list_entry(list="allow", key="email", value="alice@example.com", reason="x", by=analyst)
    pairs = [("ip", "203.0.113.0/24"), ("customer", "7"), ("email", "bob@example.com")]
    with CaptureQueriesContext(connection) as ran:
        hits, rules, version = rule_selectors.engine_reads(pairs)
    assert len(ran) == (1 if one_statement and connection.vendor == "postgresql" else 3)
    assert hits == rule_selectors.list_hits(pairs)
    assert [(hit.pk, hit.list, hit.key, hit.value) for hit in hits] == [
        (entry.pk, "block", "ip", "203.0.113.0/24")
    ]
    assert (
        [(r.pk, r.version, r.action, r.expression.text) for r in rules]
        == [(first.pk, first.version, "review", "amount > 900")]
        == [(r.pk, r.version, r.action, r.expression.text) for r in rule_selectors.live_rules()]
    )
    assert version == scoring.live_version()
    assert version == {
        "pk": live.pk,
        "model_sha256": live.model_sha256,
        "review_score": 0,
        "block_score": 0,
    }
    update_fraud_rule(first, enabled=False, by=analyst)
    remove_list_entry(entry, note="x", by=analyst)
    FraudModelVersion.objects.filter(pk=live.pk).update(live=False)
    assert rule_selectors.engine_reads(pairs) == ([], [], None)
