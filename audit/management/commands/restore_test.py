"""Restore the newest backup into the scratch database and check it (what the schedule runs)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import SYSTEM
from audit.backups.services import run_restore_test
from audit.exceptions import BackupError


class Command(BaseCommand):
    help = "Restore-test the newest backup (BACKUP_RESTORE_TEST_DATABASE); exit 1 on failure."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            test = run_restore_test(by=SYSTEM, progress=self.stderr.write)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        for check in test.checks:
            mark = "ok  " if check["ok"] else "FAIL"
            self.stdout.write(f"{mark} {check['name']}: {check['detail']}")
        if not test.passed:
            raise CommandError(f"restore test of {test.backup_name or '—'} FAILED")
        self.stdout.write(f"OK: restore test of {test.backup_name} passed ({test.keys_source})")
