"""The accountant's period export: every document, a manifest of hashes, a signed manifest."""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing import services as billing_services
from billing.documents import services, tasks
from billing.documents.exceptions import DocumentsPending, InvalidPeriod
from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from security.models import User
from tests.factories import audit_events


@pytest.fixture
def period_zip(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    bob_company: Customer,
    clerk: User,
    accountant: User,
) -> zipfile.ZipFile:
    first = make_open_invoice(alice_company)
    make_open_invoice(bob_company)
    billing_services.issue_credit_note(first, by=clerk, reason="Wrong hours")
    today = timezone.localdate()
    assert services.sign_period_documents(start=today, end=today, by=clerk) == 3
    bundle = services.export_period(start=today, end=today, by=accountant)
    return zipfile.ZipFile(io.BytesIO(bundle.content))


@pytest.mark.django_db
def test_the_zip_holds_every_invoice_and_credit_note_with_matching_hashes(
    period_zip: zipfile.ZipFile,
) -> None:
    manifest = json.loads(period_zip.read("manifest.json"))

    kinds = sorted(row["kind"] for row in manifest["documents"])
    assert kinds == ["credit_note", "invoice", "invoice"]
    for row in manifest["documents"]:
        assert hashlib.sha256(period_zip.read(row["file"])).hexdigest() == row["sha256"]
        assert row["sha256"] == InvoiceDocument.objects.get(sha256=row["sha256"]).sha256
    rows = list(csv.DictReader(io.StringIO(period_zip.read("manifest.csv").decode())))
    assert {r["sha256"] for r in rows} == {r["sha256"] for r in manifest["documents"]}
    assert all(r["vat_per_rate"] for r in rows)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.django_db
def test_the_manifest_signature_verifies_with_openssl_and_fails_when_changed(
    period_zip: zipfile.ZipFile, tmp_path: Path
) -> None:
    period_zip.extractall(tmp_path)
    command = [
        "openssl", "cms", "-verify", "-binary", "-inform", "DER",
        "-in", "manifest.json.p7s", "-content", "manifest.json",
        "-CAfile", "signing-certificate.pem", "-purpose", "any", "-out", "/dev/null",
    ]  # fmt: skip

    ok = subprocess.run(command, cwd=tmp_path, capture_output=True, check=False)  # noqa: S603
    (tmp_path / "manifest.json").write_bytes(b" " + (tmp_path / "manifest.json").read_bytes())
    tampered = subprocess.run(command, cwd=tmp_path, capture_output=True, check=False)  # noqa: S603

    assert ok.returncode == 0, ok.stderr
    assert tampered.returncode != 0


@pytest.mark.django_db
def test_the_export_is_audited(period_zip: zipfile.ZipFile, accountant: User) -> None:
    [event] = audit_events("invoice.documents_exported")

    assert event.details["documents"] == 3
    assert (
        event.details["manifest_sha256"]
        == hashlib.sha256(period_zip.read("manifest.json")).hexdigest()
    )


@pytest.mark.django_db
def test_a_reversed_period_is_refused_naming_the_field(accountant: User) -> None:
    with pytest.raises(InvalidPeriod) as error:
        services.export_period(start="2026-02-01", end="2026-01-01", by=accountant)
    assert error.value.field == "end"
    with pytest.raises(InvalidPeriod) as error:
        services.export_period(start="yesterday", end="2026-01-01", by=accountant)
    assert error.value.field == "start"


@pytest.mark.django_db
def test_the_command_writes_the_zip(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, tmp_path: Path
) -> None:
    make_open_invoice(alice_company)
    today = timezone.localdate()
    output = tmp_path / "export.zip"

    call_command(
        "export_invoices",
        "--start",
        (today - datetime.timedelta(days=31)).isoformat(),
        "--end",
        today.isoformat(),
        "--output",
        str(output),
    )

    assert len(json.loads(zipfile.ZipFile(output).read("manifest.json"))["documents"]) == 1


@pytest.mark.django_db
def test_an_export_never_signs_it_refuses_while_an_invoice_of_the_period_has_no_pdf(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    sign_invoice: Callable[[Invoice], InvoiceDocument],
    accountant: User,
) -> None:
    sign_invoice(make_open_invoice(alice_company))
    make_open_invoice(alice_company)  # finalized, not signed yet
    today = timezone.localdate()

    with pytest.raises(DocumentsPending) as error:
        services.export_period(start=today, end=today, by=accountant)

    assert error.value.count == 1
    assert error.value.field == "period"
    assert InvoiceDocument.objects.count() == 1
    assert audit_events("invoice.documents_exported") == []


@pytest.mark.django_db
def test_the_signing_job_signs_what_the_period_misses_once(
    make_open_invoice: Callable[..., Invoice], alice_company: Customer, accountant: User
) -> None:
    make_open_invoice(alice_company)
    make_open_invoice(alice_company)
    today = timezone.localdate().isoformat()

    assert tasks.sign_period_documents_job(today, today) == 2
    assert tasks.sign_period_documents_job(today, today) == 0
    assert InvoiceDocument.objects.count() == 2
    assert services.export_period(start=today, end=today, by=accountant).count == 2


@pytest.mark.django_db
def test_queueing_the_signing_enqueues_one_django_q_job_after_commit_and_audits_it(
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    accountant: User,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django_q.models import OrmQ

    make_open_invoice(alice_company)
    settings.DOCUMENTS_ON_FINALIZE = "async"
    today = timezone.localdate()

    with django_capture_on_commit_callbacks(execute=True):
        waiting = services.queue_period_signing(start=today, end=today, by=accountant)

    assert waiting == 1
    [job] = OrmQ.objects.all()
    assert job.task["func"] == "billing.documents.tasks.sign_period_documents_job"
    assert job.task["args"] == (today.isoformat(), today.isoformat())
    assert InvoiceDocument.objects.count() == 0  # nothing rendered by the caller
    [event] = audit_events("invoice.documents_signing_queued")
    assert event.details["documents"] == 1
