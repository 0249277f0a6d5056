"""The API's lean middleware stack (docs/decisions.md, 78): a request under ``/api/`` passes
by the browser's layers (session, session user, second factor, session policy, customer
language, messages). Attacks on what that skips: a browser's session never acts on the
API, no path reaches the portal or the admin without Django's CSRF check, and the API's
answers keep the security headers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from django.test import Client
from rest_framework.views import APIView

from billing.models import Customer, Invoice
from security.api.authentication import BearerAuthentication
from security.middleware import BrowserOnly
from security.models import User
from tests.api.conftest import ALL_SCOPES, Api, make_token
from tests.factories import table_snapshot
from tests.security.url_catalogue import every_pattern

pytestmark = pytest.mark.django_db

DRAFT = {"lines": [{"description": "x", "quantity": "1", "unit_price": "1", "vat_rate": "25"}]}
# The two plain views under /api/: public, and neither reads a session or a user.
PLAIN_API_VIEWS = {"api:docs", "not-found"}


@pytest.fixture
def erp_api(db: None) -> Api:
    """A server integration's client with every scope (tests/api's, for the attacks here)."""
    return Api(make_token(None, ALL_SCOPES))


def _signed_in(user: User) -> Client:
    """A browser with a live portal session (and the CSRF cookie a page of it set)."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get("/portal/").status_code == 200
    return browser


def _csrf_token(browser: Client) -> str:
    return browser.cookies[settings.CSRF_COOKIE_NAME].value


def test_alices_portal_session_alone_reads_nothing_from_the_api(
    alice: User, alice_company: Customer, make_open_invoice: Any
) -> None:
    invoice = make_open_invoice(alice_company)
    browser = _signed_in(alice)

    for path in ("/api/v1/me", "/api/v1/invoices", f"/api/v1/invoices/{invoice.pk}"):
        response = browser.get(path)
        assert response.status_code == 401, path
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert set(response.json()) == {"error"}
        assert invoice.display_number not in response.content.decode()


def test_a_portal_session_with_its_csrf_token_still_cannot_write_through_the_api(
    alice: User, alice_company: Customer
) -> None:
    browser = _signed_in(alice)
    before = table_snapshot()

    response = browser.post(
        "/api/v1/invoices",
        json.dumps({**DRAFT, "customer": alice_company.pk}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=_csrf_token(browser),
        HTTP_IDEMPOTENCY_KEY="k-1",
    )

    assert response.status_code == 401
    assert table_snapshot() == before


def test_a_bearer_request_acts_for_its_token_never_for_the_session_beside_it(
    alice: User, erp_api: Api
) -> None:
    browser = _signed_in(alice)
    browser.defaults["HTTP_AUTHORIZATION"] = f"Bearer {erp_api.raw}"

    response = browser.get("/api/v1/me")

    assert response.status_code == 200
    assert response.json()["kind"] == "integration"
    assert response.json()["user"] != alice.username


def test_the_api_neither_reads_nor_writes_the_session_cookie(alice: User, erp_api: Api) -> None:
    browser = _signed_in(alice)
    browser.defaults["HTTP_AUTHORIZATION"] = f"Bearer {erp_api.raw}"

    response = browser.get("/api/v1/invoices")

    assert response.status_code == 200
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies  # no session, CSRF or language cookie set or refreshed


@pytest.mark.parametrize(
    "path",
    ["/api/../language/", "/api/%2e%2e/language/", "/api/v1/../../language/"],
)
def test_a_path_under_api_never_reaches_a_browser_view(alice: User, path: str) -> None:
    """The lean stack is chosen by the path the URL resolver matches: a path that starts
    with /api/ resolves under /api/ only, so it cannot carry a session past CSRF to a page."""
    browser = _signed_in(alice)

    response = browser.post(path, {"language": "sv", "next": "/portal/"})

    assert response.status_code in (401, 404)
    assert response["Content-Type"] == "application/json"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_a_browser_view_still_refuses_a_post_without_the_csrf_token(alice: User) -> None:
    browser = _signed_in(alice)

    response = browser.post("/language/", {"language": "sv", "next": "/portal/"})

    assert response.status_code == 403
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


def test_every_view_under_api_authenticates_by_bearer_token_only() -> None:
    """What makes skipping the session and CSRF layers safe: no view under /api/ accepts
    any credential but a bearer token (a browser sends none by itself)."""
    under_api = [entry for entry in every_pattern() if entry.route.startswith("api/")]
    assert len(under_api) > 10
    for entry in under_api:
        view_class = getattr(entry.pattern.callback, "cls", None)
        if view_class is None:
            assert entry.name in PLAIN_API_VIEWS, f"{entry.name} is not a REST framework view"
            continue
        assert issubclass(view_class, APIView), entry.name
        authentication = set(view_class.authentication_classes)
        assert authentication <= {BearerAuthentication}, f"{entry.name}: {authentication}"


@pytest.mark.parametrize(
    "who,path,status",
    [
        ("integration", "/api/v1/invoices", 200),
        ("integration", "/api/v1/no-such-thing", 404),
        ("nobody", "/api/v1/invoices", 401),
        ("nobody", "/api/schema/", 200),
    ],
)
def test_api_answers_carry_the_security_headers(
    settings: Any, erp_api: Api, who: str, path: str, status: int
) -> None:
    settings.SECURE_HSTS_SECONDS = 31_536_000
    client = Client()
    headers = {"Authorization": f"Bearer {erp_api.raw}"} if who == "integration" else {}

    response = client.get(path, secure=True, headers=headers)

    assert response.status_code == status
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["X-Request-Id"].startswith("req_")
    # Every API answer, an integration's too (no session user): never kept by a cache.
    assert "no-store" in response["Cache-Control"]


def test_an_idempotent_replay_is_not_cached_either(erp_api: Api, alice_company: Customer) -> None:
    body = {**DRAFT, "customer": alice_company.pk}
    first = erp_api.post("invoices", body, key="replayed-1")
    again = erp_api.post("invoices", body, key="replayed-1")

    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert "no-store" in again["Cache-Control"]


def test_browser_only_refuses_a_layer_it_could_not_skip() -> None:
    """CSRF's check is a view hook, which passing a request on from ``__call__`` would not
    skip: such a layer cannot be made browser-only (it stays on for every request)."""
    with pytest.raises(TypeError, match="process_view"):

        class _Skipped(BrowserOnly, CsrfViewMiddleware):
            pass


def test_the_portal_keeps_its_session_layers(alice: User) -> None:
    browser = _signed_in(alice)

    page = browser.get("/portal/")

    assert page.status_code == 200
    assert page.wsgi_request.user == alice
    assert page.wsgi_request.session.session_key


def test_the_api_creates_and_finalizes_as_before_through_the_lean_stack(
    erp_api: Api, company: Any, alice_company: Customer
) -> None:
    created = erp_api.post("invoices", {**DRAFT, "customer": alice_company.pk})
    finalized = erp_api.post(f"invoices/{created.json()['id']}/finalize")

    assert created.status_code == 201
    assert finalized.status_code == 200
    assert Invoice.objects.get(pk=created.json()["id"]).status == Invoice.Status.OPEN


def test_a_nul_character_on_the_api_is_refused_in_the_api_error_shape(erp_api: Api) -> None:
    response = erp_api.get("invoices", status="open\x00")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "nul_character"
    assert response.json()["error"]["field"] == "status"
