"""Payments' step-up check: security's rule (a fresh second factor for a sensitive action),
refused as this app's error naming the action. Below the services and the fraud and
saved-card modules, which all ask it (refunds, risk reviews and thresholds, holds, a
saved card's deletion).
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _

from payments.exceptions import PaymentsError, RefundRefused
from security.actors import Actor


def require_step_up(
    request: HttpRequest | None,
    by: Actor,
    *,
    to: str = "",
    refused: type[PaymentsError] = RefundRefused,
) -> None:
    """A person refunds (or decides a risk review) with a fresh second factor: security's
    step-up rule, refused as this app's error naming the action."""
    from security.exceptions import StepUpRequired
    from security.services import require_step_up as security_step_up

    try:
        security_step_up(request, by)
    except StepUpRequired:
        raise refused(
            _("confirm your second factor again (step-up) to %(action)s")
            % {"action": to or _("refund")},
            field="step_up",
        ) from None
