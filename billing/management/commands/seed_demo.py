"""manage.py seed_demo: fill the demo installation (idempotent) and print its logins."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.delivery.pgp import company_key_fingerprint
from billing.demo import format_logins, seed_demo
from billing.documents.keys import load_identity


class Command(BaseCommand):
    help = (
        "Create the demo company, customers, invoices in every state and one login per role. "
        "Safe to run again: only what is missing is made. Demo only, never in production."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo refuses to run with TILLIT_MODE=production: it creates logins"
                " with a published password."
            )
        logins = seed_demo()
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
        self.stdout.write(format_logins(logins))
        # The keys customers check documents and emails against (the portal's security
        # page shows their fingerprints): made now rather than on first use.
        self.stdout.write(
            f"Document signing certificate (SHA-256): {load_identity().fingerprint}\n"
            f"Company PGP key: {company_key_fingerprint()}"
        )
