"""Freezing every card payment: an incident's containment, reversible.

``freeze_card_payments`` stops new card payments at their one entry point
(``check_card_payments_open``, called first by ``pay_invoice`` and
``pay_invoice_with_new_card``); payments already in flight settle as usual, refunds and
bank transfers go on. ``lift_card_payment_freeze`` reopens them. Both need the
containment permission and a fresh second factor, and are audited.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from audit import record
from db.compiled import compiled
from payments.exceptions import CardPaymentsFrozen, FreezeRefused
from payments.freeze_models import CardPaymentFreeze

CONTAIN_PERMISSION = "audit.contain_incident"


def active_card_payment_freeze() -> CardPaymentFreeze | None:
    """The freeze in force, if any."""
    return CardPaymentFreeze.objects.filter(active=True).first()


@compiled()
def _freeze_in_force() -> QuerySet[Any]:
    """Asked by every card payment: compiled once per process, prepared per connection."""
    return CardPaymentFreeze.objects.filter(active=True).values("pk")[:1]


def check_card_payments_open() -> None:
    """Raise CardPaymentsFrozen while card payments are frozen (one prepared, indexed read:
    the partial unique index on the active freeze)."""
    if _freeze_in_force.first() is not None:
        raise CardPaymentsFrozen(_("Card payments are unavailable right now; nothing was charged."))


def _check_actor(by: Any, request: HttpRequest | None) -> None:
    from security.exceptions import StepUpRequired
    from security.services import require_step_up

    if not (getattr(by, "is_active", False) and by.has_perm(CONTAIN_PERMISSION)):
        raise FreezeRefused(
            _("freezing card payments needs the Security officer role"), field="user"
        )
    try:
        require_step_up(request, by)
    except StepUpRequired as exc:
        raise FreezeRefused(str(exc), field="step_up") from None


def freeze_card_payments(
    *, reason: str, by: Any, request: HttpRequest | None = None
) -> CardPaymentFreeze:
    """Stop every new card payment until lifted; security officers with step-up; audited."""
    _check_actor(by, request)
    reason = (reason or "").strip()
    if not reason:
        raise FreezeRefused(_("give the reason for the freeze"), field="reason")
    if len(reason) > 300:
        raise FreezeRefused(_("the reason is longer than 300 characters"), field="reason")
    try:
        with transaction.atomic():
            freeze = CardPaymentFreeze.objects.create(
                reason=reason, frozen_at=timezone.now(), frozen_by=by
            )
            record(
                "payments.card_payments_frozen",
                actor=by,
                obj=freeze,
                request=request,
                reason=reason,
            )
    except IntegrityError:  # one freeze at a time: the unique constraint decides races
        raise FreezeRefused(_("card payments are already frozen"), field="freeze") from None
    return freeze


def lift_card_payment_freeze(*, by: Any, request: HttpRequest | None = None) -> CardPaymentFreeze:
    """Reopen card payments; security officers with step-up; audited with how long it held."""
    _check_actor(by, request)
    with transaction.atomic():
        freeze = CardPaymentFreeze.objects.select_for_update().filter(active=True).first()
        if freeze is None:
            raise FreezeRefused(_("card payments are not frozen"), field="freeze")
        freeze.active, freeze.lifted_at, freeze.lifted_by = False, timezone.now(), by
        freeze.save(update_fields=["active", "lifted_at", "lifted_by"])
        record(
            "payments.card_payments_unfrozen",
            actor=by,
            obj=freeze,
            request=request,
            minutes=int((freeze.lifted_at - freeze.frozen_at).total_seconds() // 60),
        )
    return freeze
