"""The actions on an invoice's own admin page: confirmations that name the number, partial
credit notes by line and by amount, live draft totals, and bad input refused on its field
with nothing changed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from billing import services
from billing.models import CompanyProfile, Customer, Invoice, InvoiceSeries
from billing.money import Money
from security import roles
from security.models import User
from tests.factories import audit_events, line, make_user, table_snapshot, with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk_client(clerk: User, admin_client_for: Callable[[User], Client]) -> Client:
    return admin_client_for(with_role(clerk, roles.BILLING_CLERK))


@pytest.fixture
def draft(company: CompanyProfile, alice_company: Customer) -> Invoice:
    """Two lines: 4 h at 1,000.00 (25 %) and 2 books at 250.00 (6 %): 5,530.00 SEK."""
    return services.create_draft_invoice(
        customer=alice_company,
        lines=[
            line("Consulting", "4", "1000.00", unit="h"),
            line("Books", "2", "250.00", vat_rate="6"),
        ],
        by=SYSTEM,
    )


@pytest.fixture
def open_invoice(draft: Invoice) -> Invoice:
    return services.finalize_invoice(draft, by=SYSTEM)


def url(name: str, invoice: Invoice) -> str:
    return reverse(f"admin:billing_invoice_{name}", args=[invoice.pk])


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_finalize_asks_first_naming_the_number_then_says_which_number_it_took(
    clerk_client: Client, draft: Invoice
) -> None:
    expected = InvoiceSeries.objects.get(code="F").display_number(
        InvoiceSeries.objects.get(code="F").next_number
    )

    page = clerk_client.get(url("finalize", draft)).content.decode()
    response = clerk_client.post(url("finalize", draft), follow=True)

    draft.refresh_from_db()
    assert f"It takes number {expected}" in page and "5,530.00 SEK" in page
    assert draft.display_number == expected and draft.status == "open"
    assert f"Invoice {expected} finalized: 5,530.00 SEK" in " ".join(_messages(response))


def test_the_draft_page_shows_its_totals_before_finalizing(
    clerk_client: Client, draft: Invoice
) -> None:
    page = clerk_client.get(reverse("admin:billing_invoice_change", args=[draft.pk]))
    html = page.content.decode()

    assert "5,530.00 SEK" in html  # 4,000 + 500 net, 1,000 + 30 VAT
    assert 'id="action-finalize"' in html and 'id="action-preview"' in html


def test_live_totals_are_computed_from_the_lines_as_typed(
    clerk_client: Client, alice_company: Customer
) -> None:
    answer = clerk_client.post(
        reverse("admin:billing_invoice_totals"),
        {
            "customer": alice_company.pk,
            "lines-TOTAL_FORMS": "2",
            "lines-0-description": "Work",
            "lines-0-quantity": "3",
            "lines-0-unit_price": "100.10",
            "lines-0-vat_category": "S",
            "lines-0-vat_rate": "25",
            "lines-1-description": "Typo",
            "lines-1-quantity": "1",
            "lines-1-unit_price": "5",
            "lines-1-vat_category": "S",
            "lines-1-vat_rate": "13",
        },
    ).json()

    assert answer["field"] == "vat_rate" and "13% is not a configured" in answer["error"]


def test_live_totals_add_up_like_finalization(
    clerk_client: Client, alice_company: Customer
) -> None:
    answer = clerk_client.post(
        reverse("admin:billing_invoice_totals"),
        {
            "customer": alice_company.pk,
            "lines-TOTAL_FORMS": "1",
            "lines-0-description": "Work",
            "lines-0-quantity": "3",
            "lines-0-unit_price": "100.10",
            "lines-0-vat_category": "S",
            "lines-0-vat_rate": "25",
        },
    ).json()

    assert (answer["net"], answer["vat"], answer["gross"]) == (
        "300.30 SEK",
        "75.08 SEK",
        "375.38 SEK",
    )


def test_a_partial_credit_by_amount_names_its_number_then_credits_exactly_that(
    clerk_client: Client, open_invoice: Invoice
) -> None:
    form = {"mode": "amount", "amount": "1,060.00", "reason": "Discount agreed"}

    confirm = clerk_client.post(url("credit", open_invoice), form).content.decode()
    done = clerk_client.post(url("credit", open_invoice), {**form, "confirm": "1"}, follow=True)

    note = Invoice.objects.get(kind="credit_note")
    open_invoice.refresh_from_db()
    assert f"Credit note {note.display_number} on invoice {open_invoice.display_number}" in confirm
    assert note.gross_total == 106_000 and open_invoice.amount_due == 553_000 - 106_000
    assert f"Credit note {note.display_number} issued on {open_invoice.display_number}" in (
        " ".join(_messages(done))
    )
    assert audit_events("invoice.credited", open_invoice)[0].details["amount"] == 106_000


def test_a_partial_credit_by_line(clerk_client: Client, open_invoice: Invoice) -> None:
    consulting = open_invoice.lines.get(description="Consulting")
    form = {"mode": "lines", f"line_{consulting.pk}": "1", "reason": "One hour too many"}

    confirm = clerk_client.post(url("credit", open_invoice), form).content.decode()
    clerk_client.post(url("credit", open_invoice), {**form, "confirm": "1"})

    note = Invoice.objects.get(kind="credit_note")
    assert note.display_number in confirm and "1,250.00 SEK" in confirm
    assert list(note.lines.values_list("credited_line_id", "quantity")) == [(consulting.pk, 1)]
    assert note.gross_total == 125_000


def test_a_credit_beyond_what_is_left_is_refused_on_the_amount_and_changes_nothing(
    clerk_client: Client, open_invoice: Invoice
) -> None:
    before = table_snapshot()

    response = clerk_client.post(
        url("credit", open_invoice),
        {"mode": "amount", "amount": "6000", "reason": "Too much", "confirm": "1"},
    )

    form = response.context["form"]
    assert "is more than is left to credit" in " ".join(form.errors["amount"])
    assert table_snapshot() == before


def test_a_line_credited_beyond_its_quantity_is_refused_and_changes_nothing(
    clerk_client: Client, open_invoice: Invoice
) -> None:
    books = open_invoice.lines.get(description="Books")
    before = table_snapshot()

    response = clerk_client.post(
        url("credit", open_invoice),
        {"mode": "lines", f"line_{books.pk}": "3", "reason": "x", "confirm": "1"},
    )

    assert "3 is more than the 2 left to credit" in response.content.decode()
    assert table_snapshot() == before


def test_a_stale_credit_confirmation_is_refused_when_the_invoice_was_paid_meanwhile(
    clerk_client: Client, open_invoice: Invoice
) -> None:
    form = {"mode": "all", "reason": "Cancelled"}
    clerk_client.post(url("credit", open_invoice), form)  # the confirmation, in one tab
    services.record_payment_amount(
        open_invoice, amount=Money(open_invoice.amount_due, "SEK"), by=SYSTEM, reference="bank"
    )
    before = table_snapshot()

    response = clerk_client.post(url("credit", open_invoice), {**form, "confirm": "1"})

    assert "only an open or uncollectible invoice can be credited" in response.content.decode()
    assert table_snapshot() == before


def test_an_unknown_vat_rate_is_refused_on_its_field(clerk_client: Client, draft: Invoice) -> None:
    first = draft.lines.order_by("position").first()
    assert first is not None
    before = table_snapshot()
    data = {
        "customer": draft.customer_id,
        "currency": "SEK",
        "payment_terms_days": draft.payment_terms_days,
        "due_date": "",
        "notes": "",
        "lines-TOTAL_FORMS": 1,
        "lines-INITIAL_FORMS": 1,
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 1000,
        "lines-0-id": first.pk,
        "lines-0-invoice": draft.pk,
        "lines-0-position": 1,
        "lines-0-description": "Consulting",
        "lines-0-quantity": "4",
        "lines-0-unit": "h",
        "lines-0-unit_price": "1000",
        "lines-0-vat_category": "S",
        "lines-0-vat_rate": "13",
    }

    response = clerk_client.post(reverse("admin:billing_invoice_change", args=[draft.pk]), data)

    errors = response.context["inline_admin_formsets"][0].formset.errors[0]
    assert "vat_rate" in errors
    assert table_snapshot() == before


def test_void_asks_for_a_reason_and_names_the_number(
    clerk_client: Client, open_invoice: Invoice
) -> None:
    refused = clerk_client.post(url("void", open_invoice), {"reason": ""})
    done = clerk_client.post(url("void", open_invoice), {"reason": "Wrong customer"}, follow=True)

    open_invoice.refresh_from_db()
    assert "reason" in refused.context["form"].errors
    assert open_invoice.status == "void"
    assert f"Invoice {open_invoice.display_number} voided." in _messages(done)


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
def test_no_other_role_may_finalize_void_or_credit(
    role: str,
    draft: Invoice,
    alice_company: Customer,
    admin_client_for: Callable[[User], Client],
) -> None:
    open_one = services.finalize_invoice(
        services.create_draft_invoice(
            customer=alice_company, lines=[line("X", "1", "10")], by=SYSTEM
        ),
        by=SYSTEM,
    )
    client = admin_client_for(with_role(make_user("someone", is_staff=True), role))
    before = table_snapshot()

    answers = {
        client.post(url("finalize", draft)).status_code,
        client.post(url("void", open_one), {"reason": "x"}).status_code,
        client.post(
            url("credit", open_one), {"mode": "all", "reason": "x", "confirm": "1"}
        ).status_code,
        client.post(reverse("admin:billing_invoice_totals"), {}).status_code,
    }

    assert answers <= {403, 404}
    assert table_snapshot() == before


def test_a_draft_preview_is_a_pdf_marked_draft(clerk_client: Client, draft: Invoice) -> None:
    response = clerk_client.get(url("preview_pdf", draft))

    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")


@pytest.mark.parametrize(
    ("role", "shown"),
    [(roles.BILLING_CLERK, True), (roles.ACCOUNTANT, True), (roles.PAYMENTS_OPERATOR, False)],
)
def test_the_signed_pdf_is_linked_for_who_may_open_it(
    role: str, shown: bool, open_invoice: Invoice, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(with_role(make_user("reader", is_staff=True), role))

    page = client.get(reverse("admin:billing_invoice_change", args=[open_invoice.pk]))

    assert ('id="action-pdf"' in page.content.decode()) is shown
    assert (reverse("documents:download", args=[open_invoice.pk]) in page.content.decode()) is shown


def test_a_new_customer_gets_the_companys_language_and_picks_country_and_currency(
    clerk_client: Client, company: CompanyProfile
) -> None:
    form = clerk_client.get(reverse("admin:billing_customer_add")).context["adminform"].form

    assert form["language"].value() == company.customer_language == "sv"
    assert ("SE", "Sweden (SE)") in form.fields["country"].choices
    assert "KWD" not in dict(form.fields["currency"].choices)  # three decimals: no invoice
    refused = clerk_client.post(
        reverse("admin:billing_customer_add"),
        {
            "name": "X AB",
            "kind": "company",
            "email": "x@example.test",
            "country": "XX",
            "language": "sv",
            "currency": "SEK",
        },
    )
    assert "country" in refused.context["adminform"].form.errors
