"""Playwright in Debian's Chromium (/usr/bin/chromium); never `playwright install`.

scripts/test installs the chromium package when it is missing; on a machine
without it these tests are skipped with the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test.testcases import LiveServerThread

CHROMIUM = Path("/usr/bin/chromium")

# Playwright's sync API runs an event loop in the test thread; Django would then
# refuse the test's own (synchronous, safe) ORM calls and the test database
# setup. Set for the browser tests' process, as pytest-django's docs advise.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (/usr/bin/chromium); scripts/test installs it",
)
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
requires_axe = pytest.mark.skipif(
    not AXE.exists(), reason="axe-core is not installed (scripts/test runs npm install)"
)
# The two screens: a laptop and a phone.
VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def no_sideways_scroll(page: Any) -> bool:
    """Nothing on the page is wider than the screen."""
    # After a click the next document may have committed without its root element yet
    # (seen once on a loaded machine): measure the page once it has loaded.
    page.wait_for_load_state("load")
    return bool(
        page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        )
    )


def axe_violations(page: Any) -> list[str]:
    """Every accessibility violation axe-core finds on the current page, any impact."""
    # Evaluated through the DevTools protocol: the page's CSP (no inline scripts) stays on.
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => JSON.stringify(await axe.run())")
    return [
        f"{v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
        for v in json.loads(result)["violations"]
    ]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


class _Server:
    def __init__(self, thread: Any) -> None:
        self.thread = thread

    @property
    def url(self) -> str:
        return f"http://{self.thread.host}:{self.thread.port}"


@pytest.fixture
def browser_server(transactional_db: None) -> Iterator[_Server]:
    """Django's live server thread with the site's own middleware serving /static/.

    pytest-django's ``live_server`` puts Django's finder-based static handler in front
    of the site, which answered the browser tests while the demo itself served no
    static file at all. Here nothing stands in front: WhiteNoise serves the collected,
    hashed files exactly as under ``scripts/run`` and in production.
    """
    thread = LiveServerThread("localhost", static_handler=_NothingInFront)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield _Server(thread)
    thread.terminate()


class _NothingInFront(WSGIHandler):
    """Hands every request, /static/ included, to the site itself."""

    def __init__(self, application: WSGIHandler) -> None:
        self.application = application

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.application(environ, start_response)
