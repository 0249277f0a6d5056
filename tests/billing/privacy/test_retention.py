"""The daily privacy retention: unused saved cards deleted through the vault, portal
accounts left unused deactivated, expired exports erased; each audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from billing.models import Customer
from billing.privacy.models import DataExport
from billing.privacy.services import apply_privacy_retention
from payments.models import CardSecret, PaymentMethod
from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


def test_unused_cards_and_idle_portal_accounts_go_recent_ones_stay(
    astrid: User, astrid_card: PaymentMethod, bob: User, settings: Any
) -> None:
    settings.PRIVACY_CARD_UNUSED_MONTHS = 18
    settings.PRIVACY_PORTAL_INACTIVE_MONTHS = 24
    User.objects.filter(pk=bob.pk).update(last_login=timezone.now())

    assert apply_privacy_retention()["payments.unused_cards_deleted"] == 0
    with time_machine.travel(timezone.now() + timedelta(days=30 * 19)):
        done = apply_privacy_retention()
    assert done["payments.unused_cards_deleted"] == 1
    assert done["portal_users_deactivated"] == 0  # 19 months: not yet 24
    astrid_card.refresh_from_db()
    assert astrid_card.status == PaymentMethod.Status.DELETED
    assert not CardSecret.objects.filter(token=astrid_card.token).exists()
    assert audit_events("vault.payment_method_deleted", astrid_card)
    assert audit_events("privacy.unused_cards_deleted")

    with time_machine.travel(timezone.now() + timedelta(days=30 * 25)):
        done = apply_privacy_retention()
    assert done["portal_users_deactivated"] == 2
    assert not User.objects.get(pk=astrid.pk).is_active
    assert audit_events("privacy.portal_users_deactivated")[0].details["count"] == 2


def test_expired_exports_are_erased(astrid_customer: Customer, astrid: User) -> None:
    now = timezone.now()
    export = DataExport.objects.create(
        customer=astrid_customer,
        requested_by=astrid,
        requested_at=now,
        status=DataExport.Status.READY,
        content=b"PK zip",
        token_sha256="0" * 64,
        expires_at=now + timedelta(hours=24),
    )
    assert apply_privacy_retention()["exports_expired"] == 0
    with time_machine.travel(now + timedelta(hours=25)):
        assert apply_privacy_retention()["exports_expired"] == 1
    export.refresh_from_db()
    assert export.status == DataExport.Status.EXPIRED
    assert export.content is None
