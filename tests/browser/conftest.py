"""Playwright in Debian's Chromium (/usr/bin/chromium); never `playwright install`.

scripts/test installs the chromium package when it is missing; on a machine
without it these tests are skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

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


@pytest.fixture
def browser_server(live_server: Any) -> Any:
    """pytest-django's live server (static files served), for the browser to visit."""
    return live_server
