"""The fraud engine's part of the demo: a risk model live from the first card payment.

A fresh installation has no labelled payments to learn from, so the demo trains its first
model on the built-in simulator's payments (``payments.fraud.simulator``, a fixed seed; kept
in memory, never written as customers or payments) and makes it live as the platform itself
(``SYSTEM``, audited ``fraud.model_promoted`` with the reason). The demo's card payments are
then scored, and the fraud analyst finds a live version, its holdout figures and the
promotion page (a second version trained later is promoted by the analyst, with step-up).
The demo's analyst (``fraud``) has also written two rules (one on, one off) and a block
list entry, through the rule services, so the rules and lists pages show their use.
Never in production: ``manage.py seed_demo`` refuses to run there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from django.contrib.auth import get_user_model

from audit import SYSTEM
from payments.fraud.models import FraudListEntry, FraudModelVersion, FraudRule
from payments.fraud.rule_services import add_list_entry, create_fraud_rule
from payments.fraud.simulator import SimulationSettings, simulate
from payments.fraud.training import promote_model_version, train_model_version

# A small world (about 2,500 attempts over five weeks, some 250 of them fraud of the four
# scenarios): trained in seconds, with enough fraud in the training weeks and the holdout.
DEMO_SIMULATION = dataclasses.replace(
    SimulationSettings(),
    customers=2000,
    weeks=5,
    new_customers_per_week=30,
    card_testing_bursts=8,
    stolen_cards=40,
    compromised_cards=8,
    account_takeovers=40,
)
DEMO_SOURCE = "built-in simulator (demo installation, seed 7)"
DEMO_ANALYST = "fraud"  # billing.demo's fraud analyst login
DEMO_RULES = (
    {
        "action": "review",
        "expression": "amount_eur > 2000 and card_new_for_customer",
        "description": "A large payment on a card the customer has not used before",
        "enabled": True,
        "position": 10,
    },
    {
        "action": "block",
        "expression": "ip_cards_1d >= 4 and card_ip_country_mismatch",
        "description": "Many cards from one address abroad (trial: off until backtested)",
        "enabled": False,
        "position": 20,
    },
)


def seed_fraud_rules_demo() -> int:
    """The demo analyst's rules and list entry, when there are none yet; how many made."""
    analyst = get_user_model().objects.filter(username=DEMO_ANALYST).first()
    if analyst is None or FraudRule.objects.exists() or FraudListEntry.objects.exists():
        return 0
    for rule in DEMO_RULES:
        create_fraud_rule(**rule, by=analyst)  # type: ignore[arg-type]
    add_list_entry(
        list="block",
        key="email_domain",
        value="throwaway-mail.example",
        reason="disposable mailbox domain seen in card-testing attempts",
        by=analyst,
    )
    return len(DEMO_RULES) + 1


def seed_fraud_demo(progress: Callable[[str], None] | None = None) -> FraudModelVersion | None:
    """Train and make live the demo's first model, unless a version is live already
    (idempotent); the version made live, or None when there was nothing to do."""
    if FraudModelVersion.objects.filter(live=True).exists():
        return None
    say = progress or (lambda _message: None)
    say("Fraud engine: simulating labelled card payments for the demo's first risk model…")
    payments = simulate(DEMO_SIMULATION)
    version = train_model_version(payments, source=DEMO_SOURCE, seed=DEMO_SIMULATION.seed)
    return promote_model_version(
        version,
        by=SYSTEM,
        reason="demo installation: first model, trained on the built-in simulator",
    )
