"""Benchmark: the REST API under gunicorn against the same services in-process (the floor).

Usage (PostgreSQL; the database is created if missing, migrated and filled)::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench .venv/bin/python bench/api.py
    # options: --sequences 200 --clients 4 --floor 200 --token-checks 2000

Set-up registers two OAuth applications and gives each a real access token (a server
integration's, client credentials, and the portal customer's, authorization code): the
integration creates invoices with their two lines (``POST /invoices`` takes the lines) and
finalizes them: two requests (with ``--add-line``, as before: created with one line, the
second added by ``POST /invoices/{id}/lines``, three requests); the customer pays each
with a saved card (sandbox acquirer). ``--clients`` threads run those sequences closed-loop
over keep-alive connections to gunicorn (2 sync workers, 127.0.0.1).

It prints throughput and p50/p99 latency per endpoint, then the CPU time the gunicorn
workers spent per create-and-finalize and per payment (from /proc, the workers' user +
system time), and the same service calls in-process (``time.process_time``: the floor:
``create_draft_invoice`` with the two lines and ``finalize_invoice``; with ``--add-line``
``create_draft_invoice`` with one, ``add_invoice_line``, ``finalize_invoice``). The
API's own cost is the difference, as a share of the floor (goal: at most 30 % for
create-and-finalize). Under load the workers and the load generator share the cores,
which makes every request's CPU dearer than the floor's, measured alone afterwards.

So the same comparison is also made without the HTTP server and the load: the API's two
requests through Django's WSGI handler in this process, alternating round by round with
the floor (both on the same machine at the same moments; medians of ``--rounds``). In the
same rounds the API's stack around an empty view (``bench/_api_layers.py``) is priced one
layer at a time: Django and the middleware, REST framework, the token check and scopes,
the throttle, the Idempotency-Key; what every request pays before any endpoint's work.

The token check (``BearerAuthentication.authenticate`` on a real token) is timed
in-process (goal: under 1 ms), and the list endpoints' queries are counted at two sizes
(goal: the same). The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import threading
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# The gateway account reveals one card per payment; lift the per-minute cap for the run.
os.environ.setdefault("VAULT_REVEAL_RATE_PER_MINUTE", "100000000")
# The load is one integration and one customer: lift the per-client throttles for the run.
os.environ.setdefault("API_THROTTLE_CLIENT_RATE", "1000000/minute")
os.environ.setdefault("API_THROTTLE_USER_RATE", "1000000/minute")

from bench.payments import PORT, setup_django, start_gunicorn  # noqa: E402

_SET_UP_TABLES = (
    "billing_invoice",
    "billing_invoiceline",
    "audit_auditevent",
    "django_q_ormq",
    "payments_payment",
    "payments_paymentmethod",
)
LINE = {"description": "Service", "quantity": "1", "unit_price": "80.00", "vat_rate": "25"}
SECOND_LINE = {**LINE, "description": "Support"}
SCOPES = "customers:read invoices:read invoices:write payments:read payments:write"


def make_data() -> dict[str, Any]:
    """The seller, a customer with a portal user and a saved card, and two tokens."""
    import datetime

    from django.utils import timezone
    from oauth2_provider.models import (
        get_access_token_model,
        get_application_model,
        set_token_value,
    )

    from audit import SYSTEM
    from billing import services as billing
    from billing.models import InvoiceSeries, PortalAccount
    from payments.vault.cards import Card
    from payments.vault.services import tokenize
    from security.models import User

    for code, kind in (("F", "invoice"), ("K", "credit_note")):
        InvoiceSeries.objects.get_or_create(code=code, defaults={"kind": kind, "is_default": True})
    billing.update_company_profile(
        by=SYSTEM,
        legal_name="Bench AB",
        organisation_number="556036-0793",
        vat_number="SE556036079301",
        address_line1="Storgatan 1",
        postal_code="111 22",
        city="Stockholm",
        email="bench@tillit.example",
        bankgiro="5050-1055",
    )
    stamp = f"{int(time.time())}{secrets.token_hex(2)}"
    customer = billing.create_customer(
        by=SYSTEM, name=f"API bench customer {stamp}", email=f"api{stamp}@bench.example"
    )
    user = User.objects.create_user(
        username=f"apibench{stamp}", email=f"apibench{stamp}@bench.example", password=None
    )
    PortalAccount.objects.create(user=user, customer=customer)
    card = tokenize(
        Card.from_input(number="4242424242424242", expiry="12/39", cvc="123"),
        customer=customer,
        by=user,
    )
    Application = get_application_model()
    AccessToken = get_access_token_model()
    expires = timezone.now() + datetime.timedelta(hours=2)
    tokens = {}
    # The integration acts through its integration account (a service account without a
    # password, as the security officer's client registration creates it).
    account = User.objects.create_user(username=f"api-bench-erp-{stamp}", password=None)
    for name, grant, who, owner in (
        ("integration", Application.GRANT_CLIENT_CREDENTIALS, None, account),
        ("customer", Application.GRANT_AUTHORIZATION_CODE, user, None),
    ):
        app = Application.objects.create(
            name=f"bench {name} {stamp}",
            user=owner,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=grant,
            redirect_uris="https://bench.example/callback",
        )
        token = secrets.token_urlsafe(30)
        stored = AccessToken(user=who, application=app, expires=expires, scope=SCOPES)
        set_token_value(stored, token)
        stored.save()
        tokens[name] = token
    return {
        "customer": customer.pk,
        "card": card.pk,
        "user": user.pk,
        "account": account.pk,
        "tokens": tokens,
    }


class Client:
    """One keep-alive connection per thread, with a bearer token."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.local = threading.local()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if method == "POST":
            data = json.dumps(body or {}).encode()
            headers["Content-Type"] = "application/json"
            headers["Idempotency-Key"] = secrets.token_hex(16)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (http.client.HTTPException, OSError):
            self.local.conn = None
            raise
        return response.status, json.loads(raw) if raw else None


def run_load(
    data: dict[str, Any], sequences: int, clients: int, warmup: int, add_line: bool = False
) -> tuple[dict[str, list[float]], list[str], float, dict[str, float]]:
    """``sequences`` create/line/finalize/pay sequences over ``clients`` threads (after
    ``warmup`` unmeasured ones); per endpoint latencies (ms), errors, wall time, and the
    workers' CPU seconds per phase."""
    integration = Client(data["tokens"]["integration"])
    customer = Client(data["tokens"]["customer"])
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    finalized: list[int] = []

    def timed(name: str, client: Client, method: str, path: str, body: Any = None) -> Any:
        started = time.perf_counter()
        status, answer = client.call(method, path, body)
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            latencies[name].append(elapsed)
            if status >= 300:
                errors.append(f"{name}: HTTP {status} {str(answer)[:120]}")
        return answer if status < 300 else None

    def create_and_finalize(count: int) -> None:
        for _ in range(count):
            lines = [LINE] if add_line else [LINE, SECOND_LINE]
            draft = timed(
                "POST invoices",
                integration,
                "POST",
                "/api/v1/invoices",
                {"customer": data["customer"], "lines": lines},
            )
            if draft is None:
                continue
            pk = draft["id"]
            if add_line:
                timed(
                    "POST invoices/{id}/lines",
                    integration,
                    "POST",
                    f"/api/v1/invoices/{pk}/lines",
                    SECOND_LINE,
                )
            if (
                timed(
                    "POST invoices/{id}/finalize",
                    integration,
                    "POST",
                    f"/api/v1/invoices/{pk}/finalize",
                )
                is not None
            ):
                with lock:
                    finalized.append(pk)

    def pay(ids: list[int]) -> None:
        for pk in ids:
            timed(
                "POST payments",
                customer,
                "POST",
                "/api/v1/payments",
                {"invoice": pk, "amount": 20000, "currency": "SEK", "payment_method": data["card"]},
            )

    def phase(target: Any, shares: list[Any]) -> tuple[float, float]:
        workers = worker_pids()
        cpu_before = cpu_seconds(workers)
        started = time.perf_counter()
        threads = [threading.Thread(target=target, args=(share,)) for share in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started, cpu_seconds(workers) - cpu_before

    def split(count: int) -> list[int]:
        return [count // clients + (1 if i < count % clients else 0) for i in range(clients)]

    # Warm-up, not measured: each worker imports and compiles what a first request needs.
    phase(create_and_finalize, split(warmup))
    phase(pay, [sorted(finalized)[i::clients] for i in range(clients)])
    latencies.clear()
    finalized.clear()
    del errors[:]
    wall_create, cpu_create = phase(create_and_finalize, split(sequences))
    ids = sorted(finalized)
    wall_pay, cpu_pay = phase(pay, [ids[i::clients] for i in range(clients)])
    for _ in range(20):
        timed("GET invoices (list)", integration, "GET", "/api/v1/invoices")
        timed("GET payments (list)", customer, "GET", "/api/v1/payments")
    return (
        latencies,
        errors,
        wall_create + wall_pay,
        {
            "create_wall_s": wall_create,
            "create_cpu_s": cpu_create,
            "create_done": len(ids),
            "pay_wall_s": wall_pay,
            "pay_cpu_s": cpu_pay,
            "pay_done": len(latencies["POST payments"]),
        },
    )


_SERVER: Any = None


def worker_pids() -> list[int]:
    """The gunicorn workers' process ids (the master's children)."""
    from bench._cpu import children

    return children(_SERVER.pid)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (/proc/<pid>/stat)."""
    from bench._cpu import cpu_by_process

    return sum(cpu_by_process(pids).values())


def _services(data: dict[str, Any], add_line: bool) -> tuple[Any, Any]:
    """``(create_and_finalize, pay)``: the operations through the services, as the API's
    views call them (the customer and the integration account read once)."""
    from billing import services as billing
    from billing.models import Customer
    from billing.money import Money
    from payments import services
    from security.models import User

    customer = Customer.objects.get(pk=data["customer"])
    user = User.objects.get(pk=data["user"])
    app = User.objects.get(pk=data["account"])  # the integration account, as through the API
    spec = {
        "description": "Service",
        "quantity": Decimal(1),
        "unit_price": Decimal(80),
        "vat_category": "S",
        "vat_rate": Decimal(25),
    }
    second = {**spec, "description": "Support"}

    def create_and_finalize() -> Any:
        if add_line:
            draft = billing.create_draft_invoice(customer=customer, by=app, lines=[spec])
            billing.add_invoice_line(draft, by=app, **second)
        else:
            draft = billing.create_draft_invoice(customer=customer, by=app, lines=[spec, second])
        return billing.finalize_invoice(draft, by=app)

    def pay(invoice: Any) -> None:
        services.pay_invoice(
            invoice,
            amount=Money(20000, "SEK"),
            payment_method=data["card"],
            idempotency_key=secrets.token_hex(16),
            by=user,
        )

    return create_and_finalize, pay


def floor(data: dict[str, Any], count: int, add_line: bool = False) -> dict[str, float]:
    """The same operations through the services in-process: CPU seconds per create-and-
    finalize and per payment (``time.process_time``), and wall time."""
    create_and_finalize, pay = _services(data, add_line)
    ids = []
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        ids.append(create_and_finalize())
    create_cpu, create_wall = time.process_time() - cpu, time.perf_counter() - wall
    cpu, wall = time.process_time(), time.perf_counter()
    for invoice in ids:
        pay(invoice)
    pay_cpu, pay_wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "create_cpu_ms": 1000 * create_cpu / count,
        "create_wall_ms": 1000 * create_wall / count,
        "pay_cpu_ms": 1000 * pay_cpu / count,
        "pay_wall_ms": 1000 * pay_wall / count,
    }


def token_check_ms(token: str, count: int) -> tuple[float, float]:
    """Mean ms of the API's token check (``BearerAuthentication.authenticate``: one compiled
    query and the account checks) on a real token, in-process: CPU and wall."""
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    factory = APIRequestFactory()
    from security.api.authentication import BearerAuthentication

    authentication = BearerAuthentication()
    requests = [
        Request(factory.get("/api/v1/invoices", HTTP_AUTHORIZATION=f"Bearer {token}"))
        for _ in range(count)
    ]
    assert authentication.authenticate(requests[0]) is not None, "the token does not check"
    cpu, started = time.process_time(), time.perf_counter()
    for request in requests[1:]:
        authentication.authenticate(request)
    wall = 1000 * (time.perf_counter() - started) / (count - 1)
    return 1000 * (time.process_time() - cpu) / (count - 1), wall


def list_queries(data: dict[str, Any]) -> dict[str, list[int]]:
    """Queries of each list endpoint (in-process) now and after 30 more invoices."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from audit import SYSTEM
    from billing import services as billing
    from billing.models import Customer

    def count(token: str, path: str) -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path, HTTP_HOST="127.0.0.1").status_code == 200
        return len(queries)

    paths = {
        "customers": ("integration", "/api/v1/customers"),
        "invoices": ("integration", "/api/v1/invoices"),
        "payments": ("customer", "/api/v1/payments"),
    }
    result = {name: [count(data["tokens"][who], path)] for name, (who, path) in paths.items()}
    customer = Customer.objects.get(pk=data["customer"])
    for _ in range(30):
        draft = billing.create_draft_invoice(
            customer=customer,
            by=SYSTEM,
            lines=[
                {
                    "description": "x",
                    "quantity": Decimal(1),
                    "unit_price": Decimal(1),
                    "vat_category": "S",
                    "vat_rate": Decimal(25),
                }
            ],
        )
        billing.finalize_invoice(draft, by=SYSTEM)
    for name, (who, path) in paths.items():
        result[name].append(count(data["tokens"][who], path))
    return result


def summary(values: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "per_s": round(len(ordered) / wall, 1) if wall else 0.0,
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
    }


def main() -> None:
    global _SERVER
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=200)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20, help="sequences run first, unmeasured")
    parser.add_argument("--floor", type=int, default=200)
    parser.add_argument("--token-checks", type=int, default=2000)
    parser.add_argument(
        "--in-process",
        type=int,
        default=40,
        help="create-and-finalize sequences per round through Django's handler in-process",
    )
    parser.add_argument("--rounds", type=int, default=5, help="in-process rounds (alternating)")
    parser.add_argument(
        "--add-line",
        action="store_true",
        help="create with one line and add the second by its own request (3 requests)",
    )
    args = parser.parse_args()
    from bench._gauge import python_gauge_ms

    gauge = python_gauge_ms()
    print(f"machine gauge: {gauge} ms for a fixed Python loop (lower is faster)", flush=True)
    load = os.getloadavg()[0]
    print(f"load average: {load:.2f} (1 min) at the start", flush=True)
    requests = 3 if args.add_line else 2
    print(f"create-and-finalize: {requests} requests (two lines)", flush=True)
    setup_django()
    data = make_data()
    from bench._db import settle_database

    settle_database(_SET_UP_TABLES)
    _SERVER = start_gunicorn(1)
    try:
        latencies, errors, wall, cpu = run_load(
            data, args.sequences, args.clients, args.warmup, args.add_line
        )
    finally:
        _SERVER.terminate()
        _SERVER.wait(timeout=30)
    endpoints = {name: summary(values, wall) for name, values in sorted(latencies.items())}
    for name, figures in endpoints.items():
        print(
            f"{name:<30} {figures['count']:>5} calls  p50 {figures['p50_ms']:>7} ms"
            f"  p99 {figures['p99_ms']:>7} ms",
            flush=True,
        )
    print(f"errors: {len(errors)} {sorted(set(errors))[:3]}", flush=True)
    api_create_cpu = 1000 * cpu["create_cpu_s"] / max(cpu["create_done"], 1)
    api_pay_cpu = 1000 * cpu["pay_cpu_s"] / max(cpu["pay_done"], 1)
    floor(data, 5, args.add_line)  # warm-up, as the workers had theirs
    floor_figures = floor(data, args.floor, args.add_line)
    overhead = (api_create_cpu - floor_figures["create_cpu_ms"]) / floor_figures["create_cpu_ms"]
    pay_overhead = (api_pay_cpu - floor_figures["pay_cpu_ms"]) / floor_figures["pay_cpu_ms"]
    print(
        f"create-and-finalize: API {api_create_cpu:.2f} ms CPU (gunicorn workers) per invoice,"
        f" floor {floor_figures['create_cpu_ms']:.2f} ms: the API's own cost {overhead:+.0%}"
        f" ({cpu['create_done'] / cpu['create_wall_s']:.1f} invoices/s through the API)",
        flush=True,
    )
    print(
        f"payment: API {api_pay_cpu:.2f} ms CPU per payment, floor"
        f" {floor_figures['pay_cpu_ms']:.2f} ms: {pay_overhead:+.0%}"
        f" ({cpu['pay_done'] / cpu['pay_wall_s']:.1f} payments/s through the API)",
        flush=True,
    )
    from bench._api_in_process import in_process

    alone = in_process(
        data["tokens"]["integration"],
        count=args.in_process,
        rounds=args.rounds,
        body={"customer": data["customer"], "lines": [LINE, SECOND_LINE]},
        floor=_services(data, add_line=False)[0],
    )
    print(
        f"in-process, no HTTP server, alternating with the floor ({args.rounds} rounds of"
        f" {args.in_process}): create-and-finalize API {alone['api_ms']:.2f} ms CPU, floor"
        f" {alone['floor_ms']:.2f} ms: the API's own cost {alone['api_own_cost']:+.0%}",
        flush=True,
    )
    print(
        "  the API's stack around an empty view, per request: "
        + ", ".join(f"{name} +{ms:.3f} ms" for name, ms in alone["layers_ms"].items())
        + f" = {alone['stack_per_request_ms']:.3f} ms; two requests are"
        f" {alone['stack_share_of_floor']:.0%} of the floor",
        flush=True,
    )
    check_ms, check_wall_ms = token_check_ms(data["tokens"]["integration"], args.token_checks)
    print(
        f"token check: {check_ms:.3f} ms CPU, {check_wall_ms:.3f} ms wall per request"
        " (BearerAuthentication.authenticate, in-process)"
    )
    queries = list_queries(data)
    print(f"list queries (before, after 30 more invoices): {queries}", flush=True)
    print(
        json.dumps(
            {
                "python_gauge_ms": gauge,
                "load_average_1min": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
                "create_and_finalize_requests": requests,
                "workers": 2,
                "clients": args.clients,
                "sequences": args.sequences,
                "endpoints": endpoints,
                "errors": len(errors),
                "create_and_finalize_cpu_ms": {
                    "api": round(api_create_cpu, 2),
                    "floor": round(floor_figures["create_cpu_ms"], 2),
                    "api_own_cost": round(overhead, 3),
                },
                "payment_cpu_ms": {
                    "api": round(api_pay_cpu, 2),
                    "floor": round(floor_figures["pay_cpu_ms"], 2),
                    "api_own_cost": round(pay_overhead, 3),
                },
                "in_process": alone,
                "floor_wall_ms": {
                    "create_and_finalize": round(floor_figures["create_wall_ms"], 2),
                    "payment": round(floor_figures["pay_wall_ms"], 2),
                },
                "token_check_cpu_ms": round(check_ms, 3),
                "token_check_wall_ms": round(check_wall_ms, 3),
                "list_queries": queries,
                "list_queries_constant": all(a == b for a, b in queries.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
