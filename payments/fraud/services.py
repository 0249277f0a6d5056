"""The risk engine's state changes: thresholds and holds (a fraud analyst's decision on a held
payment charges or fails it: ``payments.services.risk_reviews``)."""

from __future__ import annotations

import re
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from payments.exceptions import InvalidRiskSettings, RiskReviewRefused
from payments.fraud.models import RiskHold, RiskSettings
from payments.step_up import require_step_up
from security.actors import Person, user_of

DECIDE_PERMISSION = "payments.decide_risk"
SETTINGS_PERMISSION = "payments.change_risksettings"
MAX_FAILED_ATTEMPTS_CEILING = 1000
CARD_TESTING_FIELDS = (
    "max_new_cards_per_customer",
    "max_new_cards_per_address",
    "min_card_amounts",
)
SCORE_FIELDS = ("review_score", "block_score")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def ensure_risk_settings() -> RiskSettings:
    """The one row of thresholds, stored with the defaults when missing (a fresh database:
    the first card attempt, the admin's list or a change stores it). Not audited: the
    defaults are the code's, not anyone's decision; every change is (``update_risk_settings``)."""
    row, _created = RiskSettings.objects.get_or_create(pk=RiskSettings.SINGLETON_PK)
    return row


def _per_currency(amounts: object, field: str, what: str) -> None:
    if not isinstance(amounts, dict):
        raise InvalidRiskSettings(_("a limit per currency"), field=field)
    for currency, limit in amounts.items():
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise InvalidRiskSettings(
                _("%(code)s is not an ISO 4217 currency code (such as SEK)")
                % {"code": repr(currency)},
                field=field,
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise InvalidRiskSettings(
                _("the %(what)s for %(currency)s must be more than zero")
                % {"what": what, "currency": currency},
                field=field,
            )


def validate_card_testing(
    *,
    max_new_cards_per_customer: object,
    max_new_cards_per_address: object,
    min_card_amounts: object,
) -> None:
    """Raise InvalidRiskSettings naming the field for a card-testing threshold out of range."""
    for name, value in (
        ("max_new_cards_per_customer", max_new_cards_per_customer),
        ("max_new_cards_per_address", max_new_cards_per_address),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
            raise InvalidRiskSettings(_("a whole number from 1 to 100"), field=name)
    _per_currency(min_card_amounts, "min_card_amounts", _("minimum"))


def validate_scores(*, review_score: object, block_score: object) -> None:
    """Raise InvalidRiskSettings naming the field for a score threshold outside 0-99, or a
    review threshold above the block threshold (the review band would be empty and odd)."""
    for name, value in (("review_score", review_score), ("block_score", block_score)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 99:
            raise InvalidRiskSettings(_("a whole number from 0 to 99"), field=name)
    assert isinstance(review_score, int) and isinstance(block_score, int)
    if review_score > block_score:
        raise InvalidRiskSettings(
            _("the review score must not be above the block score (%(block)s)")
            % {"block": block_score},
            field="review_score",
        )


def validate_risk_settings(*, max_failed_attempts: object, new_card_limits: object) -> None:
    """Raise InvalidRiskSettings naming the field for any threshold that is out of range."""
    if (
        isinstance(max_failed_attempts, bool)
        or not isinstance(max_failed_attempts, int)
        or not 1 <= max_failed_attempts <= MAX_FAILED_ATTEMPTS_CEILING
    ):
        raise InvalidRiskSettings(
            _("a whole number from 1 to %(most)s") % {"most": MAX_FAILED_ATTEMPTS_CEILING},
            field="max_failed_attempts",
        )
    if not isinstance(new_card_limits, dict):
        raise InvalidRiskSettings(_("a limit per currency"), field="new_card_limits")
    for currency, limit in new_card_limits.items():
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise InvalidRiskSettings(
                _("%(code)s is not an ISO 4217 currency code (such as SEK)")
                % {"code": repr(currency)},
                field="new_card_limits",
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
            raise InvalidRiskSettings(
                _("the limit for %(currency)s must be more than zero") % {"currency": currency},
                field="new_card_limits",
            )


def weakened_thresholds(row: RiskSettings, wanted: dict[str, Any]) -> list[str]:
    """The thresholds that ``wanted`` would loosen: more failures or new cards allowed, a
    new-card review limit raised or dropped, a minimum amount lowered or dropped."""
    weaker: list[str] = [
        name
        for name in (
            "max_failed_attempts",
            "max_new_cards_per_customer",
            "max_new_cards_per_address",
        )
        if name in wanted and wanted[name] > getattr(row, name)
    ]
    # A higher score threshold lets more payments through.
    weaker += [name for name in SCORE_FIELDS if wanted.get(name, -1) > getattr(row, name)]
    limits = wanted["new_card_limits"]
    if any(limits.get(code, limit + 1) > limit for code, limit in row.new_card_limits.items()):
        weaker.append("new_card_limits")
    minimums = wanted.get("min_card_amounts", row.min_card_amounts)
    if any(minimums.get(code, 0) < least for code, least in row.min_card_amounts.items()):
        weaker.append("min_card_amounts")
    return sorted(weaker)


def update_risk_settings(
    *,
    max_failed_attempts: int,
    new_card_limits: dict[str, int],
    by: Person,
    request: HttpRequest | None = None,
    **card_testing: Any,
) -> RiskSettings:
    """Change the risk thresholds: permission, valid values (else nothing changes), a fresh
    second factor for any change that loosens them; audited with the values before and
    after and the thresholds loosened (``weakened``)."""
    if not (hasattr(by, "has_perm") and by.has_perm(SETTINGS_PERMISSION)):
        raise InvalidRiskSettings(
            _("changing risk thresholds needs the fraud analyst's permission")
        )
    validate_risk_settings(max_failed_attempts=max_failed_attempts, new_card_limits=new_card_limits)
    unknown = sorted(set(card_testing) - set(CARD_TESTING_FIELDS) - set(SCORE_FIELDS))
    if unknown:
        raise InvalidRiskSettings(_("not a threshold"), field=unknown[0])
    current = ensure_risk_settings()  # the row exists before it is locked
    if set(card_testing) & set(CARD_TESTING_FIELDS):
        validate_card_testing(
            **{name: card_testing.get(name, getattr(current, name)) for name in CARD_TESTING_FIELDS}
        )
    if set(card_testing) & set(SCORE_FIELDS):
        validate_scores(
            **{name: card_testing.get(name, getattr(current, name)) for name in SCORE_FIELDS}
        )
    wanted = {
        "max_failed_attempts": max_failed_attempts,
        "new_card_limits": new_card_limits,
        **card_testing,
    }
    with transaction.atomic():
        row = RiskSettings.objects.select_for_update().get(pk=RiskSettings.SINGLETON_PK)
        changes = {
            name: {"before": getattr(row, name), "after": value}
            for name, value in wanted.items()
            if getattr(row, name) != value
        }
        if not changes:
            return row
        weakened = weakened_thresholds(row, wanted)
        if weakened:
            # A stale session must not loosen the fraud rules (issue 17, item 12).
            require_step_up(
                request, by, to=_("loosen the risk thresholds"), refused=InvalidRiskSettings
            )
        for name, value in wanted.items():
            setattr(row, name, value)
        row.updated_at = timezone.now()
        row.updated_by = user_of(by)
        row.save()
        record(
            "fraud.risk_settings_changed",
            actor=by,
            obj=row,
            request=request,
            changes=changes,
            weakened=weakened,
        )
    return row


def lift_risk_hold(
    hold: RiskHold, *, note: str, by: Person, request: HttpRequest | None
) -> RiskHold:
    """A fraud analyst lifts a card-testing hold after reviewing it (permission, step-up, a
    note); the new-card count of the customer or address starts again from now. Audited
    ``fraud.hold_lifted``."""
    if not (hasattr(by, "has_perm") and by.has_perm(DECIDE_PERMISSION)):
        raise RiskReviewRefused(_("lifting a hold needs the fraud analyst's permission"))
    require_step_up(request, by, to=_("lift a hold"), refused=RiskReviewRefused)
    note = note.strip() if isinstance(note, str) else ""
    if not note:
        raise RiskReviewRefused(_("say what the review found"), field="note")
    with transaction.atomic():
        locked = RiskHold.objects.select_for_update().get(pk=hold.pk)
        if locked.lifted_at is not None:
            return locked
        locked.lifted_at = timezone.now()
        locked.lifted_by = user_of(by)
        locked.lift_note = note[:500]
        locked.save(update_fields=["lifted_at", "lifted_by", "lift_note"])
        record(
            "fraud.hold_lifted",
            actor=by,
            obj=locked,
            request=request,
            kind=locked.kind,
            customer_id=locked.customer_id,
            address=locked.address,
            note=locked.lift_note,
        )
    return locked
