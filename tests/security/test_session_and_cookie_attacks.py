"""Issue 27, item 4: session fixation, cookie flags in production, CSRF on every view the
URL walk finds, clickjacking headers on every page a visitor reaches, open redirects.

(Session keys renewed at each sign-in step: tests/security/test_sessions.py; ``next``
after sign-in, verification and the language switch: test_next_and_language_attacks.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.test import Client, RequestFactory, override_settings

from security.models import User
from tests.payments.conftest import vault_keyring  # noqa: F401 - a keyring per test
from tests.security.test_headers import _production_env, _run
from tests.security.url_catalogue import (
    CSRF_EXEMPT,
    CUSTOMER_OWN,
    PUBLIC,
    Victim,
    every_pattern,
    url_of,
)
from tests.security.victims import bob_victim  # noqa: F401 - Bob's seeded things

PASSWORD = "correct horse battery staple"
EVIL_NEXTS = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
]


# Session fixation ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_session_key_planted_before_sign_in_opens_nothing_after_it(alice: User) -> None:
    """The attacker gets a session cookie, plants it in Alice's browser; Alice signs in."""
    attacker = Client()
    attacker.get("/account/login/")
    attacker.session.save()
    planted = attacker.session.session_key
    assert planted is not None
    alice_browser = Client()
    alice_browser.cookies[settings.SESSION_COOKIE_NAME] = planted

    response = alice_browser.post(
        "/account/login/", {"username": alice.email, "password": PASSWORD}
    )

    assert response.status_code == 302
    assert alice_browser.get("/portal/").status_code == 200  # Alice is in...
    assert alice_browser.cookies[settings.SESSION_COOKIE_NAME].value != planted
    attacker.cookies[settings.SESSION_COOKIE_NAME] = planted
    refused = attacker.get("/portal/")  # ...and the planted key is not
    assert refused.status_code == 302 and refused["Location"].startswith("/account/login/")


@pytest.mark.django_db
def test_a_session_key_the_attacker_invented_is_never_adopted(alice: User) -> None:
    invented = "a" * 32
    browser = Client()
    browser.cookies[settings.SESSION_COOKIE_NAME] = invented

    browser.post("/account/login/", {"username": alice.email, "password": PASSWORD})

    assert browser.cookies[settings.SESSION_COOKIE_NAME].value != invented


# Cookies in production ------------------------------------------------------------------


def _production_cookie_settings(tmp_path: Path) -> dict[str, Any]:
    names = [
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_HTTPONLY",
        "CSRF_COOKIE_SAMESITE",
        "LANGUAGE_COOKIE_SECURE",
        "LANGUAGE_COOKIE_HTTPONLY",
        "LANGUAGE_COOKIE_SAMESITE",
    ]
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {names!r}}}))"
    )
    result = _run(["-c", code], _production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_production_settings_mark_every_cookie_secure_and_httponly(tmp_path: Path) -> None:
    values = _production_cookie_settings(tmp_path)

    assert values["SESSION_COOKIE_SECURE"] and values["SESSION_COOKIE_HTTPONLY"]
    assert values["CSRF_COOKIE_SECURE"] and values["CSRF_COOKIE_HTTPONLY"]
    assert values["SESSION_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert values["CSRF_COOKIE_SAMESITE"] in ("Lax", "Strict")
    assert values["LANGUAGE_COOKIE_SECURE"]


@pytest.mark.django_db
def test_a_production_sign_in_sets_its_cookies_secure_httponly_and_samesite(
    tmp_path: Path, alice: User
) -> None:
    """The cookies a browser receives, with production's cookie settings in force."""
    values = _production_cookie_settings(tmp_path)
    with override_settings(**values):
        browser = Client(enforce_csrf_checks=True)
        page = browser.get("/account/login/", secure=True)
        token = page.cookies[settings.CSRF_COOKIE_NAME].value
        response = browser.post(
            "/account/login/",
            {"username": alice.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
            secure=True,
            headers={"referer": "https://testserver/account/login/"},
        )

    assert response.status_code == 302
    jar = SimpleCookie()
    for morsel in [*page.cookies.values(), *response.cookies.values()]:
        jar.load(morsel.OutputString())
    for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME):
        assert jar[name]["secure"] is True, f"{name} without Secure"
        assert jar[name]["httponly"] is True, f"{name} without HttpOnly"
        assert jar[name]["samesite"] in ("Lax", "Strict"), f"{name} without SameSite"


# CSRF on every view ---------------------------------------------------------------------


def test_every_view_the_walk_finds_refuses_a_post_without_the_csrf_token() -> None:
    """Django's CSRF check, as the middleware runs it before each view: a POST carrying the
    cookie but no token is refused by every view but the documented exemptions."""
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    gate = CsrfViewMiddleware(lambda request: HttpResponse())
    factory = RequestFactory()
    accepted = []
    for entry in every_pattern():
        request = factory.post("/", {"anything": "1"})
        request.COOKIES[settings.CSRF_COOKIE_NAME] = "x" * 32
        request.session = {}  # type: ignore[assignment]
        answer = gate.process_view(request, entry.pattern.callback, (), {})
        if answer is None and entry.name not in CSRF_EXEMPT:
            accepted.append(str(entry))
    assert accepted == []


@pytest.mark.django_db
def test_a_forged_post_is_refused_by_every_page_its_visitor_may_open(
    bob_victim: Victim,  # noqa: F811
    bob: User,
) -> None:
    """Live, through the whole middleware stack: Bob's own pages and the public ones refuse a
    cross-site form post (cookies sent, no token) with 403."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    browser.get("/portal/")  # the CSRF cookie, as a browser holds it
    pages = [e for e in every_pattern() if e.name in CUSTOMER_OWN or e.name in PUBLIC]

    answers = {
        entry.name: browser.post(url_of(entry, bob_victim), {"x": "1"}).status_code
        for entry in pages
        if entry.name not in ("security:logout",) and entry.name not in CSRF_EXEMPT
    }

    assert {name: code for name, code in answers.items() if code != 403} == {}


# Clickjacking ------------------------------------------------------------------------------


def _framing_refused(response: Any) -> bool:
    csp = response.get("Content-Security-Policy", "")
    return response.get("X-Frame-Options") == "DENY" and "frame-ancestors 'none'" in csp


@pytest.mark.django_db
def test_every_page_a_visitor_reaches_refuses_to_be_framed(
    bob_victim: Victim,  # noqa: F811
    bob: User,
    admin_client_for: Callable[[User], Client],
) -> None:
    from tests.factories import make_user

    customer = Client()
    customer.force_login(bob)
    staff = admin_client_for(make_user("root", is_staff=True, is_superuser=True))
    visits = [(Client(), e) for e in every_pattern() if e.name in PUBLIC]
    visits += [(customer, e) for e in every_pattern() if e.name in CUSTOMER_OWN]
    visits += [(staff, e) for e in every_pattern() if e.name.endswith(("_changelist", "_add"))]
    framable = []
    for client, entry in visits:
        response = client.get(url_of(entry, bob_victim))
        is_page = response.get("Content-Type", "").startswith("text/html")
        if response.status_code == 200 and is_page and not _framing_refused(response):
            framable.append(str(entry))
    assert framable == []
    assert len(visits) > 60


# Open redirects ----------------------------------------------------------------------------


def _off_site(location: str) -> bool:
    parts = urlsplit(location.replace("\\", "/"))
    return bool(parts.scheme or parts.netloc) and parts.netloc not in ("", "testserver")


@pytest.mark.django_db
@pytest.mark.parametrize("evil", EVIL_NEXTS)
def test_no_public_or_customer_page_redirects_off_site_whatever_next_says(
    evil: str,
    bob_victim: Victim,  # noqa: F811
    bob: User,
) -> None:
    customer = Client()
    customer.force_login(bob)
    visits = [(Client(), e) for e in every_pattern() if e.name in PUBLIC]
    visits += [(customer, e) for e in every_pattern() if e.name in CUSTOMER_OWN]
    off_site = []
    for client, entry in visits:
        url = url_of(entry, bob_victim)
        for response in (
            client.get(url, {"next": evil}),
            client.post(f"{url}?next={evil}", {"next": evil}),
        ):
            location = response.get("Location", "")
            if response.status_code in (301, 302, 303, 307, 308) and _off_site(location):
                off_site.append(f"{entry}: {location}")
    assert off_site == []


@pytest.mark.django_db
@pytest.mark.parametrize("evil", EVIL_NEXTS)
def test_signing_in_with_a_hostile_next_never_leaves_the_site(evil: str, alice: User) -> None:
    browser = Client()
    browser.get("/account/login/", {"next": evil})

    response = browser.post(
        f"/account/login/?next={evil}", {"username": alice.email, "password": PASSWORD}
    )

    assert not _off_site(response.get("Location", ""))
    assert response.status_code in (302, 400)
