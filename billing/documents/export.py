"""A period's signed invoices and credit notes as one ZIP for the accountant.

The ZIP holds every document (latest version) under ``documents/``, a manifest
as ``manifest.csv`` and ``manifest.json`` (number, kind, dates, totals, VAT per
rate, SHA-256 of each file), ``manifest.json.p7s`` (a detached CMS signature of
manifest.json by the company's document-signing certificate) and that
certificate as ``signing-certificate.pem``. Check it with::

    openssl cms -verify -binary -inform DER -in manifest.json.p7s \\
        -content manifest.json -CAfile signing-certificate.pem -purpose any >/dev/null
    sha256sum -c manifest.sha256

(and compare the certificate's fingerprint with the one on the portal's
security page, "Check that a document is ours": ``openssl x509 -in
signing-certificate.pem -noout -fingerprint -sha256``; manifest.json names it too, as
``signing_certificate_sha256``). The same page shows the fingerprint of the company's
PGP key, which signs the invoices sent by encrypted email
(``gpg --verify`` shows it for each message).
"""

from __future__ import annotations

import csv
import datetime
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7

from billing.documents.exceptions import InvalidPeriod
from billing.documents.keys import SigningIdentity, load_identity
from billing.documents.models import InvoiceDocument
from billing.money import Money

MANIFEST_FIELDS = [
    "file",
    "number",
    "kind",
    "credits",
    "customer",
    "issue_date",
    "due_date",
    "currency",
    "net_total",
    "vat_total",
    "gross_total",
    "vat_per_rate",
    "version",
    "sha256",
]


@dataclass(frozen=True)
class PeriodExport:
    start: datetime.date
    end: datetime.date
    count: int
    content: bytes
    manifest_sha256: str
    zip_sha256: str

    @property
    def filename(self) -> str:
        return f"invoices-{self.start.isoformat()}-{self.end.isoformat()}.zip"


def parse_period(start: Any, end: Any) -> tuple[datetime.date, datetime.date]:
    """Two ISO dates, start <= end, at most ~13 months apart; errors name the field."""
    dates = []
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, datetime.date):
            dates.append(value)
            continue
        try:
            dates.append(datetime.date.fromisoformat(str(value)))
        except ValueError:
            raise InvalidPeriod(f"{value!r} is not a date (YYYY-MM-DD)", field=name) from None
    first, last = dates
    if last < first:
        raise InvalidPeriod("the end date is before the start date", field="end")
    if (last - first).days > 400:
        raise InvalidPeriod("a period may span at most 400 days", field="end")
    return first, last


def period_documents(start: datetime.date, end: datetime.date) -> list[InvoiceDocument]:
    """The latest signed version of each invoice and credit note issued in the period."""
    return list(
        InvoiceDocument.objects.current()
        .filter(invoice__issue_date__gte=start, invoice__issue_date__lte=end)
        .select_related("invoice", "invoice__credited_invoice")
        .order_by("invoice__issue_date", "invoice__display_number")
    )


def _amount(minor: int, currency: str) -> str:
    return str(Money(minor, currency).as_decimal())


def manifest_rows(documents: list[InvoiceDocument]) -> list[dict[str, Any]]:
    rows = []
    for document in documents:
        invoice = document.invoice
        rows.append(
            {
                "file": f"documents/{document.filename}",
                "number": invoice.display_number,
                "kind": invoice.kind,
                "credits": invoice.credited_invoice.display_number
                if invoice.credited_invoice
                else "",
                "customer": invoice.buyer_snapshot.get("name", ""),
                "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else "",
                "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
                "currency": invoice.currency,
                "net_total": _amount(invoice.net_total, invoice.currency),
                "vat_total": _amount(invoice.vat_total, invoice.currency),
                "gross_total": _amount(invoice.gross_total, invoice.currency),
                "vat_per_rate": [
                    {
                        "category": group["category"],
                        "rate": str(group["rate"]),
                        "taxable": _amount(int(group["taxable_amount"]), invoice.currency),
                        "vat": _amount(int(group["vat_amount"]), invoice.currency),
                    }
                    for group in invoice.vat_breakdown
                ],
                "version": document.version,
                "sha256": document.sha256,
            }
        )
    return rows


def sign_detached(data: bytes, identity: SigningIdentity) -> bytes:
    """A detached CMS (PKCS#7) signature of ``data`` in DER, with the signing certificate."""
    return (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(data)
        .add_signer(identity.certificate, identity.private_key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )
    )


def build_period_export(*, start: Any, end: Any) -> PeriodExport:
    """The ZIP (bytes) of the period, with its signed manifest."""
    first, last = parse_period(start, end)
    identity = load_identity()
    documents = period_documents(first, last)
    rows = manifest_rows(documents)
    manifest = {
        "period": {"start": first.isoformat(), "end": last.isoformat()},
        "seller": documents[0].invoice.seller_snapshot.get("legal_name", "") if documents else "",
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "signing_certificate_sha256": identity.fingerprint,
        "documents": rows,
    }
    manifest_json = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
    csv_buffer = io.StringIO()
    writer = csv.DictWriter(csv_buffer, fieldnames=MANIFEST_FIELDS)
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["vat_per_rate"] = "; ".join(
            f"{g['category']} {g['rate']}%: {g['taxable']} / {g['vat']}"
            for g in row["vat_per_rate"]
        )
        writer.writerow(flat)
    sums = "".join(f"{row['sha256']}  {row['file']}\n" for row in rows)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for document, row in zip(documents, rows, strict=True):
            # PDFs are already compressed: store them as they are, byte for byte.
            archive.writestr(row["file"], bytes(document.content), zipfile.ZIP_STORED)
        archive.writestr("manifest.json", manifest_json)
        archive.writestr("manifest.csv", csv_buffer.getvalue().encode("utf-8"))
        archive.writestr("manifest.sha256", sums.encode("ascii"))
        archive.writestr("manifest.json.p7s", sign_detached(manifest_json, identity))
        archive.writestr("signing-certificate.pem", identity.certificate_pem.encode("ascii"))
        archive.writestr("README.txt", (__doc__ or "").encode("utf-8"))
    content = buffer.getvalue()
    return PeriodExport(
        start=first,
        end=last,
        count=len(rows),
        content=content,
        manifest_sha256=hashlib.sha256(manifest_json).hexdigest(),
        zip_sha256=hashlib.sha256(content).hexdigest(),
    )
