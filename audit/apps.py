from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _register_schedule(sender: AppConfig, **kwargs: Any) -> None:
    from audit.services import register_checkpoint_schedule

    register_checkpoint_schedule()
    if kwargs.get("using", "default") == "default":
        from db.dialect import is_postgresql

        # The SQLite demo is not backed up by these jobs (docs/decisions.md 54).
        if is_postgresql():
            from audit.backups.services import register_backup_schedules

            register_backup_schedules()


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit import signals

        signals.connect()
        post_migrate.connect(_register_schedule, sender=self, dispatch_uid="audit.schedule")
