"""Sessions are listed by readable browser and device names, not raw User-Agent headers."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import translation

from security.devices import device_name
from security.models import User

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0"
)
FIREFOX_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0"
PIXEL = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Mobile Safari/537.36"
)


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        (IPHONE, "Mobile Safari 17 on iPhone (iOS 17.5)"),
        (EDGE, "Edge 120 on Windows 10"),
        (FIREFOX_MAC, "Firefox 128 on Mac OS X 10.15"),
        (PIXEL, "Chrome Mobile 124 on Pixel 8 (Android 14)"),
        ("curl/8.5.0", "curl 8"),
        ("", "Unknown browser"),
        (None, "Unknown browser"),
        ("<script>alert(1)</script>", "Unknown browser"),
    ],
)
def test_a_user_agent_reads_as_a_browser_on_a_device(user_agent: str | None, name: str) -> None:
    with translation.override("en"):
        assert device_name(user_agent) == name


def test_the_name_is_in_the_readers_language() -> None:
    with translation.override("sv"):
        assert device_name(EDGE) == "Edge 120 på Windows 10"
        assert device_name("") == "Okänd webbläsare"


@pytest.mark.django_db
def test_the_sessions_list_names_devices_and_escapes_what_it_cannot_name(alice: User) -> None:
    phone, odd = Client(HTTP_USER_AGENT=IPHONE), Client(HTTP_USER_AGENT="<b>x</b>")
    for client in (phone, odd):
        client.post(
            "/account/login/",
            {"username": alice.email, "password": "correct horse battery staple"},
        )

    page = phone.get("/account/").content.decode()

    assert "Mobile Safari 17 på iPhone (iOS 17.5)" in page
    assert "Okänd webbläsare" in page
    assert IPHONE not in page and "<b>x</b>" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("utc", "shown"),
    [
        (datetime.datetime(2026, 1, 15, 11, 0, tzinfo=datetime.UTC), "2026-01-15 12:00"),  # CET
        (datetime.datetime(2026, 7, 15, 11, 0, tzinfo=datetime.UTC), "2026-07-15 13:00"),  # CEST
    ],
)
def test_times_are_shown_in_the_configured_time_zone(
    alice: User, utc: datetime.datetime, shown: str
) -> None:
    client = Client()
    with time_machine.travel(utc, tick=False):
        client.post(
            "/account/login/",
            {"username": alice.email, "password": "correct horse battery staple"},
        )
        page = client.get("/account/").content.decode()

    assert settings.TIME_ZONE == "Europe/Stockholm"
    assert f"inloggad {shown}, senast aktiv {shown}" in page
    assert "tidszonen Europe/Stockholm" in page
