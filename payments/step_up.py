"""A person's fresh second factor before a payments action (refund, risk review, lifting a
hold, deleting a saved card): security's step-up rule, refused as this app's error naming
the action. Below the services and the risk engine alike, so each can ask it."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _

from payments.exceptions import PaymentsError, RefundRefused
from security.actors import Actor
from security.exceptions import StepUpRequired
from security.services import require_step_up as security_step_up


def require_step_up(
    request: HttpRequest | None,
    by: Actor,
    *,
    to: str = "",
    refused: type[PaymentsError] = RefundRefused,
) -> None:
    """A person refunds (or decides a risk review) with a fresh second factor: security's
    step-up rule, refused as this app's error naming the action."""
    try:
        security_step_up(request, by)
    except StepUpRequired:
        raise refused(
            _("confirm your second factor again (step-up) to %(action)s")
            % {"action": to or _("refund")},
            field="step_up",
        ) from None
