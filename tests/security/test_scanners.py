"""Issue 27, item 3: third-party scanners against the live server on loopback, and bandit.

- **sqlmap** (Debian's package) attacks the portal's search and filter parameters with
  customer Alice's session; first it must find the injection in a deliberately broken
  page (a control: the bounded options still find a real hole).
- **wapiti** (Debian's package) crawls and attacks the portal with Alice's session.
- **bandit** reads the code: no finding of high severity.

The scanners' findings fail the suite. Each run is bounded (a few parameters, level and
risk 1, a time limit); without the tool (a machine where scripts/test could not install
it, not being root) the test is skipped with a loud reason. How to run each by hand:
docs/security-testing.md.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.conf import settings
from django.test import Client

from billing.models import Customer, Invoice
from security.models import User
from tests.factories import line

ROOT = Path(__file__).resolve().parents[2]
SCANNED_APPS = ["audit", "billing", "config", "db", "payments", "security"]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(
            f"!!! {name} IS NOT INSTALLED: the {name} scan did NOT run. scripts/test installs "
            f"Debian's {name} when run as root; install it (apt-get install {name})."
        )
    return path


def _run(argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv: a scanner against our own loopback server
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )


def _session_cookie(user: User) -> str:
    """The user's session and CSRF cookies, as a browser sends them (a scanner posting a form
    then carries a token that matches, and reaches the form's checks)."""
    client = Client()
    client.force_login(user)
    client.get("/portal/")
    return "; ".join(
        f"{name}={client.cookies[name].value}"
        for name in (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)
    )


@pytest.fixture
def alice_on_the_live_server(
    live_server: Any,
    default_series: None,
    alice: User,
    alice_company: Customer,
    make_open_invoice: Callable[..., Invoice],
) -> tuple[str, str]:
    """The live server's address and Alice's session cookie, with two invoices to search."""
    make_open_invoice(alice_company, [line("Annual licence", "1", "800.00")])
    make_open_invoice(alice_company, [line("Support", "2", "150.00")])
    cookie = _session_cookie(alice)
    portal = f"{live_server.url}/portal/"
    request = urllib.request.Request(portal, headers={"Cookie": cookie})  # noqa: S310 - http://
    with urllib.request.urlopen(request, timeout=30) as page:  # noqa: S310 - our loopback server
        assert page.status == 200
        assert page.url == portal, "the session did not open the portal"
    return live_server.url, cookie


# sqlmap ----------------------------------------------------------------------------------

SQLMAP_BOUNDS = [
    "--batch",
    "--level=1",
    "--risk=1",
    # Boolean, error and union: answers compared, not timed. Time-based and stacked
    # tests (which time pg_sleep) misjudge a loaded CI machine and can run for minutes;
    # pg_sleep in every parameter is tried by test_injection.py.
    "--technique=BEU",
    "--timeout=10",
    "--retries=1",
    "--flush-session",
    "--disable-coloring",
]
FOUND = ("identified the following injection point", "is vulnerable", "appears to be injectable")


def _sqlmap(url: str, parameters: str, output: Path, dbms: str, *extra: str) -> str:
    result = _run(
        [
            _tool("sqlmap"),
            *("-u", url, "-p", parameters, f"--output-dir={output}", f"--dbms={dbms}"),
            *SQLMAP_BOUNDS,
            *extra,
        ],
        timeout=150,
    )
    return result.stdout + result.stderr


class _BrokenSearch:
    """A page with the hole sqlmap looks for: the search glued into the SQL (a control)."""

    def __init__(self) -> None:
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("CREATE TABLE invoice (number TEXT, customer TEXT)")
        self.db.executemany("INSERT INTO invoice VALUES (?, ?)", [("F-1", "a"), ("F-2", "b")])
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        q = parse_qs(environ.get("QUERY_STRING", "")).get("q", [""])[0]
        sql = f"SELECT number FROM invoice WHERE number = '{q}'"
        try:
            with self.lock:
                rows = self.db.execute(sql).fetchall()
            body = "".join(f"<li>{number}</li>" for (number,) in rows)
        except sqlite3.Error:
            body = "no results"
        start_response("200 OK", [("Content-Type", "text/html")])
        return [f"<html><body><ul>{body}</ul></body></html>".encode()]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def broken_search() -> Iterator[str]:
    server = make_server(
        "127.0.0.1", 0, _BrokenSearch(), server_class=_ThreadingServer, handler_class=_Quiet
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/search"
    server.shutdown()
    server.server_close()


def test_sqlmap_with_these_bounds_finds_a_real_injection(
    broken_search: str, tmp_path: Path
) -> None:
    """The control: a scan that found nothing anywhere would prove nothing."""
    output = _sqlmap(f"{broken_search}?q=F-1", "q", tmp_path, "SQLite")

    assert any(sign in output for sign in FOUND), output[-3000:]


@pytest.mark.django_db(transaction=True)
def test_sqlmap_finds_no_injection_in_the_portals_search_and_filters(
    alice_on_the_live_server: tuple[str, str], tmp_path: Path
) -> None:
    server, cookie = alice_on_the_live_server

    output = _sqlmap(
        f"{server}/portal/?q=licence&status=open&page=1",
        "q,status,page",
        tmp_path,
        "PostgreSQL",
        f"--cookie={cookie}",
        "--ignore-redirects",
    )

    assert not any(sign in output for sign in FOUND), output[-3000:]
    assert "do not appear to be injectable" in output, output[-3000:]
    assert "not dynamic" not in output or "'q'" in output


# wapiti ----------------------------------------------------------------------------------

WAPITI_MODULES = "xss,permanentxss,sql,exec,file,crlf,redirect"


@pytest.mark.django_db(transaction=True)
def test_wapiti_finds_nothing_in_the_portal(
    alice_on_the_live_server: tuple[str, str], tmp_path: Path
) -> None:
    server, cookie = alice_on_the_live_server
    report = tmp_path / "wapiti.json"
    # The folder scope keeps wapiti in /portal/: signing out (/account/logout/) is outside
    # it (wapiti 3.0.4's --exclude fails on Python 3.11).

    result = _run(
        [
            _tool("wapiti"),
            "-u",
            f"{server}/portal/",
            "--scope",
            "folder",
            "-m",
            WAPITI_MODULES,
            "-H",
            f"Cookie: {cookie}",
            "-d",
            "3",
            "--max-links-per-page",
            "40",
            "--max-scan-time",
            "50",
            "--max-attack-time",
            "10",
            "--flush-session",
            "--store-session",
            str(tmp_path / "session"),
            "--store-config",
            str(tmp_path / "config"),
            "--no-bugreport",
            "-v",
            "1",
            "-f",
            "json",
            "-o",
            str(report),
        ],
        timeout=150,
    )

    assert report.exists(), result.stdout[-3000:] + result.stderr[-3000:]
    found = json.loads(report.read_text())
    vulnerabilities = {kind: hits for kind, hits in found["vulnerabilities"].items() if hits}
    anomalies = {kind: hits for kind, hits in found.get("anomalies", {}).items() if hits}
    assert vulnerabilities == {}
    assert anomalies == {}
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(_crawled(tmp_path / "session")) >= 5, "wapiti did not crawl Alice's portal"


def _crawled(session: Path) -> set[str]:
    """The portal pages wapiti opened with a 200 (from its session database)."""
    pages: set[str] = set()
    for database in session.glob("*.db"):
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT path FROM paths WHERE method = 'GET' AND http_status = 200")
            pages |= {path for (path,) in rows if "/portal/" in path}
    return pages


# bandit ----------------------------------------------------------------------------------


def test_bandit_finds_nothing_of_high_severity(tmp_path: Path) -> None:
    bandit = Path(sys.executable).with_name("bandit")
    if not bandit.exists():
        pytest.skip("!!! bandit IS NOT INSTALLED in the virtualenv: scripts/test installs it")
    report = tmp_path / "bandit.json"

    result = _run(
        [
            str(bandit),
            "-r",
            *SCANNED_APPS,
            "-x",
            ",".join(f"{app}/migrations" for app in SCANNED_APPS),
            "--severity-level",
            "high",
            "-f",
            "json",
            "-o",
            str(report),
            "-q",
        ],
        timeout=120,
    )

    found = json.loads(report.read_text())
    high = [
        f"{hit['filename']}:{hit['line_number']} {hit['test_id']} {hit['issue_text']}"
        for hit in found["results"]
        if hit["issue_severity"] == "HIGH"
    ]
    assert high == []
    assert result.returncode == 0, result.stderr
    assert found["metrics"]["_totals"]["loc"] > 10_000  # it read the code
