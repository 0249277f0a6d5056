"""Benchmark: password hasher cost, and sign-in round trips (password + TOTP) per second.

Usage (PostgreSQL; the database is created and migrated if missing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench \\
        .venv/bin/python bench/auth.py [--rounds 20] [--logins 30]

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/tillit_bench. The
hasher part times make_password/check_password for the production hasher
(Argon2id, argon2-cffi defaults as Django sets them) and for PBKDF2-SHA256 with
Django's current iterations. The sign-in part drives Django's test client
through the real pages: POST /account/login/ (password, with django-axes and
the production hasher), then POST /account/verify/ (a TOTP code), then one
admin page; the clock is moved 30 s between sign-ins with time-machine so each
TOTP code is a fresh one (a used code is refused). Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._db import ensure_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

PASSWORD = "Bench7lantern4harbour"  # noqa: S105 - a throwaway benchmark account


def time_hasher(dotted: str, rounds: int) -> dict[str, Any]:
    """Median milliseconds of one hash and one check with this hasher."""
    from django.contrib.auth.hashers import check_password, make_password
    from django.utils.module_loading import import_string

    hasher = import_string(dotted)()
    make_ms, check_ms = [], []
    encoded = ""
    for _ in range(rounds):
        start = time.perf_counter()
        encoded = make_password(PASSWORD, hasher=hasher)
        make_ms.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        assert check_password(PASSWORD, encoded)
        check_ms.append((time.perf_counter() - start) * 1000)
    # argon2$argon2id$v=19$m=...,t=...,p=...$salt$hash / pbkdf2_sha256$iterations$salt$hash
    params = encoded.split("$")[3] if hasher.algorithm == "argon2" else encoded.split("$")[1]
    result = {
        "algorithm": hasher.algorithm,
        "parameters": params,
        "hash_ms_median": round(statistics.median(make_ms), 1),
        "check_ms_median": round(statistics.median(check_ms), 1),
    }
    print(f"  {hasher.algorithm}: {result}", flush=True)
    return result


def time_sign_ins(logins: int) -> dict[str, Any]:
    """Full sign-ins (password, TOTP, first admin page) per second through the test client."""
    import datetime as dt

    import time_machine
    from django.test import Client
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from security.models import User

    username = f"bench-{uuid.uuid4().hex[:8]}"
    user = User.objects.create_user(username=username, password=PASSWORD, is_staff=True)
    device = TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    durations = []
    try:
        with time_machine.travel(dt.datetime.now(tz=dt.UTC), tick=True) as clock:
            for index in range(logins):
                clock.shift(dt.timedelta(seconds=31))
                client = Client()
                start = time.perf_counter()
                answer = client.post(
                    "/account/login/", {"username": username, "password": PASSWORD}
                )
                assert answer.status_code == 302, answer.status_code
                totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
                totp.time = time.time()
                verified = client.post("/account/verify/", {"code": f"{totp.token():06d}"})
                assert verified.status_code == 302, verified.status_code
                assert client.get("/admin/").status_code == 200
                durations.append(time.perf_counter() - start)
                if (index + 1) % 10 == 0:
                    print(f"  {index + 1}/{logins} sign-ins", flush=True)
    finally:
        user.delete()
    total = sum(durations)
    result = {
        "sign_ins": logins,
        "sign_ins_per_second": round(logins / total, 2),
        "sign_in_ms_median": round(statistics.median(durations) * 1000, 1),
    }
    print(f"  sign-in: {result}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="hasher repetitions")
    parser.add_argument("--logins", type=int, default=30, help="full sign-ins to time")
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    print(f"production hasher: {settings.PASSWORD_HASHERS[0]}", flush=True)
    print("hasher cost (median of rounds):", flush=True)
    argon2 = time_hasher("django.contrib.auth.hashers.Argon2PasswordHasher", args.rounds)
    pbkdf2 = time_hasher("django.contrib.auth.hashers.PBKDF2PasswordHasher", args.rounds)
    print("sign-in round trips:", flush=True)
    sign_in = time_sign_ins(args.logins)
    print(
        json.dumps(
            {
                "benchmark": "auth",
                "production_hasher": settings.PASSWORD_HASHERS[0].rsplit(".", 1)[-1],
                "argon2": argon2,
                "pbkdf2_sha256": pbkdf2,
                **sign_in,
            }
        )
    )


if __name__ == "__main__":
    main()
