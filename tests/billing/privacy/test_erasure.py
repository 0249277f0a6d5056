"""Erasure: asked for by the customer, approved by a security officer with a fresh second
factor; afterwards no table holds a personal value of hers (the frozen invoices and the
audit log excepted, by law and by design), and her invoices total the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from billing.models import Customer, Invoice
from billing.privacy.models import ErasureRequest
from billing.privacy.services import PrivacyError, decide_erasure, request_erasure
from payments.models import CardSecret, PaymentMethod
from security.models import User
from tests.billing.privacy.conftest import ASTRID
from tests.factories import audit_events

CHANGELIST = "/admin/privacy/erasurerequest/"

# Kept on purpose (docs/privacy.md): the invoices' frozen buyer and their signed PDFs are
# bookkeeping records (7 years); the audit log is append-only evidence, archived by age.
KEPT_BY_LAW = {"billing_invoice", "documents_invoicedocument", "audit_auditevent"}


def tables_holding(values: list[str]) -> dict[str, list[str]]:
    """Every table (but those kept by law) whose rows, as text, contain one of ``values``."""
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in sorted(set(tables) - KEPT_BY_LAW):
            quoted = connection.ops.quote_name(table)
            for value in values:
                cursor.execute(
                    f"SELECT count(*) FROM {quoted} t WHERE t::text ILIKE %s",
                    [f"%{value}%"],
                )
                if cursor.fetchone()[0]:
                    found.setdefault(table, []).append(value)
    return found


def personal_values(astrid: User) -> list[str]:
    return [*ASTRID.values(), astrid.get_username(), astrid.email, "Vinterqvist"]


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_after_erasure_no_table_holds_her_personal_data_and_totals_stay(
    astrid: User,
    astrid_client: Client,
    astrid_customer: Customer,
    astrid_invoices: list[Invoice],
    astrid_card: PaymentMethod,
    officer: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    totals = sorted(
        Invoice.objects.filter(customer=astrid_customer).values_list(
            "display_number", "net_total", "vat_total", "gross_total"
        )
    )
    astrid_client.post("/portal/privacy/accept/", {"version": "2026-1"})
    assert tables_holding(personal_values(astrid))  # the scan finds her before

    response = astrid_client.post("/portal/privacy/erase/")
    assert response.status_code == 302
    erasure = ErasureRequest.objects.get(customer=astrid_customer)
    admin = admin_client_for(officer)
    decided = admin.post(CHANGELIST, {"action": "approve", "_selected_action": [erasure.pk]})
    assert decided.status_code == 302

    erasure.refresh_from_db()
    assert erasure.status == ErasureRequest.Status.COMPLETED
    assert tables_holding(personal_values(astrid)) == {}
    assert (
        sorted(
            Invoice.objects.filter(customer=astrid_customer).values_list(
                "display_number", "net_total", "vat_total", "gross_total"
            )
        )
        == totals
    )
    assert not User.objects.filter(pk=astrid.pk).exists()
    astrid_card.refresh_from_db()
    assert astrid_card.status == PaymentMethod.Status.DELETED
    assert not CardSecret.objects.filter(token=astrid_card.token).exists()
    customer = Customer.objects.get(pk=astrid_customer.pk)
    assert customer.name == f"Erased customer {erasure.pseudonym[:12]}"
    [event] = audit_events("privacy.customer_erased", customer)
    assert event.details["pseudonym"] == erasure.pseudonym
    assert event.details["erased"]["payments.cards_deleted"] == 1
    assert not any(value.lower() in str(event.details).lower() for value in personal_values(astrid))


@pytest.mark.django_db
def test_the_officer_who_recorded_a_request_cannot_approve_it(
    astrid_customer: Customer, officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    erasure = ErasureRequest.objects.create(
        customer=astrid_customer, requested_by=officer, requested_at=astrid_customer.created_at
    )
    response = admin_client_for(officer).post(
        CHANGELIST, {"action": "approve", "_selected_action": [erasure.pk]}, follow=True
    )
    assert "a second person decides" in response.content.decode()
    erasure.refresh_from_db()
    assert erasure.status == ErasureRequest.Status.PENDING
    assert Customer.objects.get(pk=astrid_customer.pk).name == ASTRID["name"]


@pytest.mark.django_db
def test_approving_needs_a_fresh_second_factor(
    astrid: User, astrid_customer: Customer, officer: User, rf: Any
) -> None:
    from security.exceptions import StepUpRequired

    erasure = ErasureRequest.objects.create(
        customer=astrid_customer, requested_by=astrid, requested_at=astrid_customer.created_at
    )
    stale = rf.post("/")
    stale.user = officer
    stale.session = {}
    with pytest.raises(StepUpRequired):
        decide_erasure(erasure, approve=True, by=officer, request=stale)
    assert Customer.objects.get(pk=astrid_customer.pk).name == ASTRID["name"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role", ["Billing clerk", "Accountant", "Payments operator", "Fraud analyst", "Auditor"]
)
def test_only_security_officers_may_decide(
    role: str,
    astrid: User,
    astrid_customer: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    from tests.factories import make_user, with_role

    staff = with_role(make_user(f"staff-{role.split()[0].lower()}", is_staff=True), role)
    erasure = ErasureRequest.objects.create(
        customer=astrid_customer, requested_by=astrid, requested_at=astrid_customer.created_at
    )
    client = admin_client_for(staff)
    response = client.post(CHANGELIST, {"action": "approve", "_selected_action": [erasure.pk]})
    assert response.status_code in (302, 403, 200)
    erasure.refresh_from_db()
    assert erasure.status == ErasureRequest.Status.PENDING
    with pytest.raises(PrivacyError, match="Security officer"):
        decide_erasure(erasure, approve=True, by=staff, request=None)


@pytest.mark.django_db
def test_a_customer_cannot_ask_to_erase_another_customer(
    astrid: User, bob_company: Customer
) -> None:
    with pytest.raises(PrivacyError, match="your own data"):
        request_erasure(customer=bob_company, by=astrid, request=None)
    assert not ErasureRequest.objects.exists()


@pytest.mark.django_db
def test_erasure_request_without_a_fresh_factor_goes_to_step_up(
    astrid: User, astrid_customer: Customer
) -> None:
    from tests.mfa_helpers import give_totp_device, mark_client_verified

    client = Client()
    client.force_login(astrid)
    mark_client_verified(client, give_totp_device(astrid))
    from security.selectors import MFA_VERIFIED_AT_KEY

    session = client.session
    session[MFA_VERIFIED_AT_KEY] = 0  # verified at sign-in, long ago: not fresh
    session.save()
    response = client.post("/portal/privacy/erase/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/")
    assert not ErasureRequest.objects.exists()


@pytest.mark.django_db
def test_the_retention_policy_is_shown_to_security_officers(
    officer: User, admin_client_for: Callable[[User], Client], settings: Any
) -> None:
    settings.PRIVACY_CARD_UNUSED_MONTHS = 13
    page = admin_client_for(officer).get(CHANGELIST).content.decode()
    assert 'id="retention-policy"' in page
    assert "13 months after last use" in page
    assert "7 years (Swedish bookkeeping law)" in page


@pytest.mark.django_db
def test_a_clerk_records_a_request_and_an_officer_decides_it(
    astrid: User,
    astrid_customer: Customer,
    officer: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    from tests.factories import make_user, with_role

    clerk = with_role(make_user("carl", is_staff=True), "Billing clerk")
    recorded = admin_client_for(clerk).post(
        "/admin/billing/customer/",
        {"action": "record_erasure_request", "_selected_action": [astrid_customer.pk]},
    )
    assert recorded.status_code == 302
    erasure = ErasureRequest.objects.get(customer=astrid_customer)
    assert erasure.requested_by == clerk
    assert audit_events("privacy.erasure_requested", astrid_customer)

    admin_client_for(officer).post(
        CHANGELIST, {"action": "reject", "_selected_action": [erasure.pk]}
    )
    erasure.refresh_from_db()
    assert erasure.status == ErasureRequest.Status.REJECTED
    assert Customer.objects.get(pk=astrid_customer.pk).name == ASTRID["name"]
