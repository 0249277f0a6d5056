"""Create the company's PGP key in DELIVERY_GNUPGHOME (protected by DOCUMENTS_KEY_PASSPHRASE)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from billing.delivery import pgp
from billing.delivery.exceptions import PgpError
from billing.selectors import get_company_profile


class Command(BaseCommand):
    help = "Create the company's PGP key (Ed25519 + Curve25519) for signed, encrypted email."

    def handle(self, *args: Any, **options: Any) -> None:
        profile = get_company_profile()
        try:
            fingerprint = pgp.create_company_key(name=profile.legal_name if profile else "Tillit")
        except PgpError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Company PGP key created. Fingerprint: {fingerprint}")
        self.stdout.write(pgp.company_public_key().armored.rstrip())
