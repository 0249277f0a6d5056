"""The invoice list's bulk actions (finalize, void, mark uncollectible, full credit): the
first POST only shows a confirmation naming the invoices, the numbers to be taken and the
amounts; only the explicit confirmation acts, its message names the numbers; cancel,
a missing CSRF token and every role without the permission change nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from billing import services
from billing.models import CompanyProfile, Customer, Invoice, InvoiceSeries
from security import roles
from security.models import User
from tests.factories import audit_events, line, make_user, table_snapshot, with_role

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:billing_invoice_changelist")
ACTIONS = ("finalize", "void", "mark_uncollectible", "issue_full_credit_note")


@pytest.fixture
def clerk_client(clerk: User, admin_client_for: Callable[[User], Client]) -> Client:
    return admin_client_for(with_role(clerk, roles.BILLING_CLERK))


def _draft(customer: Customer, price: str = "1000.00") -> Invoice:
    return services.create_draft_invoice(
        customer=customer, lines=[line("Consulting", "1", price)], by=SYSTEM
    )


@pytest.fixture
def invoices(company: CompanyProfile, alice_company: Customer) -> list[Invoice]:
    """Two open invoices: 1,250.00 and 2,500.00 SEK (25 % VAT)."""
    return [
        services.finalize_invoice(_draft(alice_company, price), by=SYSTEM)
        for price in ("1000.00", "2000.00")
    ]


def _choose(client: Client, action: str, *chosen: Invoice, **extra: str) -> Any:
    return client.post(
        CHANGELIST, {"action": action, "_selected_action": [i.pk for i in chosen], **extra}
    )


def _confirm(client: Client, action: str, *chosen: Invoice, **extra: str) -> Any:
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [i.pk for i in chosen], "post": "yes", **extra},
        follow=True,
    )


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _next(code: str, n: int = 0) -> str:
    series = InvoiceSeries.objects.get(code=code)
    return series.display_number(series.next_number + n)


# --- the first POST shows, and changes nothing ------------------------------------------


@pytest.mark.parametrize("action", ACTIONS[1:])
def test_the_first_post_only_lists_the_invoices_and_their_amounts(
    clerk_client: Client, invoices: list[Invoice], action: str
) -> None:
    before = table_snapshot()

    page = _choose(clerk_client, action, *invoices)

    assert page.status_code == 200
    assert page.templates[0].name == "admin/billing/invoice/bulk_confirm.html"
    html = page.content.decode()
    for invoice in invoices:
        assert invoice.display_number in html
    assert "1,250.00 SEK" in html and "2,500.00 SEK" in html
    assert f'id="confirm-{action}"' in html and 'name="post" value="yes"' in html
    assert table_snapshot() == before


def test_full_credit_names_the_k_number_each_note_will_take_then_takes_them(
    clerk_client: Client, invoices: list[Invoice]
) -> None:
    first, second = _next("K"), _next("K", 1)

    page = _choose(clerk_client, "issue_full_credit_note", *invoices).content.decode()

    assert first in page and second in page
    assert not Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).exists()
    done = _confirm(clerk_client, "issue_full_credit_note", *invoices, reason="Cancelled order")
    notes = list(Invoice.objects.filter(kind=Invoice.Kind.CREDIT_NOTE).order_by("pk"))
    assert [n.display_number for n in notes] == [first, second]
    assert [n.credited_invoice_id for n in notes] == [i.pk for i in invoices]
    a, b = (i.display_number for i in invoices)
    assert f"Credited in full: {a} ({first}), {b} ({second})." in _messages(done)
    assert len(audit_events("invoice.credited")) == 2


def test_bulk_finalize_names_the_numbers_and_the_totals(
    clerk_client: Client, company: CompanyProfile, alice_company: Customer
) -> None:
    drafts = [_draft(alice_company), _draft(alice_company, "2000.00")]
    first, second = _next("F"), _next("F", 1)

    page = _choose(clerk_client, "finalize", *drafts).content.decode()

    assert first in page and second in page and "2,500.00 SEK" in page
    assert Invoice.objects.filter(status=Invoice.Status.DRAFT).count() == 2
    done = _confirm(clerk_client, "finalize", *drafts)
    assert f"Finalized: {first}, {second}." in _messages(done)


@pytest.mark.parametrize(
    ("action", "status", "event", "done"),
    [
        ("void", Invoice.Status.VOID, "invoice.voided", "Voided"),
        (
            "mark_uncollectible",
            Invoice.Status.UNCOLLECTIBLE,
            "invoice.marked_uncollectible",
            "Marked uncollectible",
        ),
    ],
)
def test_confirmed_the_action_is_done_with_its_reason_and_names_the_numbers(
    clerk_client: Client,
    clerk: User,
    invoices: list[Invoice],
    action: str,
    status: str,
    event: str,
    done: str,
) -> None:
    response = _confirm(clerk_client, action, *invoices, reason="Customer went bankrupt")

    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.status == status
    events = audit_events(event)
    assert len(events) == 2
    assert {e.actor_id for e in events} == {str(clerk.pk)}
    a, b = (i.display_number for i in invoices)
    assert f"{done}: {a}, {b}." in _messages(response)


def test_an_invoice_that_does_not_qualify_is_named_as_left_alone(
    clerk_client: Client, invoices: list[Invoice], alice_company: Customer
) -> None:
    draft = _draft(alice_company)

    page = _choose(clerk_client, "void", invoices[0], draft).content.decode()

    assert invoices[0].display_number in page and f"Draft #{draft.pk}" not in page
    assert "1 selected invoice does not qualify" in page


def test_a_reason_too_long_is_refused_on_its_field_and_nothing_changes(
    clerk_client: Client, invoices: list[Invoice]
) -> None:
    before = table_snapshot()

    response = clerk_client.post(
        CHANGELIST,
        {
            "action": "void",
            "_selected_action": [invoices[0].pk],
            "post": "yes",
            "reason": "x" * 501,
        },
    )

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    assert table_snapshot() == before


def test_cancel_goes_back_to_the_list_and_changes_nothing(
    clerk_client: Client, invoices: list[Invoice]
) -> None:
    before = table_snapshot()
    page = _choose(clerk_client, "issue_full_credit_note", *invoices)

    assert f'href="{CHANGELIST}" class="button cancel-link"' in page.content.decode()
    assert clerk_client.get(CHANGELIST).status_code == 200
    assert table_snapshot() == before


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ACTIONS)
def test_a_confirmation_without_the_csrf_token_is_refused(
    clerk: User, invoices: list[Invoice], alice_company: Customer, action: str
) -> None:
    from tests.conftest import give_totp_device, mark_client_verified

    draft = _draft(alice_company)
    client = Client(enforce_csrf_checks=True)
    user = with_role(clerk, roles.BILLING_CLERK)
    client.force_login(user)
    mark_client_verified(client, give_totp_device(user))
    before = table_snapshot()

    response = client.post(
        CHANGELIST,
        {
            "action": action,
            "_selected_action": [draft.pk, *(i.pk for i in invoices)],
            "post": "yes",
        },
    )

    assert response.status_code == 403
    assert table_snapshot() == before


@pytest.mark.parametrize(
    "role",
    [
        roles.ACCOUNTANT,
        roles.PAYMENTS_OPERATOR,
        roles.FRAUD_ANALYST,
        roles.SECURITY_OFFICER,
        roles.AUDITOR,
    ],
)
def test_no_other_role_may_run_a_bulk_action(
    role: str,
    invoices: list[Invoice],
    alice_company: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    draft = _draft(alice_company)
    client = admin_client_for(with_role(make_user("someone", is_staff=True), role))
    before = table_snapshot()

    for action in ACTIONS:
        chosen = [draft.pk, *(i.pk for i in invoices)]
        shown = client.post(CHANGELIST, {"action": action, "_selected_action": chosen})
        confirmed = client.post(
            CHANGELIST, {"action": action, "_selected_action": chosen, "post": "yes"}
        )
        for response in (shown, confirmed):
            # Refused (403), or the plain list again (the action is not offered to them).
            assert response.status_code in (200, 302, 403), (role, action)
            assert b"bulk-confirm" not in response.content, (role, action)

    assert table_snapshot() == before


def test_a_customer_reaches_no_bulk_action(
    alice: User, invoices: list[Invoice], alice_company: Customer
) -> None:
    client = Client()
    client.force_login(alice)
    before = table_snapshot()

    for action in ACTIONS:
        response = client.post(
            CHANGELIST,
            {"action": action, "_selected_action": [i.pk for i in invoices], "post": "yes"},
        )
        assert response.status_code in (302, 403)

    assert table_snapshot() == before
