"""Playwright in Debian's Chromium (/usr/bin/chromium); never `playwright install`.

scripts/test installs the chromium package when it is missing; on a machine
without it these tests are skipped with the reason.
"""

from __future__ import annotations

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
