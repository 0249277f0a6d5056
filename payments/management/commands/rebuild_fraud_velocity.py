"""Build the fraud engine's velocity counters from the card payments (an upgrade)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from audit import SYSTEM
from payments.fraud.features.velocity import rebuild_velocity


class Command(BaseCommand):
    help = (
        "Rebuild the fraud engine's velocity counters (buckets, pairs, captured history) from"
        " the card payments, in one transaction: run it at an upgrade, before card payments"
        " are taken again (docs/fraud.md, 'Velocity counters')."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()

        def progress(message: str) -> None:
            self.stdout.write(f"  {message} ({time.perf_counter() - started:.1f} s)")

        written = rebuild_velocity(progress=progress, by=SYSTEM)
        self.stdout.write(
            f"rebuilt: {written['buckets']:,} buckets, {written['pairs']:,} pairs,"
            f" {written['customers']:,} customers in {time.perf_counter() - started:.1f} s"
        )
