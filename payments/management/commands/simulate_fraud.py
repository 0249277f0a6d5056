"""Simulated card payments with fraud scenarios: as a CSV (docs/fraud.md) or into the database."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payments.fraud.features.offline import write_csv
from payments.fraud.simulator import SimulationSettings, simulate
from payments.fraud.simulator_db import load_simulation


class Command(BaseCommand):
    help = "Simulate labelled card payments (fixed seed); write them as a CSV or load them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--csv", type=Path, help="write the payments to this CSV file")
        parser.add_argument("--load", action="store_true", help="write them into the database")
        parser.add_argument("--seed", type=int, default=SimulationSettings.seed)
        parser.add_argument("--customers", type=int, default=SimulationSettings.customers)
        parser.add_argument("--weeks", type=int, default=SimulationSettings.weeks)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["csv"] is None and not options["load"]:
            raise CommandError("say where the payments go: --csv FILE, --load or both")
        for name in ("customers", "weeks"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be at least 1")
        settings = dataclasses.replace(
            SimulationSettings(),
            seed=options["seed"],
            customers=options["customers"],
            weeks=options["weeks"],
        )
        payments = simulate(settings)
        fraud = sum(1 for past in payments if past.label == "fraud")
        self.stdout.write(f"simulated {len(payments):,} card payments ({fraud:,} fraud)")
        if options["csv"] is not None:
            with options["csv"].open("w", encoding="utf-8", newline="") as stream:
                write_csv(payments, stream)
            self.stdout.write(f"wrote {options['csv']}")
        if options["load"]:
            load_simulation(payments)
            self.stdout.write("loaded into the database")
