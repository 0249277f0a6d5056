"""Issue 27, item 2: SQL and script payloads into every form field and query parameter.

The pages come from the URL walk (tests/security/url_catalogue.py), each opened by the
one who may: the public pages anonymously, the portal by customer Bob (on his own
things), the admin and the staff pages by a verified superuser. On each page every form
is read from the HTML and posted back with each payload in every field a person types
or chooses; every query parameter the page's forms and links use (and the usual ``q``,
``o``, ``p``, ``next``...) gets each payload too. Then, for every answer:

- nothing 500s and no database error leaks;
- a script payload never comes back unescaped (reflected, or stored and shown later:
  every page is read again after the posts);
- a time-based SQL payload does not put the database to sleep;
- Bob never sees Alice's invoice through a search.

Bounded: seven payloads, each carrying a script and an SQL attack; one request per page
and payload with every parameter at once, one per parameter alone, one per form and
payload.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import lxml.html
import pytest
from django.test import Client

from billing.models import Customer, Invoice
from security.models import User
from tests.factories import line, make_user
from tests.payments.conftest import vault_keyring  # noqa: F401 - a keyring per test
from tests.security.url_catalogue import (
    CUSTOMER_OWN,
    PUBLIC,
    SIGN_OUT,
    Entry,
    Victim,
    every_pattern,
    url_of,
)
from tests.security.victims import bob_victim  # noqa: F401 - Bob's seeded things

pytestmark = pytest.mark.django_db

SLEEP_SECONDS = 8
# Each payload carries a script and an SQL attack at once; ``DANGEROUS`` is the part of
# it that must never come back unescaped.
PAYLOADS = [
    """'"><script>alert("t27")</script>' OR '1'='1' --""",
    '"><img src=x onerror=alert("t27")>"; DROP TABLE billing_invoice; --',
    "</textarea><svg/onload=alert('t27')>1 UNION SELECT username, password FROM security_user--",
    "%' AND 1=CAST((SELECT version()) AS int)-- {{7*7}}${7*7} ../../../../etc/passwd \\'",
    f"1' AND (SELECT 1 FROM pg_sleep({SLEEP_SECONDS})) IS NOT NULL--",
    f"1); SELECT pg_sleep({SLEEP_SECONDS});--",
    "x" * 5000 + "😀\u202e\u0301",
]
DANGEROUS = [
    '<script>alert("t27")</script>',
    '<img src=x onerror=alert("t27")>',
    "<svg/onload=alert('t27')>",
]
SQL_PAYLOADS = [
    "' OR '1'='1",
    "1' OR 1=1--",
    "1 UNION SELECT username, password FROM security_user--",
    "%",
]
# What a database error leaking into a page looks like.
DATABASE_ERRORS = ("syntax error at or near", "ProgrammingError", "psycopg", "DataError")
USUAL_PARAMETERS = ("q", "o", "p", "page", "status", "next", "e", "_changelist_filters")
# Pages whose forms the walk leaves alone: they end the session or delete what the
# other pages show (deleting is tried by the URL walk and the admin tests).
SKIPPED_FORMS = SIGN_OUT | {"security:end_other_sessions", "admin:password_change"}
TEXT_INPUTS = {"text", "search", "email", "url", "tel", "number", "password", "date", "", None}


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str]  # what the page would send
    typed: list[str]  # the fields a person types into or chooses


def _forms(url: str, html: str) -> Iterator[Form]:
    document = lxml.html.fromstring(html)
    for form in document.forms:
        method = (form.method or "GET").upper()
        action = form.action or url
        fields: dict[str, str] = {}
        typed: list[str] = []
        for element in form.inputs:
            name = element.name
            if not name:
                continue
            tag = element.tag
            kind = (element.get("type") or "").lower() if tag == "input" else tag
            if kind in ("submit", "button", "image", "reset", "file"):
                continue
            if kind in ("checkbox", "radio"):
                if element.checked:
                    fields[name] = element.get("value") or "on"
                continue
            fields[name] = element.value if isinstance(element.value, str) else ""
            if kind in TEXT_INPUTS or kind in ("textarea", "select"):
                typed.append(name)
        yield Form(action, method, fields, typed)


def _query_parameters(url: str, html: str) -> set[str]:
    names = set(USUAL_PARAMETERS)
    document = lxml.html.fromstring(html)
    for href in document.xpath("//a/@href"):
        parts = urlsplit(href)
        if parts.query and (not parts.path or parts.path == urlsplit(url).path):
            names |= {name for name, _value in parse_qsl(parts.query, keep_blank_values=True)}
    for form in _forms(url, html):
        if form.method == "GET":
            names |= set(form.fields)
    return names


@dataclass
class Findings:
    problems: list[str]
    requests: int = 0

    def check(self, what: str, response: Any, payload: str, seconds: float) -> None:
        self.requests += 1
        body = response.content.decode(errors="replace")
        html = response.get("Content-Type", "").startswith("text/html")
        if response.status_code >= 500:
            self.problems.append(f"{what}: {response.status_code}")
        if html and any(error in body for error in DATABASE_ERRORS):
            self.problems.append(f"{what}: a database error shows")
        if html and any(fragment in body for fragment in DANGEROUS):
            self.problems.append(f"{what}: a script comes back unescaped")
        if "pg_sleep" in payload and seconds >= SLEEP_SECONDS - 1:
            self.problems.append(f"{what}: took {seconds:.1f} s (pg_sleep ran?)")


def _send(client: Client, method: str, url: str, data: dict[str, str]) -> tuple[Any, float]:
    started = time.monotonic()
    response = client.get(url, data) if method == "GET" else client.post(url, data)
    return response, time.monotonic() - started


def _attack_page(client: Client, url: str, findings: Findings, *, forms: bool) -> bool:
    """Attack the page's parameters (and forms); False when it is no page to attack."""
    page = client.get(url)
    if page.status_code != 200 or not page["Content-Type"].startswith("text/html"):
        return False
    html = page.content.decode()
    names = sorted(_query_parameters(url, html))
    for payload in PAYLOADS:  # every payload in every parameter at once...
        response, seconds = _send(client, "GET", url, dict.fromkeys(names, payload))
        findings.check(f"GET {url}?{'&'.join(names)}", response, payload, seconds)
    for name in sorted(set(names) - set(USUAL_PARAMETERS)):  # ...and the page's own alone
        response, seconds = _send(client, "GET", url, {name: PAYLOADS[0]})
        findings.check(f"GET {url}?{name}=", response, PAYLOADS[0], seconds)
    if not forms:
        return True
    for form in _forms(url, html):
        if not form.typed:
            continue
        for payload in PAYLOADS:
            data = {**form.fields, **dict.fromkeys(form.typed, payload)}
            response, seconds = _send(client, form.method, form.action, data)
            findings.check(
                f"{form.method} {form.action} (form of {url})", response, payload, seconds
            )
    return True


def _shown_unescaped(client: Client, urls: list[str]) -> list[str]:
    """Pages showing a script payload raw after the posts: stored and rendered unescaped."""
    shown = []
    for url in urls:
        body = client.get(url).content.decode(errors="replace")
        shown += [f"{url}: {fragment}" for fragment in DANGEROUS if fragment in body]
    return shown


def _client(user: User | None, admin_client_for: Callable[[User], Client]) -> Client:
    if user is None:
        return Client(raise_request_exception=False)
    if user.is_staff:
        client = admin_client_for(user)
        client.raise_request_exception = False
        return client
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


def _pages(area: str, victim: Victim) -> list[str]:
    def wanted(entry: Entry) -> bool:
        if entry.name in SKIPPED_FORMS or entry.name.endswith(("_delete", "_history")):
            return False
        if area == "public":
            return entry.name in PUBLIC
        customer_page = entry.name in CUSTOMER_OWN or (
            entry.arguments and not entry.is_admin and entry.name.startswith("portal")
        )
        if area == "portal":
            return bool(customer_page)
        staff_page = entry.name not in PUBLIC and not customer_page
        if area == "admin lists":
            return staff_page and not entry.arguments and entry.is_admin
        return staff_page and not (not entry.arguments and entry.is_admin)

    return [url_of(entry, victim) for entry in every_pattern() if wanted(entry)]


@pytest.mark.parametrize("area", ["public", "portal", "admin lists", "admin and staff forms"])
def test_payloads_in_every_field_and_parameter_execute_nothing(
    area: str,
    bob_victim: Victim,  # noqa: F811
    bob: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    user: User | None = None
    if area == "portal":
        user = bob
    elif area.startswith("admin"):
        user = make_user("root", is_staff=True, is_superuser=True)
    client = _client(user, admin_client_for)
    pages = _pages(area, bob_victim)
    findings = Findings([])

    attacked = [
        url for url in pages if _attack_page(client, url, findings, forms=area != "admin lists")
    ]

    assert findings.problems == []
    assert _shown_unescaped(client, pages) == []
    assert len(attacked) >= 3 and findings.requests >= len(PAYLOADS) * len(attacked)


def test_a_search_full_of_sql_shows_bob_none_of_alices_invoices(
    bob_victim: Victim,  # noqa: F811
    bob: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> None:
    alices = make_open_invoice(alice_company, [line("Secret project", "1", "99.00")])
    client = Client()
    client.force_login(bob)

    for payload in SQL_PAYLOADS:
        for status in ("all", "open", payload):
            page = client.get("/portal/", {"q": payload, "status": status}).content.decode()
            assert alices.display_number not in page and "Secret project" not in page
