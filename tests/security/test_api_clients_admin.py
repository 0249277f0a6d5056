"""API clients in the admin (security.api.admin): only a security officer registers,
changes or removes one; every other role is refused; a confidential client's secret is
shown once and stored hashed; every change is audited, never with the secret."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client
from oauth2_provider.models import AccessToken, Application

from audit.models import AuditEvent
from security.models import ApiClient, User
from security.roles import SECURITY_OFFICER, STAFF_ROLES
from tests.api.conftest import issue_token
from tests.factories import audit_events, make_user, with_role

pytestmark = pytest.mark.django_db
CHANGELIST = "/admin/security/apiclient/"
ADD = "/admin/security/apiclient/add/"


@pytest.fixture
def officer(db: None) -> User:
    return with_role(make_user("officer", is_staff=True), SECURITY_OFFICER)


def _register(browser: Client, **overrides: Any) -> Any:
    form: dict[str, Any] = {
        "name": "ERP",
        "kind": "integration",
        "scopes": ["invoices:read", "invoices:write"],
    }
    form.update(overrides)
    return browser.post(ADD, form)


@pytest.mark.parametrize("role", [r for r in STAFF_ROLES if r != SECURITY_OFFICER])
def test_every_other_role_is_refused(role: str, admin_client_for: Callable[[User], Client]) -> None:
    browser = admin_client_for(with_role(make_user("someone", is_staff=True), role))
    assert browser.get(CHANGELIST).status_code == 403
    assert browser.get(ADD).status_code == 403
    assert _register(browser).status_code == 403
    assert not Application.objects.exists()


def test_the_security_officer_registers_an_integration_and_sees_its_secret_once(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    browser = admin_client_for(officer)
    answer = _register(browser)
    assert answer.status_code == 200
    page = answer.content.decode()
    application = Application.objects.get()
    secret = page.split('<code id="client-secret">')[1].split("</code>")[0]
    assert len(secret) >= 40
    assert application.client_secret != secret
    assert check_password(secret, application.client_secret)
    assert application.client_type == Application.CLIENT_CONFIDENTIAL
    account = application.user
    assert account is not None and not account.has_usable_password()
    assert account.has_perm("billing.add_invoice") and not account.has_perm(
        "payments.refund_payment"
    )
    client = ApiClient.objects.get()
    assert client.allowed_scopes == ["invoices:read", "invoices:write"]
    assert secret not in browser.get(f"{CHANGELIST}{client.pk}/change/").content.decode()
    [event] = audit_events("api.client_registered")
    assert event.details["client_id"] == application.client_id
    assert secret not in json.dumps([e.details for e in AuditEvent.objects.all()])


def test_a_customer_app_needs_an_https_redirect(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    browser = admin_client_for(officer)
    answer = _register(
        browser,
        kind="customer_app",
        scopes=["openid", "invoices:read"],
        redirect_uris="http://evil.example/cb",
    )
    assert answer.status_code == 200
    assert "must be an https:// URL" in answer.content.decode()
    assert not Application.objects.exists()
    ok = _register(
        browser,
        kind="customer_app",
        scopes=["openid", "invoices:read"],
        redirect_uris="https://app.example/cb",
    )
    assert ok.status_code == 200
    application = Application.objects.get()
    assert application.client_type == Application.CLIENT_PUBLIC
    assert application.user is None


def test_an_integration_cannot_hold_openid_connect_scopes(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    answer = _register(admin_client_for(officer), scopes=["openid", "invoices:read"])
    assert "not a scope this kind of client may hold" in answer.content.decode()
    assert not Application.objects.exists()


def test_taking_a_scope_away_revokes_the_clients_tokens(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    browser = admin_client_for(officer)
    _register(browser)
    client = ApiClient.objects.select_related("application").get()
    issue_token(client.application, scopes="invoices:write")
    answer = browser.post(
        f"{CHANGELIST}{client.pk}/change/",
        {"name": "ERP", "kind": "integration", "scopes": ["invoices:read"]},
    )
    assert answer.status_code == 302
    assert not AccessToken.objects.exists()
    client.refresh_from_db()
    assert client.allowed_scopes == ["invoices:read"]
    assert not client.application.user.has_perm("billing.add_invoice")
    [event] = audit_events("api.client_changed")
    assert event.details["scopes_taken"] == ["invoices:write"]


def test_removing_a_client_ends_its_tokens_and_its_account(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    browser = admin_client_for(officer)
    _register(browser)
    client = ApiClient.objects.select_related("application").get()
    account = client.application.user
    issue_token(client.application, scopes="invoices:read")
    answer = browser.post(f"{CHANGELIST}{client.pk}/delete/", {"post": "yes"})
    assert answer.status_code == 302
    assert not Application.objects.exists()
    assert not AccessToken.objects.exists()
    account.refresh_from_db()
    assert not account.is_active
    assert len(audit_events("api.client_removed")) == 1


def test_django_oauth_toolkits_own_admin_pages_are_gone(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    browser = admin_client_for(officer)
    for page in ("application", "accesstoken", "refreshtoken", "grant", "idtoken"):
        assert browser.get(f"/admin/oauth2_provider/{page}/").status_code == 404


def test_registering_needs_a_fresh_second_factor(
    officer: User, unverified_staff_client_for: Callable[[User], Client]
) -> None:
    answer = _register(unverified_staff_client_for(officer))
    assert answer.status_code == 302
    assert not Application.objects.exists()
