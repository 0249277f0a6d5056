"""Containment actions a security officer takes during an incident, from the admin.

Each needs the containment permission and a fresh second factor (checked here, and again
by the service of the app it acts on: fail closed), changes that app only through its
service (which writes its own audit event), and adds the step to the incident's timeline
with an ``incident.containment_applied`` event, all in one transaction. Undoing:
``lift_card_payment_freeze``; a disabled account is enabled in its account form (step-up);
rotated keys, ended sessions and revoked API tokens are not undone (nothing to give back).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext as _

from audit import record
from audit.incidents.exceptions import ContainmentRefused
from audit.incidents.models import Incident
from audit.incidents.services import record_containment
from payments import freeze
from payments.exceptions import PaymentsError
from payments.vault.services import rotate_data_key, rotate_entry_key
from security import containment as security_containment
from security.exceptions import SecurityError
from security.selectors import is_step_up_fresh

CONTAIN_PERMISSION = "audit.contain_incident"
T = TypeVar("T")


def _check_actor(by: Any, request: HttpRequest | None) -> None:
    if not (getattr(by, "is_active", False) and by.has_perm(CONTAIN_PERMISSION)):
        raise ContainmentRefused(_("containment needs the Security officer role"), field="user")
    if request is None or not is_step_up_fresh(request):
        raise ContainmentRefused(
            _("confirm your second factor again (step-up) to take a containment action"),
            field="step_up",
        )


def _contain(
    incident: Incident | None,
    *,
    action: str,
    describe: Callable[[T], str],
    work: Callable[[], T],
    by: Any,
    request: HttpRequest | None,
) -> T:
    _check_actor(by, request)
    try:
        with transaction.atomic():
            result = work()
            text = describe(result)
            record_containment(incident, action=action, text=text, by=by)
            record(
                "incident.containment_applied",
                actor=by,
                obj=incident,
                request=request,
                containment=action,
                outcome=text,
            )
    except (SecurityError, PaymentsError) as exc:
        field = getattr(exc, "field", "") or ""
        raise ContainmentRefused(str(getattr(exc, "message", exc)), field=field) from None
    return result


def freeze_card_payments(
    *, incident: Incident | None, reason: str, by: Any, request: HttpRequest | None
) -> Any:
    """Stop every new card payment (``payments.freeze``) until lifted."""
    return _contain(
        incident,
        action="freeze_card_payments",
        describe=lambda f: f"card payments frozen: {f.reason}",
        work=lambda: freeze.freeze_card_payments(reason=reason, by=by, request=request),
        by=by,
        request=request,
    )


def lift_card_payment_freeze(
    *, incident: Incident | None, by: Any, request: HttpRequest | None
) -> Any:
    """Reopen card payments (undoes ``freeze_card_payments``)."""
    return _contain(
        incident,
        action="lift_card_payment_freeze",
        describe=lambda f: "card payments reopened",
        work=lambda: freeze.lift_card_payment_freeze(by=by, request=request),
        by=by,
        request=request,
    )


def revoke_user_sessions(
    *, incident: Incident | None, user: Any, by: Any, request: HttpRequest | None
) -> int:
    """End every session of one account: its next request needs a new login."""
    return _contain(
        incident,
        action="revoke_user_sessions",
        describe=lambda n: f"{n} session(s) of {user.get_username()} ended",
        work=lambda: security_containment.revoke_user_sessions(user=user, by=by, request=request),
        by=by,
        request=request,
    )


def revoke_staff_sessions(
    *, incident: Incident | None, by: Any, request: HttpRequest | None
) -> int:
    """End every staff session but the acting officer's own."""
    return _contain(
        incident,
        action="revoke_staff_sessions",
        describe=lambda n: f"{n} staff session(s) ended",
        work=lambda: security_containment.revoke_staff_sessions(by=by, request=request),
        by=by,
        request=request,
    )


def revoke_api_tokens(
    *,
    incident: Incident | None,
    application: Any = None,
    user: Any = None,
    by: Any,
    request: HttpRequest | None,
) -> int:
    """Revoke the API tokens of one client, of one user, or (neither given) of every client."""

    def describe(n: int) -> str:
        if application is not None:
            return (
                f"{n} API token(s) of client {application.name} ({application.client_id}) revoked"
            )
        if user is not None:
            return f"{n} API token(s) of {user.get_username()} revoked"
        return f"{n} API token(s) of all clients revoked"

    return _contain(
        incident,
        action="revoke_api_tokens",
        describe=describe,
        work=lambda: security_containment.revoke_api_tokens(
            application=application, user=user, by=by, request=request
        ),
        by=by,
        request=request,
    )


def disable_staff_account(
    *, incident: Incident | None, user: Any, by: Any, request: HttpRequest
) -> Any:
    """Disable a staff account and end its sessions."""
    return _contain(
        incident,
        action="disable_staff_account",
        describe=lambda u: f"account {u.get_username()} disabled",
        work=lambda: security_containment.disable_staff_account(user=user, by=by, request=request),
        by=by,
        request=request,
    )


def rotate_vault_keys(*, incident: Incident | None, by: Any, request: HttpRequest | None) -> Any:
    """A new data key (the old one turns decrypt-only and is re-encrypted away by its job)
    and a new card-entry key pair for the browser, now."""

    def rotate() -> tuple[Any, Any]:
        return rotate_data_key(by=by), rotate_entry_key(by=by)

    return _contain(
        incident,
        action="rotate_vault_keys",
        describe=lambda keys: f"new data key {keys[0].hex_id}, new card-entry key {keys[1].kid}",
        work=rotate,
        by=by,
        request=request,
    )
