"""Issue 17, item 6: behind a proxy, the address rule blocked everyone.

``AXES_PROXY_COUNT`` had no effect (django-ipware was not installed): every client had
the proxy's address, and 100 failures blocked all sign-ins for an hour. The client's
address is now read by django-ipware from X-Forwarded-For, at the position the proxies
write it; what a client writes itself is never believed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from audit.models import AuditEvent
from security.models import User, UserSession
from tests.config.test_settings import _load_settings

PASSWORD = "Correct9horse4battery"
PROXY = "10.0.0.1"
ATTACKER = "81.2.69.160"
CUSTOMER = "81.2.69.161"


@pytest.fixture
def behind_one_proxy(settings: Any) -> None:
    """What AXES_PROXY_COUNT=1 configures (checked against the settings module below)."""
    settings.PROXY_COUNT = 1
    settings.AXES_IPWARE_PROXY_ORDER = "left-most"
    settings.AXES_IPWARE_PROXY_COUNT = 0
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    settings.IPWARE_STRICT = False
    settings.SECURITY_IP_FAILURE_LIMIT = 12


def _through_proxy(forwarded_for: str, username: str, password: str) -> int:
    client = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded_for)
    return client.post("/account/login/", {"username": username, "password": password}).status_code


def test_the_proxy_count_comes_from_the_environment(tmp_path: Path) -> None:
    code = (
        "from django.conf import settings as s; import json;"
        "print(json.dumps([s.AXES_IPWARE_PROXY_COUNT, list(s.AXES_IPWARE_META_PRECEDENCE_ORDER),"
        " s.AXES_IPWARE_PROXY_ORDER, s.IPWARE_STRICT]))"
    )
    behind = _load_settings(tmp_path, code, AXES_PROXY_COUNT="1")
    direct = _load_settings(tmp_path, code)
    assert behind.returncode == 0, behind.stderr
    assert json.loads(behind.stdout.splitlines()[-1]) == [
        0,
        ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"],
        "left-most",
        False,
    ]
    assert json.loads(direct.stdout.splitlines()[-1])[:2] == [None, ["REMOTE_ADDR"]]


def test_django_ipware_is_what_axes_uses() -> None:
    from axes import helpers

    assert helpers.IPWARE_INSTALLED


@pytest.mark.django_db
def test_an_attacker_behind_the_proxy_is_blocked_and_other_customers_are_not(
    behind_one_proxy: None,
) -> None:
    User.objects.create_user(username="dora", email="dora@example.test", password=PASSWORD)
    for n in range(12):
        _through_proxy(ATTACKER, f"guess{n}@example.test", "wrong-password-1")

    assert _through_proxy(ATTACKER, "dora@example.test", PASSWORD) == 429
    # Writing another address in front does not help: the proxy appended the real one.
    assert _through_proxy(f"9.9.9.9, {ATTACKER}", "dora@example.test", PASSWORD) == 429
    assert _through_proxy(CUSTOMER, "dora@example.test", PASSWORD) == 302
    blocked = AuditEvent.objects.get(action="security.address_blocked")
    assert blocked.details["address"] == ATTACKER


@pytest.mark.django_db
def test_the_session_list_shows_the_client_not_the_proxy(behind_one_proxy: None) -> None:
    User.objects.create_user(username="dora", email="dora@example.test", password=PASSWORD)

    assert _through_proxy(CUSTOMER, "dora@example.test", PASSWORD) == 302

    assert UserSession.objects.get().ip == CUSTOMER


@pytest.mark.django_db
def test_without_a_proxy_a_forged_header_is_ignored(settings: Any) -> None:
    settings.SECURITY_IP_FAILURE_LIMIT = 12
    User.objects.create_user(username="dora", email="dora@example.test", password=PASSWORD)
    for n in range(12):
        forged = Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"81.2.69.{n}")
        forged.post("/account/login/", {"username": f"guess{n}", "password": "wrong-1"})

    again = Client(REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=CUSTOMER)
    answer = again.post("/account/login/", {"username": "dora", "password": PASSWORD})

    assert answer.status_code == 429
