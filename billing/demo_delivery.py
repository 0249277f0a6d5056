"""The demo's failed delivery: an invoice e-mail that could not go out, for the clerk.

A customer's PGP key is on file when the invoice is queued (so the e-mail is to be signed
and encrypted to it), then the key is removed before it is sent: every attempt fails with
"the customer's PGP key is gone or expired" until the delivery gives up. The clerk sees it
on the dashboard and on the invoice, with "Retry now" (a retry sends it as a portal link).
Everything goes through the delivery services, as it would in production.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import gnupg
from django.conf import settings

from audit import SYSTEM
from billing import services
from billing.delivery import pgp
from billing.delivery import services as delivery_services
from billing.delivery.models import Delivery
from billing.models import Customer, Invoice

NOTE = "Demo invoice FD: its e-mail failed (the customer's PGP key was removed)."


def seed_failed_delivery(customer: Customer) -> Delivery | None:
    """Make the demo's failed delivery if it is missing; None when it is there already."""
    invoice = Invoice.objects.invoices().filter(notes=NOTE).first()
    if invoice is not None and invoice.deliveries.filter(status=Delivery.Status.FAILED).exists():
        return None
    if invoice is None:
        draft = services.create_draft_invoice(
            customer=customer,
            by=SYSTEM,
            lines=[
                {
                    "description": "Workshop, half day",
                    "quantity": "1",
                    "unit_price": "6400.00",
                    "vat_category": "S",
                    "vat_rate": "25",
                }
            ],
            notes=NOTE,
        )
        invoice = services.finalize_invoice(draft, by=SYSTEM)
    delivery_services.set_customer_pgp_key(customer, armored_key=_public_key(customer), by=SYSTEM)
    delivery = delivery_services.queue_delivery(invoice, by=SYSTEM)
    delivery_services.remove_customer_pgp_key(customer, by=SYSTEM)
    for _attempt in range(int(settings.DELIVERY_MAX_ATTEMPTS)):
        delivery = delivery_services.attempt_delivery(delivery.pk, by=SYSTEM)
        if delivery.status != Delivery.Status.QUEUED:
            break
    return delivery


def _public_key(customer: Customer) -> str:
    """A fresh key pair of the customer's, made in a throwaway GnuPG home; its public half."""
    home = Path(tempfile.mkdtemp(prefix="tdemo", dir="/tmp"))  # gpg-agent's socket: short
    home.chmod(0o700)
    try:
        gpg = gnupg.GPG(gnupghome=str(home))
        spec = gpg.gen_key_input(
            key_type="EDDSA",
            key_curve="ed25519",
            key_usage="sign",
            subkey_type="ECDH",
            subkey_curve="cv25519",
            subkey_usage="encrypt",
            name_real=customer.name,
            name_email=customer.email,
            expire_date="1y",
            no_protection=True,
        )
        key = gpg.gen_key(spec)
        return str(gpg.export_keys(str(key.fingerprint)))
    finally:
        pgp.kill_agent(home)
        shutil.rmtree(home, ignore_errors=True)
