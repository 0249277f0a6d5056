"""What finalizing refuses so that no document breaks EN 16931 later: currencies whose
amounts EN 16931 cannot state, a seller without a VAT number, a buyer without a VAT id."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from billing import services
from billing.exceptions import InvalidInput, MissingConfiguration
from billing.models import CompanyProfile, Customer, Invoice, InvoiceSeries
from security.models import User
from tests.factories import audit_events, line, make_company, make_customer, table_snapshot

pytestmark = pytest.mark.django_db

MakeInvoice = Callable[..., Invoice]


@pytest.mark.parametrize("currency", ["KWD", "BHD", "OMR", "CLF", "kwd"])
def test_a_currency_with_three_or_four_decimals_is_refused_naming_currency(
    currency: str, clerk: User, alice_company: Customer, company: CompanyProfile
) -> None:
    draft = services.create_draft_invoice(customer=alice_company, lines=[line()], by=clerk)
    before = table_snapshot()
    attempts = [
        lambda: services.create_customer(by=clerk, name="Kuwait Trading Co", currency=currency),
        lambda: services.update_customer(alice_company, by=clerk, currency=currency),
        lambda: services.create_draft_invoice(
            customer=alice_company, lines=[line()], currency=currency, by=clerk
        ),
        lambda: services.update_draft_invoice(draft, by=clerk, currency=currency),
    ]

    for attempt in attempts:
        with pytest.raises(InvalidInput) as refused:
            attempt()
        assert refused.value.field == "currency"
        assert "at most 2" in refused.value.message

    assert table_snapshot() == before


def test_a_draft_left_in_a_three_decimal_currency_is_refused_at_finalization(
    make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    # A draft written before the rule (or straight into the table): never numbered.
    draft = make_draft_invoice(alice_company)
    Invoice.objects.filter(pk=draft.pk).update(currency="KWD")

    with pytest.raises(InvalidInput) as refused:
        services.finalize_invoice(draft, by=clerk)

    assert refused.value.field == "currency"
    assert InvoiceSeries.objects.get(code="F").next_number == 1
    assert not audit_events("invoice.finalized")


@pytest.mark.parametrize("currency", ["JPY", "ISK", "EUR", "USD"])
def test_currencies_with_two_decimals_or_none_are_invoiced(
    currency: str, make_open_invoice: MakeInvoice, clerk: User, company: CompanyProfile
) -> None:
    customer = services.create_customer(
        by=clerk, name="Abroad Ltd", email="ap@abroad.example", currency=currency
    )

    invoice = make_open_invoice(customer, [line("Work", "3", "1234")])

    assert (invoice.currency, invoice.status) == (currency, Invoice.Status.OPEN)


@pytest.mark.parametrize(
    ("category", "rule"),
    [
        ("S", "BR-S-02"),
        ("Z", "BR-Z-02"),
        ("E", "BR-E-02"),
        ("AE", "BR-AE-02"),
        ("K", "BR-IC-02"),
        ("G", "BR-G-02"),
    ],
)
def test_a_seller_without_a_vat_number_cannot_finalize_naming_the_profile_field(
    category: str, rule: str, make_draft_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    rate = "25" if category == "S" else "0"
    draft = make_draft_invoice(alice_company, [line(vat_category=category, vat_rate=rate)])
    make_company(vat_number="")
    before = table_snapshot()

    for finalize in (
        lambda: services.finalize_invoice(draft, by=clerk),
        lambda: services.finalize_invoices([draft], by=clerk),
    ):
        with pytest.raises(MissingConfiguration) as refused:
            finalize()
        assert refused.value.field == "vat_number"
        assert rule in refused.value.message and "company profile" in refused.value.message

    assert table_snapshot() == before
    assert not audit_events("invoice.finalized")


def test_a_credit_note_needs_the_sellers_vat_number_too(
    make_open_invoice: MakeInvoice, alice_company: Customer, clerk: User
) -> None:
    invoice = make_open_invoice(alice_company)
    make_company(vat_number="")
    before = table_snapshot()

    with pytest.raises(MissingConfiguration) as refused:
        services.issue_credit_note(invoice, by=clerk, reason="Wrong hours")

    assert refused.value.field == "vat_number"
    assert table_snapshot() == before


@pytest.mark.parametrize(("category", "rule"), [("K", "BR-IC-02"), ("AE", "BR-AE-02")])
def test_a_buyer_without_a_vat_id_is_refused_citing_the_categorys_own_rule(
    category: str, rule: str, make_draft_invoice: MakeInvoice, clerk: User, company: CompanyProfile
) -> None:
    draft = make_draft_invoice(
        make_customer("Nobody AB"), [line(vat_category=category, vat_rate="0")]
    )

    with pytest.raises(InvalidInput) as refused:
        services.finalize_invoice(draft, by=clerk)

    assert refused.value.field == "vat_id"
    assert f"EN 16931 {rule})" in refused.value.message
