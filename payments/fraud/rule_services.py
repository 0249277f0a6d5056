"""Fraud analysts' rules and lists: every change checked, versioned (rules) and audited.

Rules are checked by the rule language (``payments.fraud.expressions``) against the
features registry before anything is stored; a rule that does not parse or names an
unknown feature raises ``InvalidFraudRule`` (field ``expression``) and nothing changes.
List values are normalized per key (a CIDR parsed by ``ipaddress``, an email lower-cased,
a country checked against ISO 3166-1); a value that does not parse raises
``InvalidListEntry`` (field ``value``).
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from billing.validators import validate_country
from payments.exceptions import InvalidFraudRule, InvalidListEntry, PaymentsError
from payments.fraud.expressions import CompiledExpression, ExpressionError, compile_expression
from payments.fraud.models import FraudListEntry, FraudRule, FraudRuleVersion, RuleAction
from security.actors import Person, user_of

RULES_PERMISSION = "payments.change_fraudrule"
ADD_RULES_PERMISSION = "payments.add_fraudrule"
LISTS_PERMISSION = "payments.add_fraudlistentry"
REMOVE_LIST_PERMISSION = "payments.change_fraudlistentry"
RULE_FIELDS = ("action", "expression", "description", "enabled", "position")
# Networks wider than these would block (or allow) a large part of the internet at once.
WIDEST_PREFIX = {4: 8, 6: 16}
# IPv6 networks on nibble boundaries (/16, /20, ... /128), as they are delegated: it keeps
# the networks an address is looked up in to a fixed 29 (rule_selectors.SLOTS).
PREFIX_STEP = {4: 1, 6: 4}
_BIN = re.compile(r"^[0-9]{6,8}$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{16,64}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def feature_kinds() -> dict[str, str]:
    """The features a rule may name, with their kind (number, text, bool)."""
    from payments.fraud.features import FEATURES

    return {name: spec.kind for name, spec in FEATURES.items()}


def check_rule_expression(text: object) -> CompiledExpression:
    """The compiled expression, or InvalidFraudRule naming the position and the cause."""
    try:
        return compile_expression(text, feature_kinds())
    except ExpressionError as exc:
        raise InvalidFraudRule(exc.message, field="expression") from None


def _check_rule(values: dict[str, Any]) -> dict[str, Any]:
    action = values.get("action")
    if action not in RuleAction.values:
        raise InvalidFraudRule(_("choose allow, block, step-up or review"), field="action")
    compiled = check_rule_expression(values.get("expression"))
    description = values.get("description")
    if not isinstance(description, str) or not description.strip():
        raise InvalidFraudRule(_("say what the rule catches"), field="description")
    if len(description) > 300:
        raise InvalidFraudRule(_("at most 300 characters"), field="description")
    position = values.get("position", 0)
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= 10_000:
        raise InvalidFraudRule(_("a whole number from 0 to 10000"), field="position")
    enabled = values.get("enabled", False)
    if not isinstance(enabled, bool):
        raise InvalidFraudRule(_("on or off"), field="enabled")
    return {
        "action": action,
        "expression": compiled.text,
        "description": description.strip(),
        "enabled": enabled,
        "position": position,
    }


def _permitted(by: Person, permission: str, refused: type[PaymentsError], what: str) -> None:
    if not (hasattr(by, "has_perm") and by.has_perm(permission)):
        raise refused(
            _("%(what)s needs the fraud analyst's permission") % {"what": what}, field="user"
        )


def _version(rule: FraudRule, by: Person) -> FraudRuleVersion:
    return FraudRuleVersion.objects.create(
        rule=rule,
        version=rule.version,
        changed_at=rule.updated_at,
        changed_by=user_of(by),
        **{name: getattr(rule, name) for name in RULE_FIELDS},
    )


def create_fraud_rule(
    *,
    action: str,
    expression: str,
    description: str,
    enabled: bool = False,
    position: int = 0,
    by: Person,
    request: HttpRequest | None = None,
) -> FraudRule:
    """A new rule, checked against the features (else nothing is stored), with its version
    1 row; audited ``fraud.rule_created``."""
    _permitted(by, ADD_RULES_PERMISSION, InvalidFraudRule, _("adding a fraud rule"))
    values = _check_rule(
        {
            "action": action,
            "expression": expression,
            "description": description,
            "enabled": enabled,
            "position": position,
        }
    )
    now = timezone.now()
    with transaction.atomic():
        rule = FraudRule.objects.create(
            created_at=now, updated_at=now, updated_by=user_of(by), version=1, **values
        )
        _version(rule, by)
        record(
            "fraud.rule_created",
            actor=by,
            obj=rule,
            request=request,
            version=1,
            rule_action=values["action"],
            **{name: value for name, value in values.items() if name != "action"},
        )
    return rule


def update_fraud_rule(
    rule: FraudRule, *, by: Person, request: HttpRequest | None = None, **changes: Any
) -> FraudRule:
    """Change a rule (any of action, expression, description, enabled, position): checked
    (else nothing changes), a new version row (the old ones kept), audited
    ``fraud.rule_changed`` with the values before and after."""
    _permitted(by, RULES_PERMISSION, InvalidFraudRule, _("changing a fraud rule"))
    unknown = sorted(set(changes) - set(RULE_FIELDS))
    if unknown:
        raise InvalidFraudRule(_("not a field of a rule"), field=unknown[0])
    with transaction.atomic():
        locked = FraudRule.objects.select_for_update().get(pk=rule.pk)
        values = _check_rule(
            {name: changes.get(name, getattr(locked, name)) for name in RULE_FIELDS}
        )
        diff = {
            name: {"before": getattr(locked, name), "after": value}
            for name, value in values.items()
            if getattr(locked, name) != value
        }
        if not diff:
            return locked
        for name, value in values.items():
            setattr(locked, name, value)
        locked.version += 1
        locked.updated_at = timezone.now()
        locked.updated_by = user_of(by)
        locked.save()
        _version(locked, by)
        record(
            "fraud.rule_changed",
            actor=by,
            obj=locked,
            request=request,
            version=locked.version,
            changes=diff,
        )
    return locked


def normalize_list_value(key: str, value: object) -> str:
    """The stored form of a list value for its key; InvalidListEntry (field ``value``) when
    it does not parse."""
    if key not in FraudListEntry.Key.values:
        raise InvalidListEntry(_("choose what the entry is keyed on"), field="key")
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        raise InvalidListEntry(_("give the value to match"), field="value")
    if key == FraudListEntry.Key.IP:
        return _network(text)
    if key == FraudListEntry.Key.COUNTRY:
        text = text.upper()
        try:
            validate_country(text)
        except ValidationError:
            raise InvalidListEntry(
                _("%(value)s is not an ISO 3166-1 country code (such as SE)") % {"value": text},
                field="value",
            ) from None
        return text
    if key == FraudListEntry.Key.BIN:
        if not _BIN.match(text):
            raise InvalidListEntry(_("a BIN is the card's first 6 to 8 digits"), field="value")
        return text
    if key == FraudListEntry.Key.CARD:
        text = text.lower()
        if not _FINGERPRINT.match(text):
            raise InvalidListEntry(
                _("a card fingerprint as shown on the card's page (hexadecimal)"), field="value"
            )
        return text
    if key == FraudListEntry.Key.EMAIL:
        text = text.lower()
        try:
            validate_email(text)
        except ValidationError:
            raise InvalidListEntry(_("not an email address"), field="value") from None
        return text
    if key == FraudListEntry.Key.EMAIL_DOMAIN:
        text = text.lower().removeprefix("@")
        if not _DOMAIN.match(text):
            raise InvalidListEntry(_("not a domain name (such as example.com)"), field="value")
        return text
    from billing.models import Customer

    if not text.isdigit() or not Customer.objects.filter(pk=int(text)).exists():
        raise InvalidListEntry(_("no customer with this number"), field="value")
    return str(int(text))


def _network(text: str) -> str:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidListEntry(
            _("%(value)s is not an IP address or a network in CIDR form (such as 192.0.2.0/24)")
            % {"value": text},
            field="value",
        ) from None
    if network.prefixlen < WIDEST_PREFIX[network.version]:
        raise InvalidListEntry(
            _("a network wider than /%(prefix)s is not allowed")
            % {"prefix": WIDEST_PREFIX[network.version]},
            field="value",
        )
    if network.prefixlen % PREFIX_STEP[network.version]:
        raise InvalidListEntry(
            _("an IPv6 network's prefix is a multiple of 4 (such as /48 or /64)"), field="value"
        )
    return str(network)


def add_list_entry(
    *,
    list: str,
    key: str,
    value: str,
    reason: str,
    expires_at: datetime.datetime | None = None,
    by: Person,
    request: HttpRequest | None = None,
) -> FraudListEntry:
    """An allow or block list entry, normalized (else nothing is stored); audited
    ``fraud.list_entry_added``."""
    _permitted(by, LISTS_PERMISSION, InvalidListEntry, _("changing the fraud lists"))
    if list not in FraudListEntry.List.values:
        raise InvalidListEntry(_("choose the allow list or the block list"), field="list")
    normalized = normalize_list_value(key, value)
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        raise InvalidListEntry(_("say why"), field="reason")
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidListEntry(_("the expiry must be in the future"), field="expires_at")
    with transaction.atomic():
        entry = FraudListEntry.objects.create(
            list=list,
            key=key,
            value=normalized,
            reason=reason[:500],
            added_at=now,
            added_by=user_of(by),
            expires_at=expires_at,
        )
        record(
            "fraud.list_entry_added",
            actor=by,
            obj=entry,
            request=request,
            list=list,
            key=key,
            value=normalized,
            reason=entry.reason,
            expires_at=expires_at.isoformat() if expires_at else None,
        )
    return entry


def remove_list_entry(
    entry: FraudListEntry, *, note: str, by: Person, request: HttpRequest | None = None
) -> FraudListEntry:
    """Take an entry off its list (it stays as a record, no longer matching), with a note;
    audited ``fraud.list_entry_removed``."""
    _permitted(by, REMOVE_LIST_PERMISSION, InvalidListEntry, _("changing the fraud lists"))
    note = note.strip() if isinstance(note, str) else ""
    if not note:
        raise InvalidListEntry(_("say why the entry is removed"), field="removal_note")
    with transaction.atomic():
        locked = FraudListEntry.objects.select_for_update().get(pk=entry.pk)
        if locked.removed_at is not None:
            return locked
        locked.removed_at = timezone.now()
        locked.removed_by = user_of(by)
        locked.removal_note = note[:500]
        locked.save(update_fields=["removed_at", "removed_by", "removal_note"])
        record(
            "fraud.list_entry_removed",
            actor=by,
            obj=locked,
            request=request,
            list=locked.list,
            key=locked.key,
            value=locked.value,
            note=locked.removal_note,
        )
    return locked
