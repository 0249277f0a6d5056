from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A failed backup or restore test is a security alert (audit sits below security).
        from audit.backups.probes import register_alert
        from security import signals  # noqa: F401 - connects the framework-event receivers
        from security.api import schema  # noqa: F401 - the API's OpenAPI security scheme
        from security.services.alerts import raise_security_alert

        register_alert(raise_security_alert)
