"""The billing admin: constant queries, frozen invoices, and every write through a service."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import SYSTEM
from audit.models import AuditEvent
from billing import services
from billing.exceptions import InvoiceNotDraft
from billing.models import CompanyProfile, Customer, Invoice, InvoiceSeries
from security.models import User

pytestmark = pytest.mark.django_db

AdminClientFor = Callable[[User], Client]

CHANGELIST = reverse("admin:billing_invoice_changelist")


def _line(description: str = "Consulting", quantity: str = "2", price: str = "625.00") -> Any:
    return {
        "description": description,
        "quantity": Decimal(quantity),
        "unit_price": Decimal(price),
        "vat_category": "S",
        "vat_rate": Decimal("25"),
        "unit": "h",
    }


@pytest.fixture
def billing_staff(db: None) -> User:
    """Staff with every billing permission (the role matrix comes with the security work)."""
    user = User.objects.create_user("billing-staff", "staff@example.test", "x" * 16, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="billing"))
    return user


@pytest.fixture
def staff_client(admin_client_for: AdminClientFor, billing_staff: User) -> Client:
    return admin_client_for(billing_staff)


@pytest.fixture
def draft(company: CompanyProfile, alice_company: Customer) -> Invoice:
    return services.create_draft_invoice(customer=alice_company, lines=[_line()], by=SYSTEM)


@pytest.fixture
def open_invoice(draft: Invoice) -> Invoice:
    return services.finalize_invoice(draft, by=SYSTEM)


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


def _bulk_invoices(count: int, *, start: int) -> None:
    """Numbered invoices straight into the table: fast, and realistic enough for a list."""
    series = InvoiceSeries.objects.get(code="F")
    customers = Customer.objects.bulk_create(
        Customer(name=f"Customer {start + i}", email=f"c{start + i}@example.test")
        for i in range(max(1, count // 10))
    )
    today = timezone.localdate()
    statuses = [Invoice.Status.OPEN, Invoice.Status.PAID, Invoice.Status.VOID]
    invoices = []
    for i in range(count):
        number = start + i
        status = statuses[i % len(statuses)]
        invoices.append(
            Invoice(
                series=series,
                number=number,
                display_number=series.display_number(number),
                status=status,
                customer=customers[i % len(customers)],
                issue_date=today - datetime.timedelta(days=i % 90),
                due_date=today + datetime.timedelta(days=30 - i % 90),
                currency="SEK" if i % 2 else "EUR",
                net_total=100_000,
                vat_total=25_000,
                gross_total=125_000,
                amount_paid=125_000 if status == Invoice.Status.PAID else 0,
                ocr_reference=f"{number}00",
                finalized_at=timezone.now(),
            )
        )
    Invoice.objects.bulk_create(invoices)


def _queries(client: Client, url: str) -> int:
    """Queries of one GET, after a first GET has warmed the process-wide caches
    (content types), so only the page's own queries are counted."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured)


# --- constant queries ---------------------------------------------------------------------


def test_the_invoice_list_uses_the_same_number_of_queries_for_10_and_1000_invoices(
    staff_client: Client, company: CompanyProfile
) -> None:
    _bulk_invoices(10, start=1)
    with_ten = _queries(staff_client, CHANGELIST)

    _bulk_invoices(990, start=11)
    with_a_thousand = _queries(staff_client, CHANGELIST)

    assert with_a_thousand == with_ten


def test_an_invoice_page_uses_the_same_number_of_queries_however_many_invoices_exist(
    staff_client: Client, open_invoice: Invoice, draft: Invoice
) -> None:
    draft_with_lines = services.create_draft_invoice(
        customer=draft.customer, lines=[_line(f"Line {i}") for i in range(3)], by=SYSTEM
    )
    pages = [
        reverse("admin:billing_invoice_change", args=[invoice.pk])
        for invoice in (open_invoice, draft_with_lines)
    ]
    _bulk_invoices(10, start=100)
    with_ten = [_queries(staff_client, page) for page in pages]

    _bulk_invoices(990, start=110)
    with_a_thousand = [_queries(staff_client, page) for page in pages]

    assert with_a_thousand == with_ten


def test_a_draft_page_uses_the_same_number_of_queries_for_3_and_30_lines(
    staff_client: Client, company: CompanyProfile, alice_company: Customer
) -> None:
    counts = []
    for lines in (3, 30):
        invoice = services.create_draft_invoice(
            customer=alice_company, lines=[_line(f"Line {i}") for i in range(lines)], by=SYSTEM
        )
        counts.append(
            _queries(staff_client, reverse("admin:billing_invoice_change", args=[invoice.pk]))
        )
    assert counts[0] == counts[1]


def test_the_list_shows_money_with_its_currency(
    staff_client: Client, open_invoice: Invoice
) -> None:
    response = staff_client.get(CHANGELIST)
    assert "1,562.50 SEK" in response.content.decode()  # 2 h x 625.00 + 25 % VAT


def test_swedish_staff_see_swedish_money(staff_client: Client, open_invoice: Invoice) -> None:
    response = staff_client.get(CHANGELIST, headers={"accept-language": "sv"})
    assert "1\u00a0562,50 SEK" in response.content.decode()


def test_the_list_finds_an_invoice_by_its_ocr_reference(
    staff_client: Client, open_invoice: Invoice
) -> None:
    _bulk_invoices(20, start=500)
    response = staff_client.get(CHANGELIST, {"q": open_invoice.ocr_reference})
    assert list(response.context["cl"].result_list) == [open_invoice]


# --- a finalized invoice is frozen here too ---------------------------------------------


def _change_form_data(invoice: Invoice, **overrides: Any) -> dict[str, Any]:
    lines = list(invoice.lines.order_by("position", "pk"))
    data: dict[str, Any] = {
        "customer": invoice.customer_id,
        "currency": invoice.currency,
        "payment_terms_days": invoice.payment_terms_days,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
        "notes": invoice.notes,
        "lines-TOTAL_FORMS": len(lines),
        "lines-INITIAL_FORMS": len(lines),
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 1000,
    }
    for index, line in enumerate(lines):
        data.update(
            {
                f"lines-{index}-id": line.pk,
                f"lines-{index}-invoice": invoice.pk,
                f"lines-{index}-position": line.position,
                f"lines-{index}-description": line.description,
                f"lines-{index}-quantity": line.quantity,
                f"lines-{index}-unit": line.unit,
                f"lines-{index}-unit_price": line.unit_price,
                f"lines-{index}-vat_category": line.vat_category,
                f"lines-{index}-vat_rate": line.vat_rate,
            }
        )
    data.update(overrides)
    return data


def _new_line_data(index: int, description: str) -> dict[str, Any]:
    return {
        f"lines-{index}-position": index + 1,
        f"lines-{index}-description": description,
        f"lines-{index}-quantity": "1",
        f"lines-{index}-unit": "h",
        f"lines-{index}-unit_price": "100.00",
        f"lines-{index}-vat_category": "S",
        f"lines-{index}-vat_rate": "25",
    }


def _snapshot(invoice: Invoice) -> tuple[Any, ...]:
    fresh = Invoice.objects.get(pk=invoice.pk)
    lines = tuple(fresh.lines.order_by("pk").values_list("description", "quantity", "unit_price"))
    return (fresh.notes, fresh.status, fresh.gross_total, fresh.updated_at, lines)


def test_a_finalized_invoice_cannot_be_changed_through_the_admin(
    staff_client: Client, open_invoice: Invoice
) -> None:
    before = _snapshot(open_invoice)
    url = reverse("admin:billing_invoice_change", args=[open_invoice.pk])
    data = _change_form_data(open_invoice, notes="Changed after the fact")
    data["lines-0-quantity"] = "200"

    response = staff_client.post(url, data, follow=True)

    # A stale draft form (finalized in another tab): refused, saying why, nothing changed.
    assert response.redirect_chain == [(url, 302)]
    assert "was finalized since this page was opened" in response.content.decode()
    assert _snapshot(open_invoice) == before


def test_a_finalized_invoice_takes_no_new_line_through_the_admin(
    staff_client: Client, open_invoice: Invoice
) -> None:
    before = _snapshot(open_invoice)
    url = reverse("admin:billing_invoice_change", args=[open_invoice.pk])
    data = _change_form_data(open_invoice, **{"lines-TOTAL_FORMS": 2})
    data.update(_new_line_data(1, "Sneaked in"))

    response = staff_client.post(url, data)

    assert response.status_code == 302 and response["Location"] == url
    assert _snapshot(open_invoice) == before


def test_a_finalized_invoice_page_offers_no_field_to_edit(
    staff_client: Client, open_invoice: Invoice
) -> None:
    response = staff_client.get(reverse("admin:billing_invoice_change", args=[open_invoice.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    editable = r'<(input(?![^>]*type="hidden")|select|textarea)[^>]*name="(notes|customer|lines-)'
    assert re.search(editable, html) is None
    assert 'name="_save"' not in html


def test_a_finalized_invoice_cannot_be_deleted_through_the_admin(
    staff_client: Client, open_invoice: Invoice
) -> None:
    url = reverse("admin:billing_invoice_delete", args=[open_invoice.pk])
    assert staff_client.get(url).status_code == 403
    assert staff_client.post(url, {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=open_invoice.pk).exists()


def test_the_bulk_delete_action_is_not_offered(staff_client: Client, draft: Invoice) -> None:
    response = staff_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [draft.pk]}
    )
    assert Invoice.objects.filter(pk=draft.pk).exists()
    assert response.status_code in (200, 302)


# --- drafts are edited through the services ---------------------------------------------


def test_adding_a_draft_in_the_admin_goes_through_the_services(
    staff_client: Client, billing_staff: User, company: CompanyProfile, alice_company: Customer
) -> None:
    data = {
        "customer": alice_company.pk,
        "currency": "",
        "payment_terms_days": "",
        "due_date": "",
        "notes": "From the admin",
        "lines-TOTAL_FORMS": 1,
        "lines-INITIAL_FORMS": 0,
        "lines-MIN_NUM_FORMS": 0,
        "lines-MAX_NUM_FORMS": 1000,
        **_new_line_data(0, "Design work"),
    }

    response = staff_client.post(reverse("admin:billing_invoice_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    invoice = Invoice.objects.get(notes="From the admin")
    assert invoice.status == Invoice.Status.DRAFT
    assert invoice.currency == alice_company.currency
    assert [line.description for line in invoice.lines.all()] == ["Design work"]
    created = _events("invoice.draft_created")
    assert [(e.object_id, e.actor_id) for e in created] == [
        (str(invoice.pk), str(billing_staff.pk))
    ]
    assert len(_events("invoice.line_added")) == 1


def test_editing_a_draft_in_the_admin_goes_through_the_services(
    staff_client: Client, draft: Invoice
) -> None:
    url = reverse("admin:billing_invoice_change", args=[draft.pk])
    data = _change_form_data(draft, notes="Revised", **{"lines-TOTAL_FORMS": 2})
    data["lines-0-quantity"] = "3"
    data.update(_new_line_data(1, "Extra hour"))

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    draft.refresh_from_db()
    assert draft.notes == "Revised"
    assert sorted(draft.lines.values_list("description", "quantity")) == [
        ("Consulting", Decimal("3")),
        ("Extra hour", Decimal("1")),
    ]
    assert len(_events("invoice.draft_updated")) == 1
    assert len(_events("invoice.line_updated")) == 1
    assert len(_events("invoice.line_added")) == 1


def test_removing_a_draft_line_in_the_admin_goes_through_the_services(
    staff_client: Client, company: CompanyProfile, alice_company: Customer
) -> None:
    draft = services.create_draft_invoice(
        customer=alice_company, lines=[_line("Keep"), _line("Drop")], by=SYSTEM
    )
    data = _change_form_data(draft, **{"lines-1-DELETE": "on"})

    response = staff_client.post(reverse("admin:billing_invoice_change", args=[draft.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(draft.lines.values_list("description", flat=True)) == ["Keep"]
    assert len(_events("invoice.line_removed")) == 1


def test_a_line_with_zero_quantity_is_refused_on_its_field_and_nothing_changes(
    staff_client: Client, draft: Invoice
) -> None:
    before = _snapshot(draft)
    data = _change_form_data(draft, notes="Should not stick")
    data["lines-0-quantity"] = "0"

    response = staff_client.post(reverse("admin:billing_invoice_change", args=[draft.pk]), data)

    assert response.status_code == 200
    assert "greater than zero" in response.content.decode()
    assert _snapshot(draft) == before


def test_a_service_refusal_after_a_valid_form_rolls_back_the_whole_save(
    staff_client: Client, draft: Invoice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. someone finalized the draft between the form's load and its save."""

    def finalized_meanwhile(*args: object, **kwargs: object) -> None:
        raise InvoiceNotDraft(f"{draft} is finalized (open)", field="status")

    monkeypatch.setattr(services, "add_invoice_line", finalized_meanwhile)
    before = _snapshot(draft)
    url = reverse("admin:billing_invoice_change", args=[draft.pk])
    data = _change_form_data(draft, notes="Half a save", **{"lines-TOTAL_FORMS": 2})
    data.update(_new_line_data(1, "Refused"))

    response = staff_client.post(url, data, follow=True)

    assert _snapshot(draft) == before  # the notes change, made first, was rolled back too
    assert not _events("invoice.draft_updated")
    texts = [str(m) for m in response.context["messages"]]
    assert any("Nothing was saved" in t and "status" in t for t in texts)


def test_deleting_a_draft_in_the_admin_goes_through_the_services(
    staff_client: Client, draft: Invoice
) -> None:
    url = reverse("admin:billing_invoice_delete", args=[draft.pk])
    response = staff_client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert not Invoice.objects.filter(pk=draft.pk).exists()
    assert len(_events("invoice.draft_deleted")) == 1


# --- actions call the services ------------------------------------------------------------


def _act(client: Client, action: str, *invoices: Invoice) -> Any:
    """Run a bulk action, confirmed (finalize asks first, naming the numbers)."""
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [i.pk for i in invoices], "post": "yes"},
        follow=True,
    )


def test_bulk_finalize_first_names_the_number_each_draft_will_take(
    staff_client: Client, draft: Invoice, alice_company: Customer
) -> None:
    other = services.create_draft_invoice(customer=alice_company, lines=[_line()], by=SYSTEM)
    series = InvoiceSeries.objects.get(code="F")
    first, second = (series.display_number(series.next_number + n) for n in (0, 1))

    page = staff_client.post(
        CHANGELIST, {"action": "finalize", "_selected_action": [draft.pk, other.pk]}
    ).content.decode()

    assert first in page and second in page
    assert Invoice.objects.filter(status="draft").count() == 2  # nothing done yet
    _act(staff_client, "finalize", draft, other)
    assert [
        i.display_number for i in Invoice.objects.filter(pk__in=[draft.pk, other.pk]).order_by("pk")
    ] == [first, second]


def test_the_finalize_action_finalizes_through_the_service(
    staff_client: Client, billing_staff: User, draft: Invoice
) -> None:
    _act(staff_client, "finalize", draft)

    draft.refresh_from_db()
    assert draft.status == Invoice.Status.OPEN
    assert draft.display_number == "F-000001"
    [event] = _events("invoice.finalized")
    assert (event.object_id, event.actor_id) == (str(draft.pk), str(billing_staff.pk))


def test_an_action_reports_each_refused_invoice_and_still_does_the_others(
    staff_client: Client, open_invoice: Invoice, alice_company: Customer
) -> None:
    other = services.create_draft_invoice(customer=alice_company, lines=[_line()], by=SYSTEM)

    response = _act(staff_client, "finalize", open_invoice, other)

    texts = [str(m) for m in response.context["messages"]]
    assert any(str(open_invoice) in t and "already finalized" in t for t in texts)
    other.refresh_from_db()
    assert any(f"Finalized: {other.display_number}." in t for t in texts)  # names the number
    other.refresh_from_db()
    assert other.status == Invoice.Status.OPEN
    assert len(_events("invoice.finalized")) == 2  # the fixture's, and this one


@pytest.mark.parametrize(
    ("action", "status", "event"),
    [
        ("void", Invoice.Status.VOID, "invoice.voided"),
        ("mark_uncollectible", Invoice.Status.UNCOLLECTIBLE, "invoice.marked_uncollectible"),
        ("issue_full_credit_note", Invoice.Status.PAID, "invoice.credited"),
    ],
)
def test_the_status_actions_go_through_the_services(
    staff_client: Client, open_invoice: Invoice, action: str, status: str, event: str
) -> None:
    _act(staff_client, action, open_invoice)

    open_invoice.refresh_from_db()
    assert open_invoice.status == status
    assert _events(event), f"no {event} event"


# --- the seller, customers and the rest ----------------------------------------------------


def test_the_company_profile_can_be_added_once_and_never_deleted(
    staff_client: Client, company: CompanyProfile
) -> None:
    assert staff_client.get(reverse("admin:billing_companyprofile_add")).status_code == 403
    delete = reverse("admin:billing_companyprofile_delete", args=[company.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert CompanyProfile.objects.count() == 1


def test_the_company_profile_is_changed_through_the_service(
    staff_client: Client, company: CompanyProfile
) -> None:
    url = reverse("admin:billing_companyprofile_change", args=[company.pk])
    form = staff_client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data.pop("logo", None)
    data["phone"] = "+46 8 999 999"

    response = staff_client.post(url, data)

    assert response.status_code == 302, response.content.decode()[:2000]
    company.refresh_from_db()
    assert company.phone == "+46 8 999 999"
    [event] = _events("company.profile_updated")
    assert event.details["fields"] == ["phone"]


def test_a_customer_added_in_the_admin_goes_through_the_service(
    staff_client: Client, billing_staff: User
) -> None:
    data = {
        "name": "Gamla Stan Café AB",
        "kind": "company",
        "identity_number": "5566771233",
        "vat_id": "",
        "email": "kaffe@gamlastan.example",
        "country": "SE",
        "language": "sv",
        "currency": "SEK",
    }
    response = staff_client.post(reverse("admin:billing_customer_add"), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    customer = Customer.objects.get(name="Gamla Stan Café AB")
    assert customer.identity_number == "556677-1233"
    assert [e.object_id for e in _events("customer.created")] == [str(customer.pk)]


def test_a_customer_with_a_bad_organisation_number_is_refused_and_nothing_is_created(
    staff_client: Client,
) -> None:
    data = {
        "name": "Felaktig AB",
        "kind": "company",
        "identity_number": "5566771234",
        "email": "x@example.test",
        "country": "SE",
        "language": "sv",
        "currency": "SEK",
    }
    response = staff_client.post(reverse("admin:billing_customer_add"), data)

    assert response.status_code == 200
    assert "not a valid organisation number" in response.content.decode()
    assert not Customer.objects.filter(name="Felaktig AB").exists()
    assert not _events("customer.created")


def test_every_billing_model_has_an_admin_page(
    staff_client: Client, company: CompanyProfile
) -> None:
    for model in ("companyprofile", "customer", "portalaccount", "invoiceseries", "invoice"):
        response = staff_client.get(reverse(f"admin:billing_{model}_changelist"), follow=True)
        assert response.status_code == 200, model


def test_the_billing_admin_writes_nothing_itself() -> None:
    modules = sorted((Path(__file__).resolve().parents[2] / "billing" / "admin").glob("*.py"))
    assert len(modules) > 1
    for module in modules:
        writes = re.findall(
            r"\.save\(|\.delete\(|\.objects\.(?:create|update|bulk_\w+|get_or_create)",
            module.read_text(),
        )
        assert writes == [], module.name
