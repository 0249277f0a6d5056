"""Every URL name the code reverses exists: a wrong name is a dead link (issue 17, item 14).

The code is read, not run: every string literal given to ``reverse``, ``reverse_lazy``,
``redirect``, ``resolve_url`` or ``redirect_to_login``, every other string literal that
reads ``<a URL namespace>:<name>`` (a name chosen first and reversed later), every
``{% url '...' %}`` of a template and the ``*_URL`` settings that name a view must be a
name the URL configuration knows.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("audit", "billing", "config", "db", "payments", "security")
TEMPLATE_DIRS = ("templates", "audit", "billing", "payments", "security")
REVERSING = {"reverse", "reverse_lazy", "redirect", "resolve_url", "redirect_to_login"}
TEMPLATE_URL = re.compile(r"""{%\s*url\s+['"]([^'"]+)['"]""")
NAME = re.compile(r"^[A-Za-z_][\w-]*(:[A-Za-z_][\w-]*)*$")


def _known_names(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = ""
) -> Iterator[str]:
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            inner = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            yield from _known_names(entry.url_patterns, inner)
        elif entry.name:
            yield f"{prefix}{entry.name}"


def _python_files() -> Iterator[Path]:
    for folder in SOURCE_DIRS:
        for path in (ROOT / folder).rglob("*.py"):
            if "migrations" not in path.parts:
                yield path


def _namespaces() -> set[str]:
    return {name.rsplit(":", 1)[0] for name in _known_names() if ":" in name}


def _reversed_in_python() -> Iterator[tuple[str, str]]:
    namespaced = re.compile(rf"^({'|'.join(sorted(_namespaces()))}):[A-Za-z_][\w-]*$")
    # The API's OAuth scopes look like URL names ("payments:read") and are not.
    scopes: set[str] = set(settings.OAUTH2_PROVIDER["SCOPES"])  # type: ignore[call-overload]
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if namespaced.match(node.value) and node.value not in scopes:
                    yield node.value, f"{path.relative_to(ROOT)}:{node.lineno}"
                continue
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            first = node.args[0]
            if called in REVERSING and isinstance(first, ast.Constant):
                value = first.value
                if isinstance(value, str) and NAME.match(value):
                    yield value, f"{path.relative_to(ROOT)}:{node.lineno}"


def _reversed_in_templates() -> Iterator[tuple[str, str]]:
    for folder in TEMPLATE_DIRS:
        for path in (ROOT / folder).rglob("*.html"):
            for match in TEMPLATE_URL.finditer(path.read_text(encoding="utf-8")):
                yield match.group(1), str(path.relative_to(ROOT))


def test_the_scan_finds_the_names_it_should() -> None:
    """The scan itself works: it sees the delivery link's page and the portal's links."""
    found = {name for name, _where in [*_reversed_in_python(), *_reversed_in_templates()]}
    assert {"portal:invoice", "portal:receipt", "security:login"} <= found


def test_every_reversed_url_name_exists() -> None:
    known = set(_known_names())
    wanted = [*_reversed_in_python(), *_reversed_in_templates()]
    wanted += [(settings.LOGIN_URL, "settings.LOGIN_URL")]
    wanted += [(settings.LOGIN_REDIRECT_URL, "settings.LOGIN_REDIRECT_URL")]
    missing = sorted({f"{name} ({where})" for name, where in wanted if name not in known})
    assert not missing, "URL names reversed but not defined: " + ", ".join(missing)
