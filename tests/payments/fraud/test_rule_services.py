"""Fraud rules and lists through their services: checked, versioned, audited; bad input
changes nothing."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from billing.models import Customer
from payments.exceptions import InvalidFraudRule, InvalidListEntry
from payments.fraud.models import FraudListEntry, FraudRule, FraudRuleVersion
from payments.fraud.rule_services import (
    add_list_entry,
    create_fraud_rule,
    remove_list_entry,
    update_fraud_rule,
)
from security.models import User
from tests.factories import audit_events, make_user

pytestmark = pytest.mark.django_db


def a_rule(analyst: User, **overrides: object) -> FraudRule:
    values: dict[str, object] = {
        "action": "review",
        "expression": "amount > 5000 and card_new_for_customer",
        "description": "large amount on a new card",
        "enabled": True,
    }
    values.update(overrides)
    return create_fraud_rule(by=analyst, **values)  # type: ignore[arg-type]


def test_a_new_rule_has_version_one_and_is_audited(analyst: User) -> None:
    rule = a_rule(analyst)

    assert (rule.version, rule.updated_by) == (1, analyst)
    assert list(rule.versions.values_list("version", "expression")) == [
        (1, "amount > 5000 and card_new_for_customer")
    ]
    [event] = audit_events("fraud.rule_created", rule)
    assert event.details["expression"] == rule.expression


def test_every_change_is_a_new_version_and_the_old_ones_are_kept(analyst: User) -> None:
    rule = a_rule(analyst)

    update_fraud_rule(rule, expression="amount > 9000", by=analyst)
    changed = update_fraud_rule(rule, enabled=False, by=analyst)

    assert changed.version == 3
    assert list(
        FraudRuleVersion.objects.filter(rule=rule)
        .order_by("version")
        .values_list("version", "expression", "enabled")
    ) == [
        (1, "amount > 5000 and card_new_for_customer", True),
        (2, "amount > 9000", True),
        (3, "amount > 9000", False),
    ]
    events = audit_events("fraud.rule_changed", rule)
    assert [e.details["changes"] for e in events] == [
        {
            "expression": {
                "before": "amount > 5000 and card_new_for_customer",
                "after": "amount > 9000",
            }
        },
        {"enabled": {"before": True, "after": False}},
    ]


def test_an_unchanged_save_writes_no_version(analyst: User) -> None:
    rule = a_rule(analyst)

    update_fraud_rule(rule, description=rule.description, by=analyst)

    assert rule.versions.count() == 1
    assert audit_events("fraud.rule_changed") == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("expression", "amount >", "syntax error"),
        ("expression", "amount > 1 and favourite_colour == 'red'", "unknown feature"),
        ("expression", "__import__('os').system('id') == 0", "a function call is not allowed"),
        ("action", "shrug", "choose allow, block, step-up or review"),
        ("description", "  ", "say what the rule catches"),
        ("position", -1, "a whole number from 0 to 10000"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_saved(
    analyst: User, field: str, value: object, message: str
) -> None:
    rule = a_rule(analyst)

    with pytest.raises(InvalidFraudRule) as refused:
        a_rule(analyst, **{field: value})
    with pytest.raises(InvalidFraudRule):
        update_fraud_rule(rule, by=analyst, **{field: value})  # type: ignore[arg-type]

    assert refused.value.field == field
    assert message in refused.value.message
    assert FraudRule.objects.count() == 1
    assert FraudRuleVersion.objects.count() == 1
    assert audit_events("fraud.rule_changed") == []


def test_only_a_fraud_analyst_changes_rules_and_lists(db: None) -> None:
    clerk = make_user("clerk", is_staff=True)

    with pytest.raises(InvalidFraudRule):
        a_rule(clerk)
    with pytest.raises(InvalidListEntry):
        add_list_entry(list="block", key="country", value="SE", reason="test", by=clerk)
    assert not FraudRule.objects.exists() and not FraudListEntry.objects.exists()


@pytest.mark.parametrize(
    ("key", "value", "stored"),
    [
        ("ip", "192.0.2.7", "192.0.2.7/32"),
        ("ip", "192.0.2.77/24", "192.0.2.0/24"),
        ("ip", "2001:db8::1/48", "2001:db8::/48"),
        ("country", "ru", "RU"),
        ("email", " Mallory@Example.COM ", "mallory@example.com"),
        ("email_domain", "@Mailinator.com", "mailinator.com"),
        ("bin", "411111", "411111"),
        ("card", "ABCDEF0123456789", "abcdef0123456789"),
    ],
)
def test_list_values_are_normalized(analyst: User, key: str, value: str, stored: str) -> None:
    entry = add_list_entry(list="block", key=key, value=value, reason="seen in fraud", by=analyst)

    assert entry.value == stored
    [event] = audit_events("fraud.list_entry_added", entry)
    assert (event.details["key"], event.details["value"]) == (key, stored)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ip", "192.0.2.0/33", "not an IP address or a network in CIDR form"),
        ("ip", "300.1.2.3", "not an IP address or a network in CIDR form"),
        ("ip", "10.0.0.0/4", "a network wider than /8 is not allowed"),
        ("country", "XX", "not an ISO 3166-1 country code"),
        ("email", "not-an-email", "not an email address"),
        ("email_domain", "exa mple.com", "not a domain name"),
        ("bin", "41", "a BIN is the card's first 6 to 8 digits"),
        ("card", "not-hex!", "a card fingerprint"),
        ("customer", "999999", "no customer with this number"),
        ("ip", "", "give the value to match"),
    ],
)
def test_a_list_value_that_does_not_parse_is_refused_and_nothing_saved(
    analyst: User, key: str, value: str, message: str
) -> None:
    with pytest.raises(InvalidListEntry) as refused:
        add_list_entry(list="block", key=key, value=value, reason="why", by=analyst)

    assert refused.value.field == "value"
    assert message in refused.value.message
    assert not FraudListEntry.objects.exists()
    assert audit_events("fraud.list_entry_added") == []


def test_a_past_expiry_and_a_missing_reason_are_refused(analyst: User) -> None:
    past = timezone.now() - datetime.timedelta(minutes=1)
    with pytest.raises(InvalidListEntry) as expired:
        add_list_entry(
            list="allow", key="country", value="SE", reason="x", expires_at=past, by=analyst
        )
    with pytest.raises(InvalidListEntry) as reasonless:
        add_list_entry(list="allow", key="country", value="SE", reason=" ", by=analyst)

    assert (expired.value.field, reasonless.value.field) == ("expires_at", "reason")
    assert not FraudListEntry.objects.exists()


def test_a_customer_entry_and_its_removal_are_audited(
    analyst: User, alice_company: Customer
) -> None:
    entry = add_list_entry(
        list="allow",
        key="customer",
        value=str(alice_company.pk),
        reason="long-standing",
        by=analyst,
    )

    removed = remove_list_entry(entry, note="contract ended", by=analyst)

    assert removed.removed_at is not None and removed.removed_by == analyst
    [event] = audit_events("fraud.list_entry_removed", entry)
    assert event.details["note"] == "contract ended"
    with pytest.raises(InvalidListEntry):
        remove_list_entry(entry, note="", by=analyst)
