"""No page of the admin shows an amount in minor units: every page of the seeded demo is
rendered (each list, the first objects' pages, the dashboards and the action pages) and
searched for the stored integers of the demo's amounts."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse

from billing.models import Invoice, InvoiceLine
from payments.models import BankLine, Payment, Refund
from security.models import User

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_settings")]

# Below this an integer could as well be a count, an id or a year.
SMALLEST = 10_000


def _stored_amounts() -> set[int]:
    amounts: set[int] = set()
    for row in Invoice.objects.values_list(
        "net_total", "vat_total", "gross_total", "amount_paid", "amount_credited"
    ):
        amounts.update(row)
    amounts.update(
        i.amount_due
        for i in Invoice.objects.only(
            "gross_total", "amount_paid", "amount_credited", "status", "kind"
        )
    )
    amounts.update(InvoiceLine.objects.values_list("net_amount", flat=True))
    amounts.update(Payment.objects.values_list("amount", flat=True))
    amounts.update(Refund.objects.values_list("amount", flat=True))
    amounts.update(BankLine.objects.values_list("amount", flat=True))
    # Digits that are something else on the pages: OCR references, numbers, ids.
    other = {int(r) for r in Invoice.objects.values_list("ocr_reference", flat=True) if r}
    other.update(Invoice.objects.values_list("pk", flat=True))
    return {a for a in amounts if a >= SMALLEST} - other


def _admin_pages(client: Client) -> Iterator[str]:
    yield reverse("admin:index")
    yield reverse("admin:audit_verify_chain")
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        try:
            changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        except NoReverseMatch:
            continue
        yield changelist
        request = RequestFactory().get(changelist)
        request.user = User.objects.get(username="root-pages")
        for pk in model_admin.get_queryset(request).values_list("pk", flat=True)[:3]:
            yield reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[pk])
    for invoice in Invoice.objects.filter(status="open", kind="invoice")[:2]:
        yield reverse("admin:billing_invoice_credit", args=[invoice.pk])
    for line in BankLine.objects.filter(status="review")[:2]:
        yield reverse("admin:payments_bankline_resolve", args=[line.pk])


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<svg\b.*?</svg>", " ", html, flags=re.S)  # the admin's icon sprites
    return re.sub(r"<[^>]+>", " ", html)


def test_no_admin_page_of_the_demo_shows_a_minor_unit_amount(
    admin_client_for: Callable[[User], Client],
) -> None:
    call_command("seed_demo", stdout=io.StringIO())
    superuser = User.objects.create_superuser(username="root-pages", password=None)
    client = admin_client_for(superuser)
    amounts = _stored_amounts()
    assert len(amounts) > 50

    # A whole number, not digits inside a word: a random hex id ("evt_3a18000f…") is none.
    pattern = re.compile(r"(?<![\w.,])(" + "|".join(str(a) for a in amounts) + r")(?!\w)")
    seen, found = 0, {}
    for path in dict.fromkeys(_admin_pages(client)):
        response = client.get(path)
        if response.status_code != 200:
            continue
        seen += 1
        hits = pattern.findall(_visible_text(response.content.decode()))
        if hits:
            found[path] = sorted(set(hits))[:5]

    assert seen > 60
    assert found == {}
