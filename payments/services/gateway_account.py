"""The gateway account: the service account that reveals cards for the gateway call,
created on first use and kept per process while the card payment's own facts read the same
id for it."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction

from audit import SYSTEM, record
from payments.services.hot_statements import user_named

# This process's gateway account, by username: reused only while a statement the card
# payment runs anyway (its facts) reads the same id for that username, active.
_gateway_accounts: dict[str, Any] = {}


def gateway_account_for(account_id: int | None) -> Any:
    """The gateway account, ``account_id`` being its id just read in the caller's
    transaction: the one kept in this process if it is that account, else read anew.
    Its permission is checked live by the reveal itself."""
    username = settings.PAYMENTS_GATEWAY_ACCOUNT
    kept = _gateway_accounts.get(username)
    if kept is not None and account_id is not None and kept.pk == account_id:
        return kept
    account = get_gateway_account()
    _gateway_accounts[username] = account
    return account


def get_gateway_account() -> Any:
    """The service account that reveals cards for the gateway call (created on first use)."""
    user_model = get_user_model()
    username = settings.PAYMENTS_GATEWAY_ACCOUNT
    user = user_named.first(username)
    if user is not None:
        return user
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"is_staff": False, "is_active": True}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label="payments", codename="reveal_card")
            )
            record("payments.gateway_account_created", actor=SYSTEM, obj=user, username=username)
    return user
