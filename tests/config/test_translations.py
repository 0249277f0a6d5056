"""Swedish is complete: `makemessages` run over the code leaves nothing to translate, and
the passkey script's messages (a package without Swedish) have Swedish too.

The catalogue (locale/sv/LC_MESSAGES/django.po) is the one place translations live.
This runs Django's own `makemessages` over a copy of the sources (the working tree is
never touched), exactly as a developer would after changing a text, and fails with
the texts that have no Swedish or only a fuzzy guess.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

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


def test_every_passkey_script_message_has_swedish() -> None:
    import django_otp_webauthn

    scripts = Path(django_otp_webauthn.__file__).parent / "static" / "django_otp_webauthn"
    wanted = {
        message
        for script in scripts.glob("*.js")
        for message in re.findall(r'gettext\("([^"]+)"\)', script.read_text(encoding="utf-8"))
    }
    catalogue = (ROOT / "locale" / "sv" / "LC_MESSAGES" / "djangojs.po").read_text(encoding="utf-8")
    translated = set(re.findall(r'^msgid "(.+)"\nmsgstr "(?!")', catalogue, re.M))
    assert wanted and wanted <= translated, sorted(wanted - translated)


def test_the_passkey_script_reads_its_swedish_from_its_catalogue(client: Client) -> None:
    answer = client.get("/webauthn/jsi18n/", HTTP_ACCEPT_LANGUAGE="sv")
    assert "Verifiera med nyckel (passkey)" in answer.content.decode()
