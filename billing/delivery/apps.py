from django.apps import AppConfig
from django.db.models.signals import post_migrate


class DeliveryConfig(AppConfig):
    """Invoice delivery: PGP/MIME email or single-use portal links, with attempts recorded."""

    name = "billing.delivery"
    label = "delivery"
    verbose_name = "Invoice delivery"

    def ready(self) -> None:
        from billing.delivery.schedules import register_delivery_schedules

        post_migrate.connect(
            register_delivery_schedules, sender=self, dispatch_uid="billing.delivery.schedules"
        )
