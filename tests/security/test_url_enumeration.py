"""Issue 27, item 1: every URL pattern of the project, tried by everyone who must not reach it.

The patterns are walked from the resolver (tests/security/url_catalogue.py), so a page
added tomorrow is tried tomorrow. Arguments are customer Bob's seeded objects; Alice,
an anonymous visitor and staff who have not proved a second factor go after them with
GET and POST. Allowed without signing in: ``PUBLIC``; allowed to a signed-in customer
without arguments: ``CUSTOMER_OWN`` (both documented in docs/security-testing.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import Client

from billing.documents.models import InvoiceDocument
from billing.models import Invoice
from payments.models import Payment, PaymentMethod
from security.models import User, UserSession
from tests.billing.documents.conftest import (  # noqa: F401 - the signing key fixtures
    sign_invoice,
    signing_key,
    signing_key_dir,
)
from tests.factories import make_user
from tests.payments.conftest import vault_keyring  # noqa: F401 - a keyring per test
from tests.security.url_catalogue import (
    CUSTOMER_OWN,
    PUBLIC,
    SIGN_OUT,
    Entry,
    Outcome,
    Victim,
    every_pattern,
    outcome,
    url_of,
)
from tests.security.victims import bob_victim  # noqa: F401 - Bob's seeded things

pytestmark = pytest.mark.django_db


def _attempts(
    client: Client, entries: list[Entry], victim: Victim
) -> Iterator[tuple[Entry, str, Outcome]]:
    for entry in entries:
        url = url_of(entry, victim)
        for method in ("GET", "POST"):
            if method == "POST" and entry.name in SIGN_OUT:
                continue  # the attacker would only end her own session
            yield entry, method, outcome(client, method, url)


def _breaches(
    client: Client, entries: list[Entry], victim: Victim, allowed_pages: set[str]
) -> list[str]:
    """Every attempt that was neither refused nor sent on to a page the visitor may see."""
    return [
        f"{method} {url_of(entry, victim)} [{entry.name}]: {result}"
        for entry, method, result in _attempts(client, entries, victim)
        if not result.refused and (result.page == entry.name or result.page not in allowed_pages)
    ]


def test_the_walk_finds_every_kind_of_page() -> None:
    """The walk itself works: portal, paying, account, documents and admin pages, named or not."""
    names = {entry.name for entry in every_pattern()}
    assert {
        "portal:invoice",
        "portal_pay:pay",
        "security:user_roles",
        "documents:export",
        "delivery:open_link",
        "admin:billing_invoice_change",
        "admin:payments_payment_refund",
    } <= names
    assert any(name.startswith("admin:<") for name in names)  # the admin's unnamed redirects
    assert len(names) > 200


def test_the_public_and_customer_lists_name_only_real_patterns() -> None:
    names = {entry.name for entry in every_pattern()}
    assert set(PUBLIC) - names == set()
    assert set(CUSTOMER_OWN) - names == set()
    with_arguments = {entry.name for entry in every_pattern() if entry.arguments}
    assert set(CUSTOMER_OWN) & with_arguments == set()


def test_an_anonymous_visitor_reaches_only_the_public_pages(bob_victim: Victim) -> None:  # noqa: F811
    entries = [entry for entry in every_pattern() if entry.name not in PUBLIC]

    assert _breaches(Client(), entries, bob_victim, set(PUBLIC)) == []


@pytest.fixture
def bobs_document(
    bob_victim: Victim,  # noqa: F811
    sign_invoice: Callable[[Invoice], InvoiceDocument],  # noqa: F811
) -> InvoiceDocument:
    """Bob's open invoice, signed: its PDF download is one more URL Alice must not reach."""
    return sign_invoice(Invoice.objects.get(pk=bob_victim.values["*"]["invoice_id"]))


def _bobs_things() -> dict[str, Any]:
    return {
        "invoices": sorted(Invoice.objects.values_list("pk", "status", "amount_paid")),
        "payments": sorted(Payment.objects.values_list("pk", "status", "amount")),
        "cards": sorted(PaymentMethod.objects.values_list("pk", "saved")),
        "sessions": sorted(UserSession.objects.filter(user__username="bob").values_list("pk")),
        "documents": InvoiceDocument.objects.count(),
    }


def test_customer_alice_reaches_no_staff_page_and_none_of_bobs(
    bob_victim: Victim,  # noqa: F811
    bobs_document: InvoiceDocument,
    alice: User,
) -> None:
    before = _bobs_things()
    client = Client()
    client.force_login(alice)
    entries = [
        entry
        for entry in every_pattern()
        if entry.name not in PUBLIC and entry.name not in CUSTOMER_OWN
    ]

    breaches = _breaches(client, entries, bob_victim, set(PUBLIC) | set(CUSTOMER_OWN))

    assert breaches == []
    assert client.get("/portal/").status_code == 200, "Alice was signed out on the way"
    assert _bobs_things() == before


def test_bob_reaches_every_page_of_his_own_the_walk_built(
    bob_victim: Victim,  # noqa: F811
    bobs_document: InvoiceDocument,
    bob: User,
) -> None:
    """The control: the URLs Alice was refused name Bob's real things, not missing rows."""
    client = Client()
    client.force_login(bob)
    own = [
        entry
        for entry in every_pattern()
        if entry.arguments
        and not entry.is_admin
        and entry.name not in PUBLIC
        and bob_victim.names_every_argument_of(entry)
    ]
    staff_pages = {"security:user_roles", "security:reset_credentials"}

    missing = [
        f"{url_of(entry, bob_victim)} [{entry.name}]: {response.status_code}"
        for entry in own
        if entry.name not in staff_pages
        for response in [client.get(url_of(entry, bob_victim))]
        if response.status_code in (403, 404)
    ]

    assert missing == []
    assert len(own) >= 10


@pytest.mark.parametrize("device", ["unverified device", "no device yet"])
def test_staff_without_a_verified_second_factor_reach_no_admin_or_staff_page(
    device: str,
    bob_victim: Victim,  # noqa: F811
    unverified_staff_client_for: Callable[[User], Client],
) -> None:
    """Even a superuser: a password alone opens nothing beyond the public pages."""
    root = make_user("root", is_staff=True, is_superuser=True)
    if device == "unverified device":
        client = unverified_staff_client_for(root)
    else:
        client = Client()
        client.force_login(root)
    entries = [
        entry
        for entry in every_pattern()
        if entry.name not in PUBLIC and (entry.is_admin or entry.name not in CUSTOMER_OWN)
    ]

    assert _breaches(client, entries, bob_victim, set(PUBLIC)) == []
    assert any(entry.is_admin for entry in entries)


def test_a_verified_superuser_reaches_the_admin_the_walk_built(
    bob_victim: Victim,  # noqa: F811
    admin_client_for: Callable[[User], Client],
) -> None:
    """The control for the staff walk: with a verified second factor the admin opens."""
    client = admin_client_for(make_user("root", is_staff=True, is_superuser=True))
    admin_lists = [e for e in every_pattern() if e.name.endswith("_changelist")]

    reached = [outcome(client, "GET", url_of(entry, bob_victim)) for entry in admin_lists]

    assert [str(r) for r in reached if r.refused or r.status != 200] == []
