"""Swedish is complete: `makemessages` run over the code leaves nothing to translate.

The catalogue (locale/sv/LC_MESSAGES/django.po) is the one place translations live.
This runs Django's own `makemessages` over a copy of the sources (the working tree is
never touched), exactly as a developer would after changing a text, and fails with
the texts that have no Swedish or only a fuzzy guess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Not sources of the site's texts: dependencies, generated files, tests and benchmarks.
IGNORED = ["node_modules", "staticfiles", "var", "tests", "bench", ".venv"]
CATALOGUE = Path("locale") / "sv" / "LC_MESSAGES" / "django.po"

MSGATTRIB = shutil.which("msgattrib") or "msgattrib"
MSGFMT = shutil.which("msgfmt") or "msgfmt"
needs_gettext = pytest.mark.skipif(
    shutil.which("msgattrib") is None, reason="gettext is not installed (scripts/run installs it)"
)


def _entries(po: Path, *flags: str) -> list[str]:
    """The msgids msgattrib selects with ``flags`` (the header excluded)."""
    out = subprocess.run(  # noqa: S603 - gettext's own tool, fixed arguments
        [MSGATTRIB, "--no-obsolete", *flags, str(po)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [
        line.removeprefix("msgid ")
        for line in out.splitlines()
        if line.startswith("msgid ") and line != 'msgid ""'
    ]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The catalogue as `makemessages -l sv` leaves it after reading the current code."""
    copy = tmp_path_factory.mktemp("sources") / "tillit"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(*IGNORED, ".git", "__pycache__", "*.mo", ".*cache"),
    )
    env = {**os.environ, "TILLIT_VAR_DIR": str(copy / "var")}
    subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", "makemessages", "-l", "sv"]
        + [arg for name in IGNORED for arg in ("--ignore", name)],
        cwd=copy,
        env=env,
        check=True,
        capture_output=True,
    )
    return copy / CATALOGUE


@needs_gettext
def test_makemessages_leaves_no_text_without_swedish(regenerated: Path) -> None:
    assert _entries(regenerated, "--untranslated") == []


@needs_gettext
def test_makemessages_leaves_no_fuzzy_guess(regenerated: Path) -> None:
    assert _entries(regenerated, "--only-fuzzy") == []


@needs_gettext
def test_the_catalogue_compiles_cleanly() -> None:
    # -c checks that every translation keeps the placeholders of its original.
    subprocess.run(  # noqa: S603 - gettext's own tool, fixed arguments
        [MSGFMT, "-c", "-o", os.devnull, str(ROOT / CATALOGUE)], check=True, capture_output=True
    )
