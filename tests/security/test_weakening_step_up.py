"""Issue 17, item 12: a change that weakens a control needs step-up and a named audit event.

On a stale session (second factor verified long ago) an analyst set the failure limit to
1000 and the new-card limit to 10,000,000 SEK. The thresholds' page now opens only with
a fresh second factor, the service refuses a loosening without one, and the event names
what was loosened; enabling an account is the same.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse

from payments.exceptions import InvalidRiskSettings
from payments.fraud import update_risk_settings
from payments.fraud.selectors import get_risk_settings
from payments.fraud.services import ensure_risk_settings
from security.models import User
from security.roles import FRAUD_ANALYST, SECURITY_OFFICER
from tests.factories import audit_events, make_user

pytestmark = pytest.mark.django_db

LOOSE = {"max_failed_attempts": "1000", "new_card_limits": "SEK 10000000.00"}


def _with_role(username: str, role: str) -> User:
    user = make_user(username, is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


def _later() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(minutes=8)


def test_a_stale_session_cannot_loosen_the_risk_thresholds_in_the_admin(
    admin_client_for: Callable[[User], Client],
) -> None:
    analyst = _with_role("fiona", FRAUD_ANALYST)
    before = ensure_risk_settings()
    client = admin_client_for(analyst)
    url = f"/admin/payments/risksettings/{before.pk}/change/"

    with time_machine.travel(_later(), tick=False):
        page = client.get(url)
        posted = client.post(url, LOOSE)

    assert reverse("security:step_up") in page["Location"]
    assert reverse("security:step_up") in posted["Location"]
    after = get_risk_settings()
    assert (after.max_failed_attempts, after.new_card_limits) == (
        before.max_failed_attempts,
        before.new_card_limits,
    )
    assert audit_events("fraud.risk_settings_changed") == []


def test_the_service_refuses_a_loosening_without_a_fresh_factor_but_not_a_tightening() -> None:
    analyst = _with_role("fiona", FRAUD_ANALYST)
    stale = RequestFactory().post("/")
    stale.session = {}  # type: ignore[assignment]
    stale.user = analyst

    with pytest.raises(InvalidRiskSettings) as caught:
        update_risk_settings(
            max_failed_attempts=1000, new_card_limits={"SEK": 1_000_000}, by=analyst, request=stale
        )
    assert caught.value.field == "step_up"
    with pytest.raises(InvalidRiskSettings):
        update_risk_settings(
            max_failed_attempts=5, new_card_limits={"EUR": 100_000}, by=analyst, request=stale
        )  # the SEK limit dropped: a loosening too

    update_risk_settings(
        max_failed_attempts=3,
        new_card_limits={"SEK": 500_000, "EUR": 50_000, "USD": 50_000},
        by=analyst,
        request=stale,
    )
    (event,) = audit_events("fraud.risk_settings_changed")
    assert event.details["weakened"] == []


def test_with_a_fresh_factor_the_loosening_is_saved_and_named(
    admin_client_for: Callable[[User], Client],
) -> None:
    analyst = _with_role("fiona", FRAUD_ANALYST)
    row = ensure_risk_settings()

    admin_client_for(analyst).post(f"/admin/payments/risksettings/{row.pk}/change/", LOOSE)

    (event,) = audit_events("fraud.risk_settings_changed")
    assert event.details["weakened"] == ["max_failed_attempts", "new_card_limits"]
    assert get_risk_settings().max_failed_attempts == 1000


def test_enabling_an_account_needs_a_fresh_factor_and_is_named(
    admin_client_for: Callable[[User], Client],
) -> None:
    officer = _with_role("sofia", SECURITY_OFFICER)
    dormant = make_user("dormant", is_staff=True, is_active=False)
    client = admin_client_for(officer)
    url = f"/admin/security/user/{dormant.pk}/change/"
    form = {"username": "dormant", "first_name": "", "last_name": "", "is_active": "on"}

    with time_machine.travel(_later(), tick=False):
        stale = client.post(url, form)
    dormant.refresh_from_db()
    assert reverse("security:step_up") in stale["Location"] and not dormant.is_active

    client.post(url, form)

    dormant.refresh_from_db()
    assert dormant.is_active
    (event,) = audit_events("security.account_enabled", dormant)
    assert event.actor_id == str(officer.pk)
