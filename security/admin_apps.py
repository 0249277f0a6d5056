"""The Django admin app, served by security's site (a verified second factor required)."""

from django.contrib.admin.apps import AdminConfig


class TillitAdminConfig(AdminConfig):
    default_site = "security.admin_site.TillitAdminSite"
