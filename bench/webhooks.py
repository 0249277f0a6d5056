"""Benchmark: what webhooks cost a finalize, and deliveries per second to a local receiver.

Usage (PostgreSQL; the database is created and migrated if missing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench_webhooks \\
        .venv/bin/python bench/webhooks.py [--invoices 300] [--deliveries 500] [--rounds 3]

1. **emit's cost to a finalize**, in-process, in the same run: ``finalize_invoice`` of
   one-line drafts with ``WEBHOOKS_ENABLED`` off (the floor: no event), on with no
   endpoint (the event row alone), and on with one subscribed endpoint (the event and a
   delivery row; ``DOCUMENTS_ON_FINALIZE=off``, so nothing is posted). The three run in
   alternating rounds; the medians are compared.
2. **deliveries per second**: a real HTTP receiver (``http.server`` on a thread, on
   127.0.0.1, answering 200) takes ``--deliveries`` deliveries attempted one after the
   other by ``services.attempt_webhook_delivery`` (claim, sign, POST, record). The floor
   is the same number of bare ``http.client`` POSTs of the same body to the same receiver.

Ends with one line of JSON. The keyring is a fresh file in a temporary directory.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._db import ensure_database
from bench._gauge import python_gauge_ms

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench_webhooks"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DOCUMENTS_ON_FINALIZE", "off")  # no PDF job, no POST at commit
os.environ.setdefault("VAULT_KEYRING_FILE", str(Path(tempfile.mkdtemp()) / "keyring.json"))
os.environ.setdefault("WEBHOOKS_ALLOW_HTTP", "true")
os.environ.setdefault("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", "true")


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        return None


def _officer_request() -> tuple[Any, Any]:
    """A superuser acting with a fresh second factor (the service requires step-up)."""
    from django.test import RequestFactory
    from django.utils import timezone

    from security.models import User
    from security.selectors import MFA_VERIFIED_AT_KEY

    user = User.objects.filter(username="bench-webhooks").first() or User.objects.create_user(
        username="bench-webhooks", is_staff=True, is_superuser=True, password=None
    )
    user.is_verified = lambda: True  # type: ignore[attr-defined]
    request = RequestFactory().post("/admin/")
    request.user = user
    request.session = {MFA_VERIFIED_AT_KEY: timezone.now().timestamp()}  # type: ignore[assignment]
    return user, request


def _drafts(count: int, customer: Any) -> list[Any]:
    from audit import SYSTEM
    from billing import services

    line = {
        "description": "Consulting",
        "quantity": Decimal("2"),
        "unit_price": Decimal("1000.00"),
        "vat_category": "S",
        "vat_rate": Decimal("25"),
    }
    return [
        services.create_draft_invoice(customer=customer, lines=[line], by=SYSTEM)
        for _ in range(count)
    ]


def _finalize_ms(drafts: list[Any]) -> tuple[float, float]:
    """Wall time and this process's CPU time (Python's side, PostgreSQL's excluded) per
    finalize, in ms: the CPU figure is steadier on a shared machine."""
    from audit import SYSTEM
    from billing import services

    started, cpu = time.perf_counter(), time.process_time()
    for draft in drafts:
        services.finalize_invoice(draft, by=SYSTEM)
    wall = (time.perf_counter() - started) * 1000 / len(drafts)
    return wall, (time.process_time() - cpu) * 1000 / len(drafts)


def measure_emit(invoices: int, rounds: int, customer: Any, url: str) -> dict[str, Any]:
    from django.conf import settings

    from billing.webhooks import services as webhooks

    modes: dict[str, list[float]] = {"off": [], "on": [], "subscribed": []}
    cpu: dict[str, list[float]] = {"off": [], "on": [], "subscribed": []}
    per_round = max(1, invoices // rounds)
    user, request = _officer_request()
    endpoint, _ = webhooks.create_webhook_endpoint(
        url=url, events=["invoice.finalized"], by=user, request=request
    )
    for number in range(rounds):
        for mode in modes:
            drafts = _drafts(per_round, customer)
            settings.WEBHOOKS_ENABLED = mode != "off"
            user, request = _officer_request()  # a fresh step-up for each change
            endpoint = webhooks.update_webhook_endpoint(
                endpoint, active=mode == "subscribed", by=user, request=request
            )
            wall, used = _finalize_ms(drafts)
            modes[mode].append(wall)
            cpu[mode].append(used)
            print(
                f"  round {number + 1}: {mode:<10} {wall:.3f} ms/finalize ({used:.3f} ms CPU)",
                flush=True,
            )
    settings.WEBHOOKS_ENABLED = True
    median = {mode: statistics.median(values) for mode, values in modes.items()}
    median_cpu = {mode: statistics.median(values) for mode, values in cpu.items()}
    return {
        "finalize_cpu_ms_webhooks_off": round(median_cpu["off"], 3),
        "finalize_cpu_ms_event_only": round(median_cpu["on"], 3),
        "finalize_cpu_ms_one_subscriber": round(median_cpu["subscribed"], 3),
        "emit_cpu_pct_one_subscriber": round(
            100 * (median_cpu["subscribed"] / median_cpu["off"] - 1), 1
        ),
        "invoices_per_mode": per_round * rounds,
        "finalize_ms_webhooks_off": round(median["off"], 3),
        "finalize_ms_event_only": round(median["on"], 3),
        "finalize_ms_one_subscriber": round(median["subscribed"], 3),
        "emit_ms_event_only": round(median["on"] - median["off"], 3),
        "emit_ms_one_subscriber": round(median["subscribed"] - median["off"], 3),
        "emit_pct_one_subscriber": round(100 * (median["subscribed"] / median["off"] - 1), 1),
    }


def measure_deliveries(count: int, port: int, customer: Any) -> dict[str, Any]:
    from billing.webhooks import services as webhooks
    from billing.webhooks.events import emit
    from billing.webhooks.models import WebhookDelivery
    from billing.webhooks.selectors import payload

    user, request = _officer_request()
    endpoint, _ = webhooks.create_webhook_endpoint(
        url=f"http://127.0.0.1:{port}/hooks/", events=["invoice.paid"], by=user, request=request
    )
    for n in range(count):
        emit("invoice.paid", customer=customer, data={"id": n, "amount_due": 0}, object_id=str(n))
    ids = list(
        WebhookDelivery.objects.filter(endpoint=endpoint, status="pending").values_list(
            "pk", flat=True
        )
    )
    started = time.perf_counter()
    for delivery_id in ids:
        webhooks.attempt_webhook_delivery(delivery_id)
    seconds = time.perf_counter() - started
    delivered = WebhookDelivery.objects.filter(pk__in=ids, status="succeeded").count()
    assert delivered == len(ids), f"only {delivered} of {len(ids)} delivered"

    body = payload(WebhookDelivery.objects.select_related("event").get(pk=ids[0]).event)
    started = time.perf_counter()
    for _ in ids:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(
            "POST", "/hooks/", body=body, headers={"Content-Type": "application/json"}
        )
        connection.getresponse().read()
        connection.close()
    floor = time.perf_counter() - started
    return {
        "deliveries": len(ids),
        "deliveries_per_second": round(len(ids) / seconds, 1),
        "bare_posts_per_second": round(len(ids) / floor, 1),
        "delivery_ms": round(seconds * 1000 / len(ids), 3),
        "bare_post_ms": round(floor * 1000 / len(ids), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=300, help="finalizes per mode")
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if min(args.invoices, args.deliveries, args.rounds) < 1:
        parser.error("--invoices, --deliveries and --rounds must be positive")

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from audit import SYSTEM
    from billing import services
    from billing.models import CompanyProfile, Customer

    CompanyProfile.objects.update_or_create(
        singleton=1,
        defaults={
            "legal_name": "Bench Seller AB",
            "organisation_number": "556036-0793",
            "vat_number": "SE556036079301",
            "address_line1": "Storgatan 1",
            "postal_code": "111 22",
            "city": "Stockholm",
            "email": "billing@bench.example",
        },
    )
    customer = Customer.objects.filter(name="Bench Webhooks AB").first() or (
        services.create_customer(
            by=SYSTEM,
            name="Bench Webhooks AB",
            email="bench@webhooks.example",
            identity_number="556677-8899",
            country="SE",
        )
    )
    # Earlier runs' endpoints would take deliveries of this run's events.
    from billing.webhooks.models import WebhookEndpoint

    user, request = _officer_request()
    from billing.webhooks import services as webhooks

    for old in WebhookEndpoint.objects.filter(active=True):
        webhooks.update_webhook_endpoint(old, active=False, by=user, request=request)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        emit_figures = measure_emit(
            args.invoices, args.rounds, customer, f"http://127.0.0.1:{port}/unused/"
        )
        delivery_figures = measure_deliveries(args.deliveries, port, customer)
    finally:
        server.shutdown()
    figures = {**emit_figures, **delivery_figures}
    print(
        json.dumps(
            {
                "benchmark": "webhooks",
                "load_average": round(os.getloadavg()[0], 2),
                "python_gauge_ms": python_gauge_ms(),
                **figures,
            }
        )
    )


if __name__ == "__main__":
    main()
