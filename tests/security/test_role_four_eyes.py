"""Issue 17, item 9: a security officer granted themselves any role.

Nobody changes their own roles; granting a role that can move money or read card data
needs a second security officer's approval (four eyes), and each step is audited.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from security.models import RoleGrant, User
from security.roles import (
    ACCOUNTANT,
    BILLING_CLERK,
    FOUR_EYES_ROLES,
    FRAUD_ANALYST,
    PAYMENTS_OPERATOR,
    SECURITY_OFFICER,
)
from tests.factories import audit_events, make_user

pytestmark = pytest.mark.django_db


def _officer(name: str) -> User:
    user = make_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=SECURITY_OFFICER))
    return User.objects.get(pk=user.pk)


def _roles(user: User) -> list[str]:
    return sorted(user.groups.values_list("name", flat=True))


@pytest.fixture
def sofia() -> User:
    return _officer("sofia")


@pytest.fixture
def tove() -> User:
    return _officer("tove")


@pytest.fixture
def kim() -> User:
    return make_user("kim", is_staff=True)


def test_the_roles_that_move_money_or_read_cards_need_four_eyes() -> None:
    assert set(FOUR_EYES_ROLES) == {PAYMENTS_OPERATOR, FRAUD_ANALYST, SECURITY_OFFICER}


@pytest.mark.parametrize("role", [PAYMENTS_OPERATOR, ACCOUNTANT])
def test_an_officer_cannot_change_their_own_roles(
    sofia: User, role: str, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(sofia)

    client.post(
        reverse("security:user_roles", args=[sofia.pk]), {"roles": [SECURITY_OFFICER, role]}
    )

    assert _roles(sofia) == [SECURITY_OFFICER]
    assert audit_events("security.roles_changed") == []
    assert not RoleGrant.objects.exists()


def test_a_money_role_waits_for_a_second_officer_then_applies(
    sofia: User, tove: User, kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    asker = admin_client_for(sofia)
    asker.post(reverse("security:user_roles", args=[kim.pk]), {"roles": [PAYMENTS_OPERATOR]})

    grant = RoleGrant.objects.get()
    assert grant.status == RoleGrant.Status.PENDING and _roles(kim) == []
    (asked,) = audit_events("security.role_grant_requested", kim)
    assert asked.details["needs_approval_for"] == [PAYMENTS_OPERATOR]

    # The officer who asked cannot approve it.
    asker.post(reverse("security:role_grants"), {"grant": grant.pk, "decision": "approve"})
    assert _roles(kim) == [] and RoleGrant.objects.get().status == RoleGrant.Status.PENDING

    page = admin_client_for(tove).get(reverse("security:role_grants"))
    assert "kim" in page.content.decode()
    admin_client_for(tove).post(
        reverse("security:role_grants"), {"grant": grant.pk, "decision": "approve"}
    )

    assert _roles(kim) == [PAYMENTS_OPERATOR]
    grant.refresh_from_db()
    assert (grant.status, grant.decided_by) == (RoleGrant.Status.APPROVED, tove)
    (approved,) = audit_events("security.role_grant_approved", kim)
    assert approved.actor_id == str(tove.pk) and approved.details["requested_by"] == "sofia"
    (changed,) = audit_events("security.roles_changed", kim)
    assert changed.details == {"before": [], "after": [PAYMENTS_OPERATOR]}


def test_the_owner_of_the_account_cannot_approve_their_own_grant(
    sofia: User, tove: User, admin_client_for: Callable[[User], Client]
) -> None:
    admin_client_for(sofia).post(
        reverse("security:user_roles", args=[tove.pk]), {"roles": [SECURITY_OFFICER, FRAUD_ANALYST]}
    )
    grant = RoleGrant.objects.get()

    admin_client_for(tove).post(
        reverse("security:role_grants"), {"grant": grant.pk, "decision": "approve"}
    )

    assert _roles(tove) == [SECURITY_OFFICER]
    assert audit_events("security.role_grant_approved") == []


def test_other_roles_and_removals_apply_at_once(
    sofia: User, kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(sofia)
    client.post(reverse("security:user_roles", args=[kim.pk]), {"roles": [BILLING_CLERK]})
    assert _roles(kim) == [BILLING_CLERK]

    kim.groups.add(Group.objects.get(name=PAYMENTS_OPERATOR))
    client.post(reverse("security:user_roles", args=[kim.pk]), {"roles": [BILLING_CLERK]})

    assert _roles(kim) == [BILLING_CLERK]
    assert not RoleGrant.objects.exists()


def test_an_approval_refuses_roles_that_changed_since_and_needs_step_up(
    sofia: User, tove: User, kim: User, admin_client_for: Callable[[User], Client]
) -> None:
    admin_client_for(sofia).post(
        reverse("security:user_roles", args=[kim.pk]), {"roles": [FRAUD_ANALYST]}
    )
    grant = RoleGrant.objects.get()
    approver = admin_client_for(tove)
    later = datetime.datetime.now(tz=datetime.UTC) + datetime.timedelta(minutes=8)
    with time_machine.travel(later, tick=False):
        stale = approver.post(
            reverse("security:role_grants"), {"grant": grant.pk, "decision": "approve"}
        )
    assert reverse("security:step_up") in stale["Location"]

    kim.groups.add(Group.objects.get(name=BILLING_CLERK))  # changed meanwhile
    approver.post(reverse("security:role_grants"), {"grant": grant.pk, "decision": "approve"})

    assert _roles(kim) == [BILLING_CLERK]
    assert RoleGrant.objects.get().status == RoleGrant.Status.PENDING
