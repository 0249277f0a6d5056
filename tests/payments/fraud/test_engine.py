"""The engine's decision order: lists, safety blocks, the analysts' rules (allow, block,
step-up, review), safety reviews, the score; and one RiskEvaluation per attempt."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import pytest
from django.test import RequestFactory

from billing.models import Invoice
from payments import services
from payments.exceptions import StepUpForPayment
from payments.fraud import update_risk_settings
from payments.fraud.engine import ListHit, LiveRule, decide, networks_of
from payments.fraud.expressions import compile_expression
from payments.fraud.models import RiskEvaluation
from payments.fraud.rule_services import add_list_entry, create_fraud_rule, feature_kinds
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.payments.fixtures import APPROVED, key, sek

KINDS = {"amount": "number", "card_country": "text", "card_new_for_customer": "bool"}
FEATURES = {"amount": 9000, "card_country": "NG", "card_new_for_customer": True}


def rule(pk: int, action: str, text: str, position: int = 0) -> LiveRule:
    return LiveRule(pk, 1, action, position, f"rule {pk}", compile_expression(text, KINDS))


def decided(**given: Any) -> Any:
    inputs: dict[str, Any] = {
        "features": FEATURES,
        "hits": [],
        "safety_decision": "allow",
        "safety_reasons": [],
        "rules": [],
        "score": None,
        "review_score": 65,
        "block_score": 75,
    }
    inputs.update(given)
    return decide(**inputs)


BLOCK_HIT = ListHit(1, "block", "country", "NG")
ALLOW_HIT = ListHit(2, "allow", "customer", "7")
FAILURES = [{"rule": "card_failures", "message": "6 failed"}]


def test_a_block_list_hit_decides_before_everything_even_an_allow_hit() -> None:
    result = decided(hits=[ALLOW_HIT, BLOCK_HIT], rules=[rule(1, "allow", "amount > 0")], score=1)

    assert (result.action, result.decided_by) == ("block", "list")


def test_an_allow_list_hit_decides_before_safety_rules_rules_and_the_score() -> None:
    result = decided(
        hits=[ALLOW_HIT],
        safety_decision="block",
        safety_reasons=FAILURES,
        rules=[rule(1, "block", "amount > 0")],
        score=99,
    )

    assert (result.action, result.decided_by) == ("allow", "list")


def test_a_safety_block_decides_before_an_analysts_allow_rule() -> None:
    result = decided(
        safety_decision="block", safety_reasons=FAILURES, rules=[rule(1, "allow", "amount > 0")]
    )

    assert (result.action, result.decided_by, result.reasons) == ("block", "safety", FAILURES)


def test_rules_go_allow_then_block_then_step_up_then_review_whatever_their_positions() -> None:
    rules = [
        rule(1, "review", "amount > 0", position=0),
        rule(2, "step_up", "amount > 0", position=0),
        rule(3, "block", "amount > 0", position=5),
        rule(4, "allow", 'card_country == "NG"', position=9),
    ]

    assert decided(rules=rules).action == "allow"
    assert decided(rules=rules[:3]).action == "block"
    assert decided(rules=rules[:2]).action == "step_up"
    assert decided(rules=rules[:2], step_up_passed=True).action == "review"
    assert decided(rules=rules[:1]).action == "review"
    # Every match is recorded, not only the one that decided.
    assert [m["fraud_rule"] for m in decided(rules=rules).matched] == [4, 3, 2, 1]


def test_within_a_kind_the_lowest_position_decides() -> None:
    result = decided(rules=[rule(7, "block", "amount > 0", 2), rule(8, "block", "amount > 0", 1)])

    assert result.reasons[0]["fraud_rule"] == 8


def test_rules_decide_before_the_score_and_the_score_before_the_default() -> None:
    assert decided(rules=[rule(1, "allow", "amount > 0")], score=99).action == "allow"
    assert decided(safety_decision="review", score=99).decided_by == "safety"
    assert (decided(score=75).action, decided(score=75).decided_by) == ("block", "score")
    assert decided(score=65).action == "review"
    assert (decided(score=64).action, decided(score=64).decided_by) == ("allow", "default")
    assert decided(score=None).action == "allow"


def test_a_rule_that_fails_on_odd_values_does_not_match() -> None:
    result = decided(features={"amount": "oops"}, rules=[rule(1, "block", "amount > 5")])

    assert result.action == "allow"


def test_networks_of_an_address_cover_every_allowed_prefix() -> None:
    assert networks_of("192.0.2.7")[0] == "192.0.0.0/8"
    assert networks_of("192.0.2.7")[-1] == "192.0.2.7/32"
    assert "192.0.2.0/24" in networks_of("192.0.2.7")
    assert networks_of("not an address") == []


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "255.255.255.255", "1.0.0.0", "2001:db8:ab:12::ff", "::1", "fe80::1:2"]
)
def test_networks_are_written_as_list_entries_store_them(address: str) -> None:
    """As ``ip_network`` writes each network (how a CIDR list entry is stored)."""
    ip = ipaddress.ip_address(address)
    prefixes = [int(network.rpartition("/")[2]) for network in networks_of(address)]

    assert networks_of(address) == [
        str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False)) for prefix in prefixes
    ]
    assert prefixes[-1] == ip.max_prefixlen


# --- the engine in the card payment ----------------------------------------------------


pytestmark = pytest.mark.django_db


@pytest.fixture
def pay(
    thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod], alice: User
) -> Callable[..., Payment]:
    def paying(amount: int = 100, n: int = 1, **extra: Any) -> Payment:
        return services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(amount),
            payment_method=saved_card(APPROVED),
            idempotency_key=key(f"engine-{n}"),
            by=alice,
            **extra,
        )

    return paying


def test_every_attempt_stores_one_evaluation(pay: Callable[..., Payment]) -> None:
    payment = pay()

    evaluation = RiskEvaluation.objects.get(payment=payment)
    assert (evaluation.decision, evaluation.decided_by) == ("allow", "default")
    assert set(evaluation.features) == set(feature_kinds())
    assert evaluation.duration_us > 0


def test_a_block_list_entry_blocks_the_payment_before_any_charge(
    pay: Callable[..., Payment], analyst: User, alice_company: Any
) -> None:
    add_list_entry(
        list="block", key="customer", value=str(alice_company.pk), reason="fraud ring", by=analyst
    )

    payment = pay()

    assert (payment.status, payment.failure_code, payment.risk_decision) == (
        "failed",
        "risk_blocked",
        "block",
    )
    assert payment.risk_reasons[0]["rule"] == "block_list"
    assert payment.risk_evaluation.decided_by == "list"


def test_a_cidr_block_entry_catches_the_payers_address(
    pay: Callable[..., Payment], analyst: User
) -> None:
    add_list_entry(list="block", key="ip", value="198.51.100.0/24", reason="botnet", by=analyst)
    request = RequestFactory().post("/", REMOTE_ADDR="198.51.100.23")

    assert pay(request=request).risk_decision == "block"


def test_an_allow_list_entry_lets_a_new_card_above_its_limit_through(
    pay: Callable[..., Payment], analyst: User
) -> None:
    update_risk_settings(
        max_failed_attempts=5,
        new_card_limits={"SEK": 50_000, "EUR": 5_000, "USD": 5_000},
        by=analyst,
    )  # 500 SEK: 1,000 SEK on a new card would wait for review
    add_list_entry(list="allow", key="email_domain", value="alice.example", reason="ok", by=analyst)

    payment = pay(amount=1000)

    assert (payment.risk_decision, payment.status) == ("allow", "succeeded")


def test_an_analysts_review_rule_holds_the_payment(
    pay: Callable[..., Payment], analyst: User
) -> None:
    create_fraud_rule(
        action="review", expression="amount >= 100", description="big", enabled=True, by=analyst
    )
    create_fraud_rule(
        action="block", expression="amount >= 100", description="off", enabled=False, by=analyst
    )

    payment = pay(amount=100)

    assert payment.awaiting_risk_review
    assert payment.risk_reasons[0]["message"] == "big (amount >= 100)"


def test_a_step_up_rule_refuses_a_payer_with_a_factor_to_confirm_again(
    pay: Callable[..., Payment], analyst: User, alice: User
) -> None:
    from tests.mfa_helpers import give_totp_device

    give_totp_device(alice)
    create_fraud_rule(
        action="step_up", expression="amount > 0", description="all", enabled=True, by=analyst
    )
    request = RequestFactory().post("/")
    request.user = alice
    request.session = {}  # type: ignore[assignment]

    with pytest.raises(StepUpForPayment) as refused:
        pay(request=request)

    assert refused.value.field == "step_up"
    assert not Payment.objects.exists()


def test_a_step_up_rule_holds_for_review_when_no_factor_can_be_given(
    pay: Callable[..., Payment], analyst: User
) -> None:
    create_fraud_rule(
        action="step_up", expression="amount > 0", description="all", enabled=True, by=analyst
    )

    payment = pay()  # no request: as an API client pays

    assert payment.awaiting_risk_review
    assert payment.risk_reasons[-1]["rule"] == "step_up_unavailable"


def test_with_the_engine_off_only_the_safety_rules_decide(
    pay: Callable[..., Payment], analyst: User, settings: Any
) -> None:
    settings.FRAUD_ENGINE_ENABLED = False
    create_fraud_rule(
        action="block", expression="amount > 0", description="all", enabled=True, by=analyst
    )

    payment = pay()

    assert payment.risk_decision == "allow"
    assert not RiskEvaluation.objects.exists()
