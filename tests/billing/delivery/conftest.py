"""Delivery tests: a real SMTP server on 127.0.0.1, fresh GnuPG homes, the signing key."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gnupg
import pytest
from aiosmtpd.controller import Controller

from billing.delivery import pgp
from tests.billing.documents.conftest import (  # noqa: F401 - fixtures
    PASSPHRASE,
    alice_document,
    sign_invoice,
    signing_key,
    signing_key_dir,
)

CUSTOMER_PASSPHRASE = "alice's own passphrase"


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope sender, recipients, raw bytes) per message."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@dataclass
class SlowMailbox(Mailbox):
    """A mail server that takes ``delay`` seconds to answer each message's DATA (as a busy
    server does); ``data_started`` notes when each DATA began (time.monotonic())."""

    delay: float = 1.0
    data_started: list[float] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_started.append(time.monotonic())
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on a free port; Django's SMTP backend points at it."""
    yield from _serve(Mailbox(), settings)


@pytest.fixture
def slow_smtp_server(settings: Any, request: pytest.FixtureRequest) -> Iterator[SlowMailbox]:
    """A real SMTP server that answers each DATA after ``delay`` seconds (indirect parameter,
    default 1 s)."""
    yield from _serve(SlowMailbox(delay=getattr(request, "param", 1.0)), settings)


def _serve(mailbox: Any, settings: Any) -> Iterator[Any]:
    port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def gnupg_home(settings: Any) -> Iterator[Path]:
    """A fresh app GnuPG home for the test (short path for gpg-agent's socket)."""
    home = Path(tempfile.mkdtemp(prefix="ta", dir="/tmp"))
    home.chmod(0o700)
    settings.DELIVERY_GNUPGHOME = home
    settings.DOCUMENTS_CREATE_KEYS = True
    try:
        yield home
    finally:
        pgp.kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class Keyholder:
    """A customer's own GnuPG home with their key pair, as on their computer."""

    gpg: gnupg.GPG
    home: Path
    fingerprint: str
    public_key: str


@pytest.fixture
def alice_keyholder() -> Iterator[Keyholder]:
    home = Path(tempfile.mkdtemp(prefix="tc", dir="/tmp"))
    home.chmod(0o700)
    gpg = gnupg.GPG(gnupghome=str(home))
    spec = gpg.gen_key_input(
        key_type="EDDSA",
        key_curve="ed25519",
        key_usage="sign",
        subkey_type="ECDH",
        subkey_curve="cv25519",
        subkey_usage="encrypt",
        name_real="Alice Konsult AB",
        name_email="invoices@alice.example",
        expire_date="1y",
        passphrase=CUSTOMER_PASSPHRASE,
    )
    key = gpg.gen_key(spec)
    assert key.fingerprint
    # gpg-agent remembers the passphrase it just used: a test that reused that agent
    # could decrypt with a wrong passphrase. A fresh agent remembers nothing.
    pgp.kill_agent(home)
    try:
        yield Keyholder(gpg, home, str(key.fingerprint), str(gpg.export_keys(key.fingerprint)))
    finally:
        pgp.kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)


def assert_nothing_financial(readable: str, invoice: Any) -> None:
    """What a plain (unencrypted) notification may never show: amounts, the seller's
    account details, the OCR reference. ``readable`` is its subject and body, with the
    random link token masked."""
    seller = invoice.seller_snapshot
    for secret in [
        str(invoice.gross.as_decimal()),
        invoice.gross.format("sv"),
        invoice.gross.format("en"),
        seller["iban"],
        seller["bankgiro"],
        invoice.ocr_reference,
    ]:
        assert secret not in readable, secret
    assert not re.search(rf"\b{invoice.net_total // 100}\b", readable), "the net amount"
    assert not re.search(r"\d+[.,]\d{2}", readable), "an amount in the body"


__all__ = ["PASSPHRASE"]
