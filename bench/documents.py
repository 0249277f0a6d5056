"""Benchmark: signed PDF invoices (render, sign, full path, verify, ZIP export).

Usage (PostgreSQL; the database is created and migrated if missing):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/tillit_bench_documents \\
        .venv/bin/python bench/documents.py [--count 20] [--export 200] [--no-chromium] \\
        [--scaling 1000]

DATABASE_URL defaults to postgres://postgres@127.0.0.1:5432/tillit_bench_documents. For a
10-line and a 200-line invoice it measures, per invoice, wall and CPU
milliseconds of: WeasyPrint alone (HTML -> PDF/A-3b), the Factur-X XML (built, checked
against the XSD and EN 16931), the EN 16931 schematron alone on that XML (warm: compiled
once per process; the full path runs it before signing) and its share of the full path,
pyHanko alone (signing a prepared PDF), the project's full path (finalize -> render ->
check -> sign -> store, audited), verification, and the peer: the same HTML
printed by a warm headless Chromium (Playwright, one page reused; Debian's
/usr/bin/chromium, skipped when missing; its CPU counts every Chromium process
and Playwright's driver). Then a billing run of ``--scaling`` invoices with PDFs
(finalize -> render -> sign -> store) by one worker process and by two, and a
period ZIP export of ``--export`` signed invoices. Keys live in a temporary
directory. Ends with one line of JSON holding the figures.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._db import ensure_database

# Its own database: the billing bench leaves thousands of unsigned invoices in tillit_bench,
# which a period export would sign first.
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tillit_bench_documents"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DOCUMENTS_ON_FINALIZE"] = "off"  # the bench calls each step itself
_KEYS = tempfile.mkdtemp(prefix="tillit-bench-keys-")
os.environ["DOCUMENTS_SIGNING_KEY_FILE"] = str(Path(_KEYS) / "signing.p12")
os.environ["DOCUMENTS_KEY_PASSPHRASE"] = "bench passphrase, not a secret"  # noqa: S105
os.environ["DOCUMENTS_CREATE_KEYS"] = "true"
CHROMIUM = Path("/usr/bin/chromium")
# Playwright's sync API runs an event loop in this thread; the ORM calls stay synchronous.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _children_cpu_seconds() -> float:
    """CPU seconds (user + system) of this process's descendants: Playwright's driver and
    every Chromium process (browser, zygotes, renderer, GPU/utility), including what the
    tree's exited processes used (their cutime/cstime, once reaped by a parent in it)."""
    ticks = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
        # utime, stime, cutime, cstime (proc(5) fields 14-17)
        times[int(entry)] = sum(int(value) for value in fields[11:15]) / ticks
    total = 0.0
    for pid in times:
        parent = parents.get(pid, 0)
        while parent and parent != me:
            parent = parents.get(parent, 0)
        if parent == me:
            total += times[pid]
    return total


def measure(label: str, count: int, work: Callable[[int], Any], *, children: bool = False) -> dict:
    """Run ``work(i)`` ``count`` times; wall and CPU ms per run (CPU of our process, plus
    its child processes when ``children``)."""
    work(-1)  # warm-up, not counted
    cpu0 = time.process_time() + (_children_cpu_seconds() if children else 0.0)
    wall0 = time.perf_counter()
    for i in range(count):
        work(i)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() + (_children_cpu_seconds() if children else 0.0) - cpu0
    figures = {
        "wall_ms": round(wall * 1000 / count, 1),
        "cpu_ms": round(cpu * 1000 / count, 1),
        "per_second": round(count / wall, 2),
    }
    print(
        f"  {label:<34} {figures['wall_ms']:>8} ms wall {figures['cpu_ms']:>8} ms CPU", flush=True
    )
    return figures


def _billing_worker(draft_ids: list[int], clerk_id: int, ready: Any, results: Any) -> None:
    """One worker of the scaling run: finalize -> render -> sign -> store each draft."""
    import traceback

    from audit import SYSTEM
    from billing import services as billing
    from billing.documents import services
    from billing.models import Invoice
    from security.models import User

    try:
        clerk = User.objects.get(pk=clerk_id)  # opens this process's own connection
        ready.wait()
        cpu = time.process_time()
        for pk in draft_ids:
            invoice = billing.finalize_invoice(Invoice.objects.get(pk=pk), by=clerk)
            services.sign_invoice_document(invoice, by=SYSTEM)
        results.put({"done": len(draft_ids), "cpu_s": time.process_time() - cpu})
    except BaseException:
        results.put({"error": traceback.format_exc()})


def scaling_run(draft_ids: list[int], clerk_id: int, workers: int) -> dict[str, Any]:
    """Wall time for ``workers`` processes to take the drafts through the full path."""
    from django.db import connections

    # Each worker opens its own database connection; none may inherit ours.
    connections.close_all()
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [
        context.Process(
            target=_billing_worker, args=(draft_ids[n::workers], clerk_id, ready, results)
        )
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    ready.wait()
    start = time.perf_counter()
    reports = [results.get() for _ in processes]
    wall = time.perf_counter() - start
    for process in processes:
        process.join()
    errors = [report["error"] for report in reports if "error" in report]
    if errors:
        raise SystemExit("a worker failed:\n" + "\n".join(errors))
    done = sum(report["done"] for report in reports)
    figures = {
        "workers": workers,
        "invoices": done,
        "wall_s": round(wall, 2),
        "per_second": round(done / wall, 2),
        "cpu_ms_per_invoice": round(sum(r["cpu_s"] for r in reports) * 1000 / done, 1),
    }
    print(
        f"  {workers} worker(s): {done} invoices in {figures['wall_s']} s = "
        f"{figures['per_second']}/s ({figures['cpu_ms_per_invoice']} CPU ms each)",
        flush=True,
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="invoices per measurement")
    parser.add_argument("--export", type=int, default=200, help="invoices in the ZIP export")
    parser.add_argument("--no-chromium", action="store_true", help="skip the Chromium peer")
    parser.add_argument(
        "--scaling",
        type=int,
        default=1000,
        help="invoices (10 lines, with PDFs) in the one- and two-worker billing runs; 0 skips",
    )
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from django.utils import timezone

    from audit import SYSTEM
    from billing import services as billing
    from billing.documents import en16931, export, keys, render, selectors, services, sign
    from billing.documents.facturx_xml import build_cii
    from billing.models import CompanyProfile, Customer, InvoiceSeries
    from security.models import User

    CompanyProfile.objects.update_or_create(
        singleton=1,
        defaults={
            "legal_name": "Tillit Bench AB",
            "organisation_number": "556036-0793",
            "vat_number": "SE556036079301",
            "address_line1": "Storgatan 1",
            "postal_code": "111 22",
            "city": "Stockholm",
            "email": "billing@tillit.example",
            "bankgiro": "5050-1055",
            "iban": "SE4550000000058398257466",
            "bic": "ESSESESS",
        },
    )
    customer = Customer.objects.create(
        name="Bench Kund AB", email="kund@bench.example", country="SE", language="sv"
    )
    clerk, _ = User.objects.get_or_create(username="bench-clerk", defaults={"is_staff": True})
    run = uuid.uuid4().hex[:6]
    InvoiceSeries.objects.filter(kind="invoice", is_default=True).update(is_default=False)
    InvoiceSeries.objects.create(code=f"D{run}"[:10], kind="invoice", is_default=True)
    keys.load_identity()

    def draft_invoice(lines: int) -> Any:
        specs = [
            {
                "description": f"Consulting, work package {n}",
                "quantity": Decimal("3.5"),
                "unit_price": Decimal("1250.00"),
                "vat_category": "S",
                "vat_rate": Decimal("25") if n % 3 else Decimal("12"),
                "unit": "h",
            }
            for n in range(1, lines + 1)
        ]
        return billing.create_draft_invoice(customer=customer, lines=specs, by=clerk)

    def open_invoice(lines: int) -> Any:
        return billing.finalize_invoice(draft_invoice(lines), by=clerk)

    results: dict[str, Any] = {"count": args.count}
    # Playwright's sync API runs an event loop in its thread, and pyHanko runs its own
    # (asyncio.run): the browser lives in a thread of its own.
    browser_thread = ThreadPoolExecutor(max_workers=1)
    chromium: dict[str, Any] = {}

    def start_chromium() -> None:
        from playwright.sync_api import sync_playwright

        chromium["playwright"] = sync_playwright().start()
        chromium["browser"] = chromium["playwright"].chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
        )
        chromium["page"] = chromium["browser"].new_page()

    def stop_chromium() -> None:
        chromium["browser"].close()
        chromium["playwright"].stop()

    def print_in_page(html: str) -> bytes:
        chromium["page"].set_content(html)
        return bytes(chromium["page"].pdf(format="A4"))

    def print_with_chromium(html: str) -> bytes:
        return browser_thread.submit(print_in_page, html).result()

    if not args.no_chromium and CHROMIUM.exists():
        browser_thread.submit(start_chromium).result()
    page = chromium.get("page")

    def bench_size(lines: int) -> dict[str, Any]:
        print(f"{lines}-line invoice:", flush=True)
        sample = open_invoice(lines)
        html = render.render_html(sample)
        unsigned = render.render_invoice_pdf(sample)
        identity = keys.load_identity()
        figures: dict[str, Any] = {}
        figures["weasyprint_render"] = measure(
            "WeasyPrint alone (HTML -> PDF/A)", args.count, lambda i: render.html_to_pdf(html)
        )
        # WeasyPrint embeds the XML while writing the PDF: its extra cost is in the full path.
        figures["facturx_xml"] = measure(
            "Factur-X XML build + XSD + EN 16931",
            args.count,
            lambda i: render.checked_facturx_xml(sample),
        )
        xml = build_cii(sample)
        assert en16931.failed_rules(xml) == [], "the bench invoice must pass EN 16931"
        figures["en16931_schematron"] = measure(
            "EN 16931 schematron (warm)", args.count, lambda i: en16931.failed_rules(xml)
        )
        figures["pyhanko_sign"] = measure(
            "pyHanko alone (sign prepared PDF)",
            args.count,
            lambda i: sign.sign_pdf(unsigned, reason="bench", identity=identity),
        )
        drafts = [open_invoice(lines) for _ in range(args.count + 1)]
        figures["full_path"] = measure(
            "full path (render+sign+store)",
            args.count,
            lambda i: services.sign_invoice_document(drafts[i], by=SYSTEM),
        )
        signed = bytes(selectors.latest_document(drafts[0]).content)  # type: ignore[union-attr]
        figures["verify"] = measure(
            "verify (signature + stored hash)",
            args.count,
            lambda i: selectors.verify_document(signed),
        )
        if page is not None:
            figures["chromium_peer"] = measure(
                "Chromium peer (warm page, print)",
                args.count,
                lambda i: print_with_chromium(html),
                children=True,
            )
        for unit in ("wall_ms", "cpu_ms"):
            # What the check adds to the path it is part of: its time over the rest.
            check = figures["en16931_schematron"][unit]
            added = round(check / (figures["full_path"][unit] - check), 3)
            figures[f"schematron_added_to_full_path_{unit[:-3]}"] = added
            print(f"  schematron / (full path without it), {unit[:-3]} = {added}")
        for unit in ("wall_ms", "cpu_ms"):
            budget = figures["weasyprint_render"][unit] + figures["pyhanko_sign"][unit]
            ratio = round(figures["full_path"][unit] / budget, 2)
            figures[f"full_path_over_render_plus_sign_{unit[:-3]}"] = ratio
            print(f"  full path / (render + sign), {unit[:-3]} = {ratio}")
        if "chromium_peer" in figures:
            peer = figures["chromium_peer"]["cpu_ms"]
            ratio = round(figures["weasyprint_render"]["cpu_ms"] / peer, 2)
            figures["weasyprint_over_chromium_cpu"] = ratio
            print(f"  WeasyPrint / Chromium, CPU = {ratio}")
        return figures

    for size in (10, 200):
        results[f"lines_{size}"] = bench_size(size)

    if page is not None:
        browser_thread.submit(stop_chromium).result()
    browser_thread.shutdown()

    if args.scaling > 0:
        print(f"Billing run of {args.scaling} invoices with PDFs:", flush=True)
        runs = {}
        for workers in (1, 2):
            drafts = [draft_invoice(10).pk for _ in range(args.scaling)]
            runs[workers] = scaling_run(drafts, clerk.pk, workers)
        ratio = round(runs[2]["per_second"] / runs[1]["per_second"], 2)
        results["scaling"] = {"one_worker": runs[1], "two_workers": runs[2], "ratio": ratio}
        print(f"  two workers / one worker = {ratio}", flush=True)

    # The period is today: it holds every document this database signed today (the
    # billing runs' too), at least --export of them; the count is printed.
    print(f"ZIP export of today's period (at least {args.export} documents):", flush=True)
    today = timezone.localdate()
    have = export.period_documents(today, today)
    for n in range(max(0, args.export - len(have))):
        services.sign_invoice_document(open_invoice(10), by=SYSTEM)
        if n % 50 == 49:
            print(f"  prepared {n + 1}", flush=True)
    # An export packs signed documents only: the measured samples above were rendered, not stored.
    services.sign_period_documents(start=today, end=today, by=SYSTEM)
    start = time.perf_counter()
    cpu = time.process_time()
    bundle = services.export_period(start=today, end=today, by=SYSTEM)
    results["export"] = {
        "documents": bundle.count,
        "wall_s": round(time.perf_counter() - start, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "zip_mib": round(len(bundle.content) / 1024 / 1024, 2),
    }
    print(f"  {bundle.count} documents in {results['export']['wall_s']} s", flush=True)
    print(json.dumps(results, sort_keys=True))


if __name__ == "__main__":
    main()
