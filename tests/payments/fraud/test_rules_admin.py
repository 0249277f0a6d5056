"""Rules, lists, backtests, evaluations and reports in the admin: the fraud analyst's
forms (bad input is a form error and nothing is saved) and every other role refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from billing.models import Invoice
from payments import services
from payments.fraud.models import FraudListEntry, FraudRule, FraudRuleVersion, RiskEvaluation
from payments.fraud.rule_services import add_list_entry, create_fraud_rule
from payments.models import Payment, PaymentMethod
from security.models import User
from security.roles import FRAUD_ANALYST, ROLE_NAMES
from tests.factories import audit_events, make_user
from tests.payments.fixtures import APPROVED, key, sek

pytestmark = pytest.mark.django_db

RULE = {
    "action": "review",
    "expression": "amount > 500 and card_new_for_customer",
    "description": "big first payment",
    "enabled": "on",
    "position": "0",
}


def test_an_analyst_adds_a_rule_and_changing_it_keeps_the_old_version(
    analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)

    added = client.post(reverse("admin:payments_fraudrule_add"), RULE)
    rule = FraudRule.objects.get()
    changed = client.post(
        reverse("admin:payments_fraudrule_change", args=[rule.pk]),
        {**RULE, "expression": "amount > 900"},
    )

    assert (added.status_code, changed.status_code) == (302, 302)
    assert list(rule.versions.order_by("version").values_list("version", "expression")) == [
        (1, "amount > 500 and card_new_for_customer"),
        (2, "amount > 900"),
    ]
    assert audit_events("fraud.rule_created", rule) and audit_events("fraud.rule_changed", rule)
    page = client.get(reverse("admin:payments_fraudrule_change", args=[rule.pk])).content.decode()
    assert "Test this rule" in page


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("amount >", "syntax error"),
        ("amount > 1 and mood == 'bad'", "unknown feature &#x27;mood&#x27;"),
        ("amount.real > 1", "attribute access"),
    ],
)
def test_a_rule_that_does_not_check_is_a_form_error_and_nothing_is_saved(
    analyst: User, admin_client_for: Callable[[User], Client], expression: str, message: str
) -> None:
    client = admin_client_for(analyst)
    rule = create_fraud_rule(action="block", expression="amount > 1", description="x", by=analyst)

    added = client.post(reverse("admin:payments_fraudrule_add"), {**RULE, "expression": expression})
    changed = client.post(
        reverse("admin:payments_fraudrule_change", args=[rule.pk]),
        {**RULE, "expression": expression},
    )

    assert (added.status_code, changed.status_code) == (200, 200)
    assert message in added.content.decode() and message in changed.content.decode()
    assert FraudRule.objects.count() == 1 and FraudRuleVersion.objects.count() == 1
    rule.refresh_from_db()
    assert (rule.version, rule.expression) == (1, "amount > 1")


def test_an_analyst_adds_a_cidr_and_a_bad_one_is_a_form_error(
    analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    url = reverse("admin:payments_fraudlistentry_add")
    entry = {"list": "block", "key": "ip", "reason": "botnet"}

    bad = client.post(url, {**entry, "value": "203.0.113.0/40"})
    nothing = FraudListEntry.objects.count()
    good = client.post(url, {**entry, "value": "203.0.113.9/24"})

    assert bad.status_code == 200
    assert "is not an IP address or a network in CIDR form" in bad.content.decode()
    assert nothing == 0
    assert good.status_code == 302
    assert FraudListEntry.objects.get().value == "203.0.113.0/24"


def test_an_entry_is_removed_with_a_note_and_without_one_is_refused(
    analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    entry = add_list_entry(list="block", key="country", value="KP", reason="x", by=analyst)
    url = reverse("admin:payments_fraudlistentry_change", args=[entry.pk])

    refused = client.post(url, {"removal_note": ""})
    removed = client.post(url, {"removal_note": "sanctions lifted"})

    assert (refused.status_code, removed.status_code) == (200, 302)
    entry.refresh_from_db()
    assert (entry.removal_note, entry.removed_by) == ("sanctions lifted", analyst)


@pytest.fixture
def paid(
    thousand_sek_invoice: Invoice, saved_card: Callable[[str], PaymentMethod], alice: User
) -> Payment:
    return services.pay_invoice(
        thousand_sek_invoice,
        amount=sek(100),
        payment_method=saved_card(APPROVED),
        idempotency_key=key("admin"),
        by=alice,
    )


def test_the_backtest_page_shows_what_the_rule_would_have_done(
    paid: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    url = reverse("admin:payments_fraudrule_backtest_new")

    tested = client.post(url, {"action": "block", "expression": "amount >= 100", "days": "30"})
    bad = client.post(url, {"action": "block", "expression": "shoe > 1", "days": "30"})

    assert "1 attempts from" in tested.content.decode()
    assert "1 decided differently" in tested.content.decode()
    assert "unknown feature" in bad.content.decode()
    assert not FraudRule.objects.exists()  # testing saves nothing


def test_the_report_page_draws_the_days_and_the_months(
    paid: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    url = reverse("admin:payments_riskevaluation_reports")

    daily = client.get(url).content.decode()
    monthly = client.get(url + "?period=month").content.decode()

    assert "<svg" in daily and "<svg" in monthly
    assert "Card payment attempts by decision" in daily


# --- every other role is refused --------------------------------------------------------


def _pages(paid: Payment) -> list[tuple[str, str]]:
    rule = create_fraud_rule(
        action="block",
        expression="amount > 1",
        description="x",
        by=User.objects.get(username="fiona"),
    )
    entry = add_list_entry(
        list="block", key="country", value="KP", reason="x", by=User.objects.get(username="fiona")
    )
    evaluation = RiskEvaluation.objects.get()
    return [
        ("get", reverse("admin:payments_fraudrule_changelist")),
        ("post", reverse("admin:payments_fraudrule_add")),
        ("post", reverse("admin:payments_fraudrule_change", args=[rule.pk])),
        ("post", reverse("admin:payments_fraudrule_backtest_new")),
        ("post", reverse("admin:payments_fraudrule_backtest", args=[rule.pk])),
        ("get", reverse("admin:payments_fraudlistentry_changelist")),
        ("post", reverse("admin:payments_fraudlistentry_add")),
        ("post", reverse("admin:payments_fraudlistentry_change", args=[entry.pk])),
        ("get", reverse("admin:payments_riskevaluation_changelist")),
        ("get", reverse("admin:payments_riskevaluation_change", args=[evaluation.pk])),
        ("get", reverse("admin:payments_riskevaluation_reports")),
        ("post", reverse("admin:payments_payment_refund_as_fraud", args=[paid.pk])),
    ]


@pytest.mark.parametrize("role", [name for name in ROLE_NAMES if name != FRAUD_ANALYST])
def test_every_other_role_is_refused_every_page(
    role: str, paid: Payment, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    pages = _pages(paid)
    user = make_user("intruder", is_staff=role != "Customer")
    user.groups.add(Group.objects.get(name=role))
    client = admin_client_for(User.objects.get(pk=user.pk))
    form = {
        **RULE,
        "list": "allow",
        "key": "country",
        "value": "SE",
        "reason": "mine",
        "removal_note": "gone",
        "days": "30",
    }

    for method, url in pages:
        response = getattr(client, method)(url, form if method == "post" else None)
        refused = response.status_code == 403 or (
            response.status_code == 302 and reverse("admin:login") in response["Location"]
        )
        assert refused, f"{role} reached {method.upper()} {url}: {response.status_code}"

    assert FraudRule.objects.count() == 1 and FraudRule.objects.get().version == 1
    assert FraudListEntry.objects.count() == 1
    assert FraudListEntry.objects.get().removed_at is None
    paid.refresh_from_db()
    assert paid.refunded_amount == 0
