from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        from audit.display import set_details_formatter
        from billing.admin_format import format_details

        # The audit log's admin writes amounts as every other admin page does.
        set_details_formatter(format_details)
