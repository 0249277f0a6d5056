"""The admin's read-only page of signed documents: facts for readers, the PDF for those
permitted to download it, nothing to add, change or delete."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from security.models import User
from security.roles import ACCOUNTANT, AUDITOR
from tests.factories import audit_events

CHANGELIST = "/admin/documents/invoicedocument/"


def _with_role(user: User, role: str) -> User:
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def accountant_client(accountant: User, admin_client_for: Callable[[User], Client]) -> Client:
    return admin_client_for(_with_role(accountant, ACCOUNTANT))


@pytest.fixture
def auditor_client(admin_client_for: Callable[[User], Client]) -> Client:
    auditor = User.objects.create_user(username="auditor-ada", is_staff=True)
    return admin_client_for(_with_role(auditor, AUDITOR))


@pytest.mark.django_db
def test_the_accountant_reads_the_facts_and_downloads_that_version_audited(
    accountant_client: Client, alice_document: InvoiceDocument
) -> None:
    page = accountant_client.get(CHANGELIST).content.decode()
    detail = accountant_client.get(f"{CHANGELIST}{alice_document.pk}/change/").content.decode()

    # The list: the invoice, its customer and amount, the link, the hash's first characters;
    # the document's page: the whole hash and the signer.
    assert alice_document.invoice.display_number in page
    assert alice_document.invoice.customer.name in page
    assert f"{alice_document.sha256[:12]}…" in page
    for fact in (alice_document.sha256, alice_document.signer_fingerprint):
        assert fact in detail
    link = reverse(
        "documents:download_version", args=[alice_document.invoice_id, alice_document.version]
    )
    assert f'href="{link}"' in page
    response = accountant_client.get(link)
    assert response.status_code == 200
    assert response["X-Content-SHA256"] == alice_document.sha256
    assert len(audit_events("invoice.document_downloaded")) == 1


@pytest.mark.django_db
def test_the_auditor_reads_the_facts_but_gets_no_download_link_and_no_pdf(
    auditor_client: Client, alice_document: InvoiceDocument
) -> None:
    detail = auditor_client.get(f"{CHANGELIST}{alice_document.pk}/change/")
    page = auditor_client.get(CHANGELIST).content.decode()

    assert detail.status_code == 200
    assert alice_document.sha256 in page
    assert "/pdf/v" not in page + detail.content.decode()
    link = reverse(
        "documents:download_version", args=[alice_document.invoice_id, alice_document.version]
    )
    assert auditor_client.get(link).status_code == 404
    assert audit_events("invoice.document_downloaded") == []


@pytest.mark.django_db
def test_nobody_adds_changes_or_deletes_a_document_in_the_admin(
    accountant_client: Client, alice_document: InvoiceDocument
) -> None:
    change = f"{CHANGELIST}{alice_document.pk}/change/"

    assert accountant_client.get(f"{CHANGELIST}add/").status_code == 403
    assert accountant_client.post(change, {"reason": "edited"}).status_code == 403
    assert accountant_client.post(f"{CHANGELIST}{alice_document.pk}/delete/").status_code == 403
    posted = accountant_client.post(
        CHANGELIST,
        {"action": "delete_selected", "_selected_action": [alice_document.pk], "post": "yes"},
    )
    assert posted.status_code in (200, 302)
    assert InvoiceDocument.objects.get(pk=alice_document.pk).reason == "issued"


def _queries(client: Client) -> int:
    client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(CHANGELIST).status_code == 200
    return len(captured)


@pytest.mark.django_db
def test_the_list_uses_the_same_number_of_queries_for_1_and_4_documents(
    accountant_client: Client,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    sign_invoice: Callable[[Invoice], InvoiceDocument],
) -> None:
    sign_invoice(make_open_invoice(alice_company))
    with_one = _queries(accountant_client)

    for _ in range(3):
        sign_invoice(make_open_invoice(alice_company))
    with_four = _queries(accountant_client)

    assert with_four == with_one
