"""manage.py seed_demo: fill the demo installation (idempotent) and print its logins.

It lives in payments, the app on top: billing's demo (company, customers, invoices in every
state, logins) first, then payments' (bank transfers for three months, today's card
payments, one held for review and one unknown), then the fraud engine's first live model.
Billing never imports payments."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.delivery.pgp import company_key_fingerprint
from billing.demo import format_logins, seed_demo
from billing.documents.keys import load_identity
from payments.demo import sample_camt054_for_demo, seed_payments_demo
from payments.fraud.demo import seed_fraud_demo, seed_fraud_rules_demo
from security.services.demo_clients import ensure_demo_api_clients, format_demo_clients


class Command(BaseCommand):
    help = (
        "Create the demo company, customers, invoices in every state and one login per role. "
        "Safe to run again: only what is missing is made. Demo only, never in production."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--write-sample",
            type=Path,
            metavar="FILE",
            help="also write a camt.054 file for this demo's open invoices (a matched, a"
            " partial and an unknown line) to FILE, for the operator to import",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo refuses to run with TILLIT_MODE=production: it creates logins"
                " with a published password."
            )
        logins = seed_demo()
        self.stdout.write("Billing demo in place; payments (three months of bank transfers)…")
        payments = seed_payments_demo()
        self.stdout.write(
            f"Imported {payments.history_files} bank file(s) of history; today's card payments: "
            + ", ".join(f"{k} {v}" for k, v in payments.card_payments.items())
        )
        # After today's card payments: four quick attempts with three cards look like card
        # testing to a model, and the demo shows each outcome (declined, unknown) as it is.
        model = seed_fraud_demo(progress=self.stdout.write)
        if model is not None:
            figures = model.metrics
            self.stdout.write(
                f"Fraud model version {model.pk} ({model.algorithm}) is live: average precision"
                f" {figures['average_precision']:.3f} on its holdout week"
            )
        if made := seed_fraud_rules_demo():
            self.stdout.write(f"Fraud rules and lists: {made} made by the demo's fraud analyst")
        if options.get("write_sample"):
            options["write_sample"].write_bytes(sample_camt054_for_demo())
            self.stdout.write(f"Sample bank file written to {options['write_sample']}")
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))
        self.stdout.write(format_logins(logins))
        self.stdout.write(
            format_demo_clients(ensure_demo_api_clients(), settings.DELIVERY_PORTAL_URL)
        )
        # The keys customers check documents and emails against (the portal's security
        # page shows their fingerprints): made now rather than on first use.
        self.stdout.write(
            f"Document signing certificate (SHA-256): {load_identity().fingerprint}\n"
            f"Company PGP key: {company_key_fingerprint()}"
        )
