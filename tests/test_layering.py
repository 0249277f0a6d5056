"""The house rules that import-linter cannot see, checked over the source (no database).

import-linter (``lint-imports``, run by ``scripts/test``; contracts in ``pyproject.toml``)
keeps the layers, billing away from payments, audit's internals private and the
packages free of import cycles. These tests keep the rest:

- no view, admin, form, task, API or management command writes through the ORM: they
  call a service (docs/architecture.md, "Inside an app");
- outside the ground floor ``db/``, no code asks which database runs
  (``connection.vendor``) or uses a Django private API: ``db.dialect`` and the named
  functions of ``db/`` do.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("audit", "security", "billing", "payments", "config")

# Modules that must stay thin: their names, wherever they sit in an app.
_THIN = re.compile(
    r"(^|_)(views|admin|forms|tasks|api|serializers)(_|$)|^admin_|_admin$|_views$|_forms$"
)
_ORM_WRITES = frozenset(
    {
        "save",
        "create",
        "update",
        "delete",
        "bulk_create",
        "bulk_update",
        "get_or_create",
        "update_or_create",
    }
)
# Writes that a thin module may make, each with its reason. Empty: none is needed.
_ALLOWED_WRITES: dict[str, str] = {}


def _modules(*packages: str) -> Iterator[Path]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name}:{line}"


def _is_thin(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    if "management" in parts and "commands" in parts:
        return True
    return any(_THIN.search(Path(part).stem) for part in parts[1:])


def _receiver_is_a_query(node: ast.expr) -> bool:
    """``X.objects...``, ``qs.filter(...)...``: a chain of calls or a manager, not a dict."""
    text = ast.unparse(node)
    return isinstance(node, ast.Call) or ".objects" in text or text.endswith("objects")


def _orm_writes(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name not in _ORM_WRITES:
            continue
        # dict.update / set.update are not writes; a queryset's update is.
        if name == "update" and not _receiver_is_a_query(node.func.value):
            continue
        where = _where(path, node.lineno)
        if where not in _ALLOWED_WRITES:
            found.append(f"{where}: {ast.unparse(node)[:100]}")
    return found


def test_the_scan_finds_the_thin_modules() -> None:
    thin = {str(path.relative_to(ROOT)) for path in _modules(*APPS) if _is_thin(path)}
    for expected in (
        "billing/portal/views.py",
        "billing/admin/invoices.py",
        "billing/documents/tasks.py",
        "security/forms.py",
        "security/management/commands/sync_roles.py",
        "payments/portal/views.py",
    ):
        assert expected in thin
    assert "billing/services/finalization.py" not in thin


def test_the_scan_sees_a_write(tmp_path: Path) -> None:
    module = tmp_path / "views.py"
    module.write_text(
        "def view(request):\n"
        "    Invoice.objects.filter(pk=1).update(status='paid')\n"
        "    invoice.save()\n"
        "    request.__dict__.update({})\n"
    )
    assert len(_orm_writes(module)) == 2


def test_no_view_admin_form_task_or_command_writes_through_the_orm() -> None:
    writes = [w for path in _modules(*APPS) if _is_thin(path) for w in _orm_writes(path)]
    assert writes == [], "call a service instead:\n" + "\n".join(writes)


# What only db/ may touch: asking the database's vendor, and Django's private APIs.
_PRIVATE_IMPORTS = (
    "django.db.models.query",
    "django.db.models.sql",
    "django.db.models.base",
    "django.db.backends.postgresql",
    "django.db.backends.base",
    "django.db.backends.signals",
)
_PRIVATE_ATTRIBUTES = frozenset(
    {
        "vendor",
        "_iterable_class",
        "_known_related_objects",
        "_prefetch_related_lookups",
        "_result_cache",
        "fields_cache",
        "klass_info",
        "get_related_populators",
        "get_compiler",
    }
)


def _private_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        where = _where(path, getattr(node, "lineno", 0))
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(_PRIVATE_IMPORTS):
                found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            found += [
                f"{where}: import {alias.name}"
                for alias in node.names
                if alias.name.startswith(_PRIVATE_IMPORTS)
            ]
        elif isinstance(node, ast.Attribute) and node.attr in _PRIVATE_ATTRIBUTES:
            found.append(f"{where}: {ast.unparse(node)}")
    return found


def test_only_db_asks_the_vendor_or_uses_django_private_apis() -> None:
    uses = [use for path in _modules(*APPS) for use in _private_uses(path)]
    assert uses == [], "use db.dialect or a named function of db/:\n" + "\n".join(uses)


def test_the_private_api_scan_sees_a_use(tmp_path: Path) -> None:
    module = tmp_path / "services.py"
    module.write_text(
        "from django.db.models.query import ModelIterable\n"
        "if connection.vendor == 'postgresql':\n"
        "    pass\n"
    )
    assert len(_private_uses(module)) == 2
