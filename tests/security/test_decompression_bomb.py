"""Issue 17, item 7: a decompression bomb through the verify page.

A 1.46 MB PDF with 20 compressed 75 MB attachments grew a worker from 162 MB to 1.6 GB
in 14 s (the Factur-X extraction inflated every ``*.xml`` attachment, and any signed-in
customer can upload). Decompressed sizes and attachment counts are now bounded before
anything is read: a bomb is refused with a clear message, quickly, with no memory spike.
The bombs are made here, by hand, byte for byte.
"""

from __future__ import annotations

import time
import tracemalloc
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024
# Just under pypdf's own 75,000,000-byte cap, as the attacker's were.
ATTACHMENT_BYTES = 74_000_000


def pdf_with_attachments(names: list[str], inflated_size: int) -> bytes:
    """A one-page PDF whose attachments each inflate to ``inflated_size`` zero bytes."""
    packed = zlib.compress(b"\0" * inflated_size, 9)
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages = add(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    add(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>")
    entries = []
    for name in names:
        stream = add(
            b"<< /Type /EmbeddedFile /Subtype /text#2Fxml /Filter /FlateDecode /Length "
            + str(len(packed)).encode()
            + b" >>\nstream\n"
            + packed
            + b"\nendstream"
        )
        spec = add(
            b"<< /Type /Filespec /F ("
            + name.encode()
            + b") /UF ("
            + name.encode()
            + b") /EF << /F "
            + f"{stream} 0 R".encode()
            + b" >> >>"
        )
        entries.append(b"(" + name.encode() + b") " + f"{spec} 0 R".encode())
    tree = add(b"<< /Names [" + b" ".join(entries) + b"] >>")
    objects[catalog - 1] = (
        b"<< /Type /Catalog /Pages "
        + f"{pages} 0 R".encode()
        + b" /Names << /EmbeddedFiles "
        + f"{tree} 0 R".encode()
        + b" >> >>"
    )
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root {catalog} 0 R >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)


@pytest.fixture
def customer_client(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


def _upload(client: Client, data: bytes) -> tuple[int, str, float, int]:
    """POST the file to the verify page twice: timed, then with the memory traced
    (tracing slows every allocation, so it is not timed); the answer, the time and the
    peak of memory allocated while answering."""

    def post() -> tuple[int, str]:
        upload = SimpleUploadedFile("invoice.pdf", data, content_type="application/pdf")
        response = client.post(reverse("documents:verify"), {"pdf": upload})
        return response.status_code, response.content.decode()

    started = time.monotonic()
    status, page = post()
    elapsed = time.monotonic() - started
    tracemalloc.start()
    try:
        assert post()[0] == status
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return status, page, elapsed, peak


def test_the_attackers_bomb_is_refused_quickly_without_a_memory_spike(
    customer_client: Client,
) -> None:
    names = ["factur-x.xml", *(f"part-{n:02d}.xml" for n in range(19))]
    bomb = pdf_with_attachments(names, ATTACHMENT_BYTES)
    assert len(bomb) < 2 * MiB  # 20 x 74 MB inside 1.4 MB

    status, page, elapsed, peak = _upload(customer_client, bomb)

    assert status == 400
    assert 'id="error-pdf"' in page and "bilagor" in page  # Alice reads Swedish
    assert elapsed < 10, f"took {elapsed:.1f} s"
    assert peak < 64 * MiB, f"peak {peak / MiB:.0f} MiB"
    events = audit_events("invoice.document_verified")
    assert [event.details["outcome"] for event in events] == ["refused", "refused"]


def test_one_inflating_invoice_xml_is_refused_by_its_size(customer_client: Client) -> None:
    bomb = pdf_with_attachments(["factur-x.xml"], ATTACHMENT_BYTES)

    status, page, elapsed, peak = _upload(customer_client, bomb)

    assert status == 400
    assert "packas upp till mer än" in page
    assert elapsed < 10 and peak < 64 * MiB, (elapsed, peak / MiB)


def test_a_small_harmless_attachment_is_read_as_usual(customer_client: Client) -> None:
    ordinary = pdf_with_attachments(["factur-x.xml"], 2_000)

    status, page, _elapsed, _peak = _upload(customer_client, ordinary)

    assert status == 200
    assert "har ingen digital signatur" in page
