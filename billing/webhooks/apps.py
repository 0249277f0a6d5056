from django.apps import AppConfig
from django.db.models.signals import post_migrate


class WebhooksConfig(AppConfig):
    """Signed webhooks and the event log: events of invoices and payments, POSTed to the
    endpoints staff register, with every attempt recorded."""

    name = "billing.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from billing.webhooks.schedules import register_webhook_schedules

        post_migrate.connect(
            register_webhook_schedules, sender=self, dispatch_uid="billing.webhooks.schedules"
        )
