"""Issue 17, item 2: a billing clerk charged a customer's saved card.

The clerk linked their own staff user to the customer (admin, portal accounts), then
paid the customer's invoice in the portal with the customer's saved card. Staff can
never be portal accounts, the portal refuses every staff session, and linking is
audited by name.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from billing import services
from billing.exceptions import InvalidInput
from billing.models import Customer, Invoice, PortalAccount
from payments.models import Payment, PaymentMethod
from security.models import User
from tests.factories import audit_events, make_user
from tests.payments.conftest import vault_keyring  # noqa: F401 - a keyring per test
from tests.payments.fixtures import APPROVED, saved_card, thousand_sek_invoice  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_clerk(clerk: User) -> User:
    clerk.groups.add(Group.objects.get(name="Billing clerk"))
    return User.objects.get(pk=clerk.pk)


def test_a_clerk_cannot_link_their_own_staff_user_to_a_customer_in_the_admin(
    billing_clerk: User, alice_company: Customer, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(billing_clerk)

    response = client.post(
        "/admin/billing/portalaccount/add/",
        {"user": billing_clerk.pk, "customer": alice_company.pk},
        follow=True,
    )

    assert not PortalAccount.objects.filter(user=billing_clerk).exists()
    assert "staff can never have a portal account" in response.content.decode()
    assert audit_events("customer.portal_account_linked") == []


@pytest.mark.parametrize("how", ["staff flag", "staff role only", "superuser"])
def test_the_service_refuses_every_kind_of_staff_account(
    how: str, alice_company: Customer, clerk: User
) -> None:
    target = make_user(f"target-{how.replace(' ', '-')}")
    if how == "staff flag":
        target.is_staff = True
    elif how == "superuser":
        target.is_superuser = True
    target.save()
    if how == "staff role only":
        target.groups.add(Group.objects.get(name="Payments operator"))

    with pytest.raises(InvalidInput) as caught:
        services.link_portal_account(user=target, customer=alice_company, by=clerk)

    assert caught.value.field == "user"
    assert not PortalAccount.objects.exists()


def test_a_staff_session_is_refused_by_every_portal_page_even_with_a_link(
    billing_clerk: User,
    alice_company: Customer,
    thousand_sek_invoice: Invoice,  # noqa: F811
    saved_card: Callable[[str], PaymentMethod],  # noqa: F811
    admin_client_for: Callable[[User], Client],
) -> None:
    """A link made before this rule (or behind the services' back) opens nothing."""
    card = saved_card(APPROVED)
    PortalAccount.objects.create(user=billing_clerk, customer=alice_company)
    client = admin_client_for(billing_clerk)
    pay = reverse("portal_pay:pay", args=[thousand_sek_invoice.pk])

    for url in (
        reverse("portal:invoices"),
        reverse("portal:invoice", args=[thousand_sek_invoice.pk]),
        pay,
        reverse("portal_pay:cards"),
        reverse("portal_pay:refund", args=[1]),
    ):
        assert client.get(url).status_code == 404, url
    charged = client.post(
        pay, {"amount": "1000.00", "payment_method": card.pk, "idempotency_key": "c" * 32}
    )

    assert charged.status_code == 404
    assert not Payment.objects.exists()


def test_linking_a_customer_user_is_audited_by_name(alice_company: Customer, clerk: User) -> None:
    person = make_user("astrid")

    account = services.link_portal_account(user=person, customer=alice_company, by=clerk)

    (event,) = audit_events("customer.portal_account_linked", account)
    assert event.details["username"] == "astrid"
    assert event.details["customer"] == alice_company.name
    assert event.actor_id == str(clerk.pk)
