from django.apps import AppConfig
from django.db.models.signals import post_migrate


class PrivacyConfig(AppConfig):
    """Retention, data export, erasure and the privacy policy's versions."""

    name = "billing.privacy"
    label = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from billing.privacy.services import register_privacy_schedules

        post_migrate.connect(
            register_privacy_schedules, sender=self, dispatch_uid="billing.privacy.schedules"
        )
