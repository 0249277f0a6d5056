"""Create the document-signing key + self-signed certificate, or import a CA's PKCS#12."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.documents import keys
from billing.documents.exceptions import SigningKeyError
from billing.selectors import get_company_profile


class Command(BaseCommand):
    help = (
        "Create the invoice-signing key (ECDSA P-256, self-signed certificate, PKCS#12 under "
        "DOCUMENTS_SIGNING_KEY_FILE, encrypted with DOCUMENTS_KEY_PASSPHRASE), or --import one."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--import",
            dest="source",
            type=Path,
            metavar="P12",
            help="import this PKCS#12 from a CA (its passphrase from the environment variable "
            "named by --source-passphrase-env)",
        )
        parser.add_argument(
            "--source-passphrase-env",
            default="SIGNING_P12_PASSPHRASE",
            metavar="VAR",
            help="environment variable holding the imported file's passphrase",
        )
        parser.add_argument("--common-name", default="", help="certificate CN (demo key)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["source"] is not None:
                secret = os.environ.get(options["source_passphrase_env"], "")
                path = keys.import_pkcs12(options["source"], source_passphrase=secret.encode())
            else:
                profile = get_company_profile()
                organisation = profile.legal_name if profile else "Tillit demo"
                path = keys.create_key_file(
                    common_name=options["common_name"] or f"{organisation} invoices",
                    organisation=organisation,
                    country=profile.country if profile else "SE",
                )
            identity = keys.load_identity()
        except SigningKeyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Signing key written to {path} (mode 0600, passphrase-protected).")
        self.stdout.write(f"subject:     {identity.subject}")
        self.stdout.write(f"valid until: {identity.not_valid_after:%Y-%m-%d}")
        self.stdout.write(f"certificate SHA-256 fingerprint: {identity.fingerprint}")
        self.stdout.write(identity.certificate_pem.rstrip())
