"""Every response carries the security headers; production settings pass check --deploy."""

from __future__ import annotations

import copy
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client, RequestFactory

BASE_DIR = Path(__file__).resolve().parents[2]


def _assert_security_headers(response) -> None:
    csp = response["Content-Security-Policy"]
    directives = dict(
        [*part.strip().split(" ", 1), ""][:2] for part in csp.split(";") if part.strip()
    )
    assert "'unsafe-inline'" not in directives["script-src"]
    assert "'unsafe-eval'" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["/admin/login/", "/admin/", "/no-such-page/", "/accounts/login/"],
)
def test_every_response_carries_the_security_headers(url: str) -> None:
    response = Client().get(url)
    _assert_security_headers(response)


@pytest.mark.django_db
def test_a_post_answer_carries_the_security_headers_too() -> None:
    response = Client().post("/admin/login/", {"username": "nobody", "password": "x"})
    _assert_security_headers(response)


def _production_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a production deployment, without the test suite's variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TILLIT_", "DJANGO_", "SECURE_"))
        and key not in {"DEBUG", "DATABASE_URL"}
    }
    env.update(
        {
            "TILLIT_MODE": "production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "tillit.example",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
            "TILLIT_VAR_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, our own interpreter
        [sys.executable, *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy(tmp_path: Path) -> None:
    result = _run(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"], _production_env(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_hsts_is_a_year_with_subdomains_and_preload(tmp_path: Path) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)"
    )
    result = _run(["-c", code], _production_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["31536000", "True", "True", "True", "True", "True"]


# The Content-Security-Policy header: built once (security.middleware.CSPMiddleware), the
# same string as django-csp builds, and django-csp's own path for a response's own policy.


@pytest.mark.django_db
def test_the_shared_csp_header_is_the_one_django_csp_builds() -> None:
    from csp.utils import build_policy

    response = Client().get("/account/login/")

    assert response["Content-Security-Policy"] == build_policy()


@pytest.mark.django_db
def test_the_csp_header_follows_a_change_of_settings(settings: Any) -> None:
    assert "https://cdn.example" not in Client().get("/account/login/")["Content-Security-Policy"]
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["img-src"] = ["'self'", "https://cdn.example"]
    settings.CONTENT_SECURITY_POLICY = policy

    csp = Client().get("/account/login/")["Content-Security-Policy"]

    assert "img-src 'self' https://cdn.example" in csp


def _through_csp_middleware(response: HttpResponse) -> Any:
    from security.middleware import CSPMiddleware

    request = RequestFactory().get("/somewhere/")
    return CSPMiddleware(lambda _request: response)(request)


def test_a_response_with_its_own_policy_gets_it() -> None:
    response = HttpResponse("x")
    # As django-csp's @csp_update leaves it:
    response._csp_update = {"img-src": ["https://maps.example"]}  # type: ignore[attr-defined]

    answered = _through_csp_middleware(response)

    assert "https://maps.example" in answered["Content-Security-Policy"]


def test_an_exempted_response_gets_no_csp_header() -> None:
    response = HttpResponse("x")
    # As django-csp's @csp_exempt leaves it:
    response._csp_exempt = True  # type: ignore[attr-defined]

    answered = _through_csp_middleware(response)

    assert "Content-Security-Policy" not in answered


def test_a_header_the_view_set_is_kept() -> None:
    response = HttpResponse("x")
    response["Content-Security-Policy"] = "default-src 'none'"

    answered = _through_csp_middleware(response)

    assert answered["Content-Security-Policy"] == "default-src 'none'"
