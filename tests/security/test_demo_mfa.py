"""The demo stays usable with mandatory MFA: seed_demo prints each staff login's second factor."""

from __future__ import annotations

import io
import re
import time
from base64 import b32decode

import pytest
from django.core.management import call_command
from django.test import Client
from django.test.utils import override_settings
from django_otp.oath import TOTP

from security.exceptions import NotAllowed
from security.models import User
from security.services import ensure_demo_second_factor


def _code_for(secret: str) -> str:
    key = b32decode(secret + "=" * (-len(secret) % 8))
    totp = TOTP(key)
    totp.time = time.time()
    return f"{totp.token():06d}"


@pytest.mark.django_db
def test_the_printed_demo_second_factors_open_the_admin() -> None:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    row = next(line for line in out.getvalue().splitlines() if line.startswith("security "))
    secret = re.search(r"\b([A-Z2-7]{32})\b", row)
    codes = re.findall(r"\b([a-z2-7]{5}-[a-z2-7]{5})\b", row)
    assert secret and len(codes) == 5

    with_totp = Client()
    with_totp.post("/account/login/", {"username": "security", "password": "Tillit-demo-2026"})
    with_totp.post("/account/verify/", {"code": _code_for(secret.group(1))})
    assert with_totp.get("/admin/").status_code == 200

    with_backup = Client()
    with_backup.post("/account/login/", {"username": "security", "password": "Tillit-demo-2026"})
    with_backup.post("/account/verify/", {"code": codes[0]})
    assert with_backup.get("/admin/").status_code == 200


@pytest.mark.django_db
@override_settings(PRODUCTION=True)
def test_published_demo_factors_are_refused_in_production() -> None:
    user = User.objects.create_user(username="prod-staff", is_staff=True)
    with pytest.raises(NotAllowed):
        ensure_demo_second_factor(user=user)
