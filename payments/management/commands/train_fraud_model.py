"""Train a fraud model version on labelled payments (also scheduled weekly); docs/fraud.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.exceptions import PaymentsError
from payments.fraud.features.offline import read_csv
from payments.fraud.training import train_model_version
from payments.fraud.training.dataset import payments_from_database


class Command(BaseCommand):
    help = (
        "Train the risk model on the database's labelled card payments, or on a CSV of past"
        " payments (docs/fraud.md), and store it as a new version (a fraud analyst promotes it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--csv", type=Path, help="past payments with a label column")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--top-k", type=int, default=100, help="analysts' daily capacity")
        parser.add_argument("--test-days", type=int, default=7)
        parser.add_argument("--gap-days", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        say = self.stdout.write
        try:
            if options["csv"] is not None:
                say(f"reading {options['csv']}")
                with options["csv"].open(encoding="utf-8", newline="") as stream:
                    payments: Any = read_csv(stream)
                say(f"  {len(payments):,} past payments")
                source = f"csv:{options['csv'].name}"
            else:
                payments, source = payments_from_database(), "database"
            version = train_model_version(
                payments,
                source=source,
                seed=options["seed"],
                top_k=options["top_k"],
                test_days=options["test_days"],
                gap_days=options["gap_days"],
                progress=say,
            )
        except (PaymentsError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        metrics = version.metrics
        say(
            f"stored version {version.pk} ({version.algorithm}): AP"
            f" {metrics['average_precision']:.3f}, ROC AUC {metrics['roc_auc']:.3f}, false"
            f" blocks {metrics['false_block_rate']:.4%} at score {metrics['block_score']};"
            " not live until a fraud analyst promotes it"
        )
