"""Portal invoice pages: what Alice sees, in her language, with constant queries."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.models import Customer, Invoice
from security.models import User
from tests.factories import line

pytestmark = pytest.mark.django_db


def test_the_front_door_sends_a_customer_to_her_invoices(
    portal_client_for: Callable[[User], Client], alice: User
) -> None:
    response = portal_client_for(alice).get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:invoices")


def test_the_portal_asks_a_stranger_to_sign_in(client: Client) -> None:
    response = client.get(reverse("portal:invoices"))
    assert response.status_code == 302
    assert reverse("security:login") in response["Location"]


def test_staff_and_outsiders_have_no_portal(
    portal_client_for: Callable[[User], Client], outsider: User
) -> None:
    assert portal_client_for(outsider).get(reverse("portal:invoices")).status_code == 404


def test_the_list_shows_only_her_customers_finalized_invoices(
    portal_client_for: Callable[[User], Client],
    alice: User,
    alice_company: Customer,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
    make_draft_invoice: Callable[..., Invoice],
) -> None:
    mine = make_open_invoice(alice_company)
    draft = make_draft_invoice(alice_company)
    bobs = make_open_invoice(bob_company)

    response = portal_client_for(alice).get(reverse("portal:invoices"))

    ids = [invoice.pk for invoice in response.context["page"].object_list]
    assert ids == [mine.pk]
    assert draft.pk not in ids and bobs.pk not in ids


def test_the_list_filters_overdue_and_paid(
    portal_client_for: Callable[[User], Client],
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    current = make_open_invoice(alice_company)
    with time_machine.travel(timezone.now() - datetime.timedelta(days=40)):
        late = make_open_invoice(alice_company, payment_terms_days=30)
    client = portal_client_for(alice)

    def listed(status: str) -> set[int]:
        response = client.get(reverse("portal:invoices"), {"status": status})
        return {invoice.pk for invoice in response.context["page"].object_list}

    assert listed("overdue") == {late.pk}
    assert listed("open") == {current.pk, late.pk}
    assert listed("paid") == set()


def test_search_finds_an_invoice_by_line_text_and_treats_sql_as_text(
    portal_client_for: Callable[[User], Client],
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    wanted = make_open_invoice(alice_company, [line("Roof repair")])
    make_open_invoice(alice_company, [line("Consulting")])
    client = portal_client_for(alice)

    found = client.get(reverse("portal:invoices"), {"q": "roof"})
    injected = client.get(reverse("portal:invoices"), {"q": "' OR 1=1 --"})

    assert [i.pk for i in found.context["page"].object_list] == [wanted.pk]
    assert injected.status_code == 200
    assert list(injected.context["page"].object_list) == []


def test_the_list_runs_the_same_number_of_queries_for_3_or_30_invoices(
    portal_client_for: Callable[[User], Client],
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    client = portal_client_for(alice)
    client.get(reverse("portal:invoices"))  # the session's once-a-minute touch happens here
    for _ in range(3):
        make_open_invoice(alice_company)
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("portal:invoices"))
    for _ in range(27):
        make_open_invoice(alice_company)
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("portal:invoices"))

    assert len(response.context["page"].object_list) == 20
    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_detail_page_shows_lines_vat_ocr_and_bank_details_in_swedish(
    portal_client_for: Callable[[User], Client],
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    invoice = make_open_invoice(alice_company)

    response = portal_client_for(alice).get(reverse("portal:invoice", args=[invoice.pk]))

    page = response.content.decode()
    assert response["Content-Language"] == "sv"
    assert '<html lang="sv">' in page
    assert "Consulting" in page and "Travel" in page
    assert invoice.ocr_reference in page
    assert "5050-1055" in page  # the seller's bankgiro
    assert invoice.gross.format("sv") == "2\u00a0765,53 SEK"
    assert invoice.gross.format("sv") in page  # the gross total, Swedish style


def test_line_figures_are_written_as_on_the_pdf_in_the_readers_language(
    portal_client_for: Callable[[User], Client],
    alice: User,
    bob: User,
    alice_company: Customer,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    figures = [line("Licence", "1000", "1250.5", unit="st")]
    swedish = make_open_invoice(alice_company, figures)
    english = make_open_invoice(bob_company, figures)

    sv = portal_client_for(alice).get(reverse("portal:invoice", args=[swedish.pk]))
    en = portal_client_for(bob).get(reverse("portal:invoice", args=[english.pk]))

    assert "1\u00a0000 st" in sv.content.decode() and "1\u00a0250,50" in sv.content.decode()
    assert "1,000 st" in en.content.decode() and "1,250.50" in en.content.decode()


def test_a_customer_whose_language_is_english_reads_english(
    portal_client_for: Callable[[User], Client],
    bob: User,
    bob_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    invoice = make_open_invoice(bob_company)
    response = portal_client_for(bob).get(reverse("portal:invoice", args=[invoice.pk]))
    assert response["Content-Language"] == "en"
    assert "Pay by card" in response.content.decode()


def test_no_receipt_for_an_open_invoice(
    portal_client_for: Callable[[User], Client],
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    invoice = make_open_invoice(alice_company)
    response = portal_client_for(alice).get(reverse("portal:receipt", args=[invoice.pk]))
    assert response.status_code == 404


def test_the_account_page_links_to_the_security_settings(
    portal_client_for: Callable[[User], Client], alice: User
) -> None:
    page = portal_client_for(alice).get(reverse("portal:account")).content.decode()
    assert reverse("security:account") in page
    assert reverse("security:password_change") in page


def test_an_overdue_invoice_wears_its_own_badge_not_the_open_one(
    portal_client_for: Callable[[User], Client],
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    current = make_open_invoice(alice_company)
    with time_machine.travel(timezone.now() - datetime.timedelta(days=40)):
        late = make_open_invoice(alice_company, payment_terms_days=30)
    client = portal_client_for(alice)

    listing = client.get(reverse("portal:invoices")).content.decode()
    late_page = client.get(reverse("portal:invoice", args=[late.pk])).content.decode()
    current_page = client.get(reverse("portal:invoice", args=[current.pk])).content.decode()

    assert listing.count('<span class="badge badge-overdue">Förfallen</span>') == 1
    assert listing.count('<span class="badge badge-open">Obetald</span>') == 1
    assert '<span class="badge badge-overdue">Förfallen</span>' in late_page
    assert '<span class="badge badge-open">Obetald</span>' in current_page


def test_the_badges_look_different_in_the_stylesheet() -> None:
    from django.contrib.staticfiles import finders

    css = Path(str(finders.find("portal/portal.css"))).read_text(encoding="utf-8")
    rules = dict(re.findall(r"\.badge-(open|overdue) \{([^}]*)\}", css))
    assert rules["open"] != rules["overdue"]
    assert "background: #9b1c14" in rules["overdue"]  # white on dark red: over 7:1 contrast
