"""The demo, started exactly as the README says (`scripts/run`), works in a browser.

`scripts/run` runs on a free port (TILLIT_ADDR) with a fresh var/ directory (so a
fresh SQLite file) and a fresh static files directory; nothing else differs from
what a new user types. Then:

* a page, its stylesheet and the card-entry script answer 200 with the right
  content type (WhiteNoise, with compressed copies and cache-busting names);
* in Chromium the demo customer signs in, pays an unpaid invoice with a new
  test card, downloads the invoice's signed PDF and signs out;
* any answer of 400 or above on the way (a static file that 404s above all) fails it.

The browser tests before this one ran against Django's test server, which serves
static files by itself: the demo served none, and nobody noticed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import requires_chromium

ROOT = Path(__file__).resolve().parents[2]
DEMO_CUSTOMER = "astrid"
DEMO_PASSWORD = "Tillit-demo-2026"
CARD = "4242 4242 4242 4242"
READY_SECONDS = 300  # pip check, translations, static files, migrations, demo data
PDF_SECONDS = 300  # the job cluster signs the demo's invoices after it starts

pytestmark = [requires_chromium]


@dataclass
class Demo:
    url: str
    static_root: Path
    log: Path

    def static_url(self, name: str) -> str:
        """The hashed URL collectstatic gave ``name`` (its manifest)."""
        manifest = json.loads((self.static_root / "staticfiles.json").read_text())
        return f"{self.url}/static/{manifest['paths'][name]}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, **headers: str) -> Any:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own demo
    return urllib.request.urlopen(request, timeout=30)  # noqa: S310


def _wait_until_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"scripts/run ended ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with _get(f"{url}/account/login/") as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"the demo did not answer within {READY_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`scripts/run` as the README runs it, on a free port with a fresh var/ directory."""
    tmp_path = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TILLIT_MODE"}}
    env.update(
        TILLIT_ADDR=f"127.0.0.1:{port}",
        TILLIT_VAR_DIR=str(tmp_path / "var"),
        # Not the checkout's staticfiles/: the suite's own browser tests serve from it.
        STATIC_ROOT=str(tmp_path / "static"),
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - the project's own script
            [str(ROOT / "scripts" / "run")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: runserver, its reloader, qcluster
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, process, log)
        yield Demo(url=url, static_root=tmp_path / "static", log=log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The demo's process group: asked to stop, then made to."""
    for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            os.killpg(process.pid, 0)  # the leader is gone; are its children?
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def test_the_static_files_answer_with_their_content_types(demo: Demo) -> None:
    with _get(f"{demo.url}/account/login/") as page:
        assert page.headers["Content-Type"].startswith("text/html")
        html = page.read().decode()
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', html)
    assert stylesheet and re.search(r"/static/portal/portal\.[0-9a-f]{12}\.css$", stylesheet[1])
    with _get(f"{demo.url}{stylesheet[1]}") as css:
        assert css.status == 200
        assert css.headers["Content-Type"].startswith("text/css")
        assert "immutable" in css.headers["Cache-Control"]
        assert b".site-header" in css.read()
    with _get(demo.static_url("payments/card-entry.js"), **{"Accept-Encoding": "br"}) as js:
        assert js.status == 200
        assert js.headers["Content-Type"].split(";")[0] in {
            "text/javascript",
            "application/javascript",
        }
        assert js.headers["Content-Encoding"] == "br"  # WhiteNoise's compressed copy


def test_the_demo_customer_pays_with_a_new_card_downloads_the_pdf_and_signs_out(
    demo: Demo, browser: Any
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    page = context.new_page()
    failures: list[str] = []
    page.on(
        "response",
        lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )

    page.goto(f"{demo.url}/")
    page.fill("input[name=username]", DEMO_CUSTOMER)
    page.fill("input[name=password]", DEMO_PASSWORD)
    with page.expect_navigation():
        page.click("form[action='/account/login/'] button[type=submit]")
    assert page.url == f"{demo.url}/portal/"
    assert page.locator("link[rel=stylesheet]").count() == 1
    assert page.evaluate("getComputedStyle(document.querySelector('.site-header')).display")

    unpaid = page.locator("tbody tr", has=page.locator(".badge-overdue, .badge-open")).first
    with page.expect_navigation():
        unpaid.locator("a").first.click()
    invoice_url = page.url
    invoice_id = re.search(r"/portal/invoices/(\d+)/$", invoice_url)
    assert invoice_id
    with page.expect_navigation():
        page.click("a.button[href$='/pay/']")
    # The amount due, written as the (Swedish) customer writes it: "1 482,44".
    assert re.fullmatch(r"\d{1,3}(\u00a0\d{3})*,\d{2}", page.input_value("#amount-new"))
    page.fill("#card-number", CARD)
    page.fill("#card-expiry", "12/30")
    page.fill("#card-cvc", "123")
    keep = page.locator("#keep-card")
    if keep.count() and keep.is_checked():
        keep.uncheck()  # the demo customer has no second factor to save a card with
    with page.expect_navigation():
        page.click("#card-entry button[type=submit]")
    assert "/portal/payments/" in page.url
    assert "Tack! Din betalning är genomförd." in page.inner_text("main")

    pdf_url = f"{demo.url}/documents/invoices/{invoice_id[1]}/pdf/"
    deadline = time.monotonic() + PDF_SECONDS
    while True:
        answer = page.request.get(pdf_url)
        if answer.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(2)  # the job cluster is still signing the demo's invoices
    assert answer.status == 200, demo.log.read_text()[-2000:]
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.body().startswith(b"%PDF-")

    with page.expect_navigation():
        page.click("form.signout button")
    assert page.url.startswith(f"{demo.url}/account/login/")
    page.goto(f"{demo.url}/portal/")
    assert "/account/login/" in page.url  # signed out: the portal asks for a sign-in again

    context.close()
    pdf_misses = [f for f in failures if f.startswith("404") and f.endswith(pdf_url)]
    assert [f for f in failures if f not in pdf_misses] == []
