from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    """Invoice delivery: PGP/MIME email or single-use portal links, with attempts recorded."""

    name = "billing.delivery"
    label = "delivery"
    verbose_name = "Invoice delivery"
