from typing import Any

from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    verbose_name = "Security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from security import signals  # noqa: F401 - connects the framework-event receivers

        connection_created.connect(_prepare_hot_statements, dispatch_uid="security.prepare")


def _prepare_hot_statements(sender: object, connection: Any, **kwargs: object) -> None:
    """With server-side binding, a new PostgreSQL connection prepares only the statements
    of ``security.compiled`` (see ``preparing_cursor_class``)."""
    if connection.vendor == "postgresql" and connection.settings_dict["OPTIONS"].get(
        "server_side_binding"
    ):
        from security.compiled import preparing_cursor_class

        connection.connection.cursor_factory = preparing_cursor_class()
