"""The fraud engine's statements in a card payment, a live model included: compiled once,
prepared on the connection and parsed once by psycopg, like the payment's own
(tests/payments/test_pay_invoice.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from billing.models import Invoice
from db.prepared import is_hot
from payments import services
from payments.fraud.models import FraudModelVersion, RiskEvaluation
from payments.fraud.rule_services import add_list_entry, create_fraud_rule
from payments.fraud.training.promote import promote_model_version
from payments.models import PaymentMethod
from security.models import User
from tests.mfa_helpers import stepped_up_request
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET ", "SHOW ")
# The rules' half of the engine.
RULES_TABLES = (
    "payments_fraudrule",
    "payments_fraudlistentry",
    "payments_riskevaluation",
    "payments_risksettings",
    "payments_fraudmodelversion",
)
# psycopg parses a statement's text again on every run unless it has at most 4,096
# characters and 50 parameters (its query cache's limits): a hot statement past either
# costs up to a millisecond a card payment (docs/performance.md, "Hot queries").
MAX_CACHED_CHARACTERS, MAX_CACHED_PARAMETERS = 4096, 50


def test_the_engines_statements_are_prepared_and_parsed_once(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    analyst: User,
    trained: FraudModelVersion,
) -> None:
    promote_model_version(trained, by=analyst, request=stepped_up_request(analyst))
    create_fraud_rule(
        action="block", expression="amount > 900", description="x", enabled=True, by=analyst
    )
    add_list_entry(list="block", key="ip", value="203.0.113.0/24", reason="x", by=analyst)
    add_list_entry(
        list="allow", key="customer", value=str(alice.portal_account.customer_id), reason="x",
        by=analyst,
    )  # fmt: skip
    card = saved_card(APPROVED)
    services.pay_invoice(
        thousand_sek_invoice, amount=sek(400), payment_method=card, idempotency_key=key(1), by=alice
    )
    ran: list[tuple[str, int]] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not sql.lstrip().upper().startswith(_CONTROL):
            ran.append((sql, len(params or ())))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(400),
            payment_method=card,
            idempotency_key=key(2),
            by=alice,
        )

    evaluation = RiskEvaluation.objects.order_by("pk").last()
    assert evaluation is not None and evaluation.model_version == trained.pk
    rules_half = [sql for sql, _n in ran if any(table in sql for table in RULES_TABLES)]
    # the facts (with the thresholds); the list entries, rules, live model and score
    # thresholds (rule_selectors.engine_reads); the counters with the evaluation's insert
    assert len(rules_half) == 3
    assert [sql for sql, _n in ran if not is_hot(sql)] == []
    past_the_cache = [
        (sql[:80], len(sql), n)
        for sql, n in ran
        if len(sql) > MAX_CACHED_CHARACTERS or n > MAX_CACHED_PARAMETERS
    ]
    assert past_the_cache == []
