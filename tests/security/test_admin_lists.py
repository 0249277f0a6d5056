"""Lists that serve their role: the user list shows roles and second factors (in constant
queries), the change-roles page says what each role is for."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from security import roles
from security.models import User
from tests.factories import make_user, with_role
from tests.mfa_helpers import give_totp_device

pytestmark = pytest.mark.django_db

USERS = reverse("admin:security_user_changelist")


def _officer() -> User:
    return with_role(make_user("sofia", is_staff=True), roles.SECURITY_OFFICER)


def test_the_user_list_shows_roles_and_who_has_a_second_factor(
    admin_client_for: Callable[[User], Client],
) -> None:
    client = admin_client_for(_officer())
    with_role(make_user("clara", is_staff=True, first_name="Clara"), roles.BILLING_CLERK)

    page = client.get(USERS).content.decode().split('id="result_list"')[1]

    clara_row = next(row for row in page.split("<tr") if ">clara<" in row)
    sofia_row = next(row for row in page.split("<tr") if ">sofia<" in row)
    assert "Billing clerk" in clara_row and 'alt="False"' in clara_row
    assert "Security officer" in sofia_row and 'alt="True"' in sofia_row


def test_the_user_list_runs_as_many_queries_with_ten_times_the_users(
    admin_client_for: Callable[[User], Client],
) -> None:
    client = admin_client_for(_officer())
    for index in range(3):
        give_totp_device(with_role(make_user(f"a{index}", is_staff=True), roles.ACCOUNTANT))
    client.get(USERS)
    with CaptureQueriesContext(connection) as before:
        client.get(USERS)
    for index in range(27):
        with_role(make_user(f"b{index}", is_staff=True), roles.AUDITOR)
    with CaptureQueriesContext(connection) as after:
        client.get(USERS)

    assert len(after) == len(before)


def test_the_roles_page_says_what_each_role_is_for(
    admin_client_for: Callable[[User], Client],
) -> None:
    client = admin_client_for(_officer())
    clara = make_user("clara", is_staff=True)

    page = client.get(reverse("security:user_roles", args=[clara.pk])).content.decode()

    assert 'class="roles-table"' in page
    for name in roles.STAFF_ROLES:
        assert name in page
    assert "reads the books and downloads signed documents; changes nothing" in page
    assert "four eyes: a second security officer approves" in page
