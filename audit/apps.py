from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _register_schedule(sender: AppConfig, **kwargs: Any) -> None:
    from audit.incidents.schedules import register_incident_schedules
    from audit.reviews.services import register_review_schedule
    from audit.services import register_checkpoint_schedule

    register_checkpoint_schedule()
    if kwargs.get("using", "default") == "default":
        from db.dialect import is_postgresql

        # The SQLite demo is not backed up by these jobs (docs/decisions.md 54).
        if is_postgresql():
            from audit.backups.services import register_backup_schedules

            register_backup_schedules()
    register_incident_schedules()
    register_review_schedule()


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from audit import signals
        from audit.incidents import signals as incident_signals

        signals.connect()
        incident_signals.connect()
        # The governance pages join the audit app's admin here, not in audit/admin.py:
        # billing and security import audit.admin (its ReadOnlyAdmin), and must not reach
        # the payments code the incident pages call.
        from audit.incidents import admin as incidents_admin
        from audit.reviews import admin as reviews_admin

        del incidents_admin, reviews_admin
        post_migrate.connect(_register_schedule, sender=self, dispatch_uid="audit.schedule")
