"""Recompute the audit chain and check its checkpoints; exit non-zero on the first problem.

The outcome is kept like every verification's (``audit.verification.verify_and_record``):
a ``ChainVerification`` row (source "command") and an ``audit.chain_verified`` event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit import SYSTEM
from audit.models import ChainVerification
from audit.verification import verify_and_record
from audit.verify import read_checkpoint_file


class Command(BaseCommand):
    help = "Verify the audit log: hashes, links, sequence and checkpoint signatures."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--checkpoint-file",
            type=Path,
            metavar="FILE",
            help="also check a checkpoint exported with `audit_checkpoint --export`",
        )
        parser.add_argument(
            "--progress-every",
            type=int,
            default=100_000,
            metavar="N",
            help="report progress on stderr every N events (default 100000)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint_file = None
        if options["checkpoint_file"] is not None:
            try:
                checkpoint_file = read_checkpoint_file(options["checkpoint_file"])
            except ValueError as exc:
                raise CommandError(f"--checkpoint-file: {exc}") from exc
        if options["progress_every"] < 1:
            raise CommandError("--progress-every must be at least 1")
        _verification, result = verify_and_record(
            by=SYSTEM,
            source=ChainVerification.Source.COMMAND,
            label="manage.py verify_audit",
            checkpoint_file=checkpoint_file,
            progress=lambda count: self.stderr.write(f"… {count:,} events verified"),
            progress_every=options["progress_every"],
        )
        exported = ", the exported checkpoint" if result.exported_checkpoint else ""
        first = result.first_problem
        if first is None:
            self.stdout.write(
                f"OK: {result.events:,} events (#1…#{result.last_seq}), "
                f"{result.checkpoints} checkpoints{exported} verified; head {result.head_hash}"
            )
            return
        for problem in result.problems[1:10]:
            self.stderr.write(f"also: {problem}")
        # A broken chain is an incident: opened now, the security officers emailed.
        from audit.incidents.detectors import report_broken_chain

        incident = report_broken_chain(result)
        if incident is not None:
            self.stderr.write(f"incident INC-{incident.pk} is open for the security officers")
        raise CommandError(
            f"FAILED: first broken event #{first.seq}: {first.kind}: {first.message} "
            f"({len(result.problems)} problem(s); {result.events:,} events read)"
        )
