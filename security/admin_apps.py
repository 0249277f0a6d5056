"""The Django admin app, served by security's site (a verified second factor required)."""

from django.contrib.admin.apps import AdminConfig
from django.utils.module_loading import autodiscover_modules


class TillitAdminConfig(AdminConfig):
    default_site = "security.admin_site.TillitAdminSite"

    def ready(self) -> None:
        super().ready()
        # Each app's dashboard panels (security.admin_dashboard), found as admin.py modules are.
        autodiscover_modules("dashboard")
