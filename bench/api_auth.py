"""Benchmark: the OAuth token check per API request (goal: under 1 ms).

Usage (PostgreSQL; the database is created and migrated if missing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench_api_auth \\
        .venv/bin/python bench/api_auth.py [--requests 2000]

Times ``security.api.authentication.BearerAuthentication.authenticate`` (our check of the
bearer token: one compiled query for the token by its checksum with its application, user
and integration account; expiry, resource, active accounts) over N requests built with
Django's RequestFactory and wrapped as REST framework requests, for a customer's token and
for an integration's (client credentials). In the same run: the floor, one indexed SELECT
of the token row by its checksum alone (through the ORM, as before), and the code before,
django-oauth-toolkit's ``OAuth2Authentication`` (through oauthlib) with the account check
we had on top, on the same tokens.
``time_token_check`` is importable (bench/api.py reuses it). Ends with one line of JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._db import ensure_database

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench_api_auth"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _before_class() -> Any:
    """The check as it was before our own (main at 89db12d): django-oauth-toolkit's, then
    the acting account's ``is_active`` (the integration account read by a second query)."""
    from oauth2_provider.contrib.rest_framework import OAuth2Authentication

    class Before(OAuth2Authentication):
        def authenticate(self, request: Any) -> Any:
            result = super().authenticate(request)
            if result is None:
                return None
            user, token = result
            acting = user if user is not None else token.application.user
            if acting is not None and not acting.is_active:
                return None
            return result

    return Before


def _Before() -> Any:
    return _before_class()()


def time_token_check(raw_token: str, requests: int, *, before: bool = False) -> dict[str, Any]:
    """Milliseconds per ``BearerAuthentication.authenticate`` of ``raw_token`` (median, p99);
    ``before``: django-oauth-toolkit's ``OAuth2Authentication`` instead (the code before)."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from security.api.authentication import BearerAuthentication

    factory = RequestFactory()
    check = _Before() if before else BearerAuthentication()
    durations = []
    for _ in range(requests):
        request = Request(factory.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw_token}"))
        start = time.perf_counter()
        result = check.authenticate(request)
        durations.append((time.perf_counter() - start) * 1000)
        assert result is not None, "the token was refused"
    return {
        "median_ms": round(statistics.median(durations), 3),
        "p99_ms": round(_percentile(durations, 0.99), 3),
    }


def time_floor(raw_token: str, requests: int) -> dict[str, Any]:
    """The floor: one SELECT of the token row by its checksum (what no check can skip)."""
    from oauth2_provider.models import AccessToken

    checksum = hashlib.sha256(raw_token.encode("utf-8")).hexdigest()
    durations = []
    for _ in range(requests):
        start = time.perf_counter()
        row = AccessToken.objects.filter(token_checksum=checksum).first()
        durations.append((time.perf_counter() - start) * 1000)
        assert row is not None
    return {
        "median_ms": round(statistics.median(durations), 3),
        "p99_ms": round(_percentile(durations, 0.99), 3),
    }


def _tokens() -> tuple[str, str]:
    """A customer's token and an integration's, as the flows store them (checksums only)."""
    from datetime import timedelta

    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application, set_token_value

    from security.models import User

    suffix = secrets.token_hex(4)
    customer = User.objects.create(username=f"bench-customer-{suffix}")
    account = User.objects.create(username=f"bench-api-{suffix}")
    app = Application.objects.create(
        name="bench app",
        client_type=Application.CLIENT_PUBLIC,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris="https://bench.example/cb",
    )
    erp = Application.objects.create(
        name="bench erp",
        user=account,
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
    )
    raws = []
    for application, user in ((app, customer), (erp, None)):
        raw = secrets.token_urlsafe(30)
        token = AccessToken(
            user=user,
            application=application,
            scope="invoices:read",
            expires=timezone.now() + timedelta(hours=1),
        )
        set_token_value(token, raw)
        token.save()
        raws.append(raw)
    return raws[0], raws[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="token checks to time")
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    customer, integration = _tokens()
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min)", flush=True)
    for raw in (customer, integration):  # warm the connection, the caches, the compiled query
        time_token_check(raw, 200)
        time_token_check(raw, 200, before=True)
    floor = time_floor(customer, args.requests)
    print(f"  floor (one SELECT by checksum): {floor}", flush=True)
    customer_check = time_token_check(customer, args.requests)
    print(f"  customer token: {customer_check}", flush=True)
    integration_check = time_token_check(integration, args.requests)
    print(f"  integration token: {integration_check}", flush=True)
    before = {
        "customer_token": time_token_check(customer, args.requests, before=True),
        "integration_token": time_token_check(integration, args.requests, before=True),
    }
    print(f"  before (django-oauth-toolkit's OAuth2Authentication): {before}", flush=True)
    worst = max(customer_check["median_ms"], integration_check["median_ms"])
    print(
        json.dumps(
            {
                "benchmark": "api_auth",
                "requests": args.requests,
                "load_average_1min": round(os.getloadavg()[0], 2),
                "floor": floor,
                "customer_token": customer_check,
                "integration_token": integration_check,
                "before_django_oauth_toolkit": before,
                "over_floor_ms": round(worst - floor["median_ms"], 3),
                "goal_met": worst < 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
