"""The fraud engine's statements in a card payment: compiled once and prepared on the
connection, like the payment's own (tests/payments/test_pay_invoice.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from billing.models import Invoice
from db.prepared import is_hot
from payments import services
from payments.fraud.models import RiskEvaluation
from payments.fraud.rule_services import add_list_entry, create_fraud_rule
from payments.models import PaymentMethod
from security.models import User
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = [pytest.mark.django_db, pytest.mark.postgres_only]

_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET ", "SHOW ")
# The rules' half of the engine: these must all be prepared.
RULES_TABLES = (
    "payments_fraudrule",
    "payments_fraudlistentry",
    "payments_riskevaluation",
    "payments_risksettings",
    'SELECT "billing_customer"."email" AS "email" FROM',
)
# The features' and the model's statements (payments.fraud.features.online,
# payments.fraud.scoring) are not compiled yet: their shapes, so that this test fails the
# day another statement appears unprepared.
FEATURES_STATEMENTS = (
    'SELECT "billing_customer"."email" AS "email", "billing_customer"."country"',
    'SELECT COUNT("payments_payment"."id") FILTER',
    'SELECT "payments_fraudmodelversion"."id" AS "pk"',
)


def test_the_engines_statements_are_prepared(
    thousand_sek_invoice: Invoice,
    saved_card: Callable[[str], PaymentMethod],
    alice: User,
    analyst: User,
) -> None:
    create_fraud_rule(
        action="block", expression="amount > 900", description="x", enabled=True, by=analyst
    )
    add_list_entry(list="block", key="ip", value="203.0.113.0/24", reason="x", by=analyst)
    card = saved_card(APPROVED)
    services.pay_invoice(
        thousand_sek_invoice, amount=sek(400), payment_method=card, idempotency_key=key(1), by=alice
    )
    ran: list[str] = []

    def keep(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not sql.lstrip().upper().startswith(_CONTROL):
            ran.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        services.pay_invoice(
            thousand_sek_invoice,
            amount=sek(400),
            payment_method=card,
            idempotency_key=key(2),
            by=alice,
        )

    assert RiskEvaluation.objects.count() == 2
    rules_half = [sql for sql in ran if any(table in sql for table in RULES_TABLES)]
    assert len(rules_half) >= 4  # rules, list entries, email, the evaluation's insert
    unprepared = [sql for sql in ran if not is_hot(sql)]
    assert [sql for sql in unprepared if not sql.startswith(FEATURES_STATEMENTS)] == []
