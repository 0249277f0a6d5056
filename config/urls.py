"""URL wiring: no logic lives here."""

from django.contrib import admin
from django.urls import include, path

from billing.portal.views import home

urlpatterns = [
    # The front door: customers to the portal, staff to the admin.
    path("", home, name="home"),
    path("portal/", include("billing.portal.urls")),
    path("portal/", include("payments.portal_urls")),
    path("admin/", admin.site.urls),
    path("payments/", include("payments.urls")),
    path("account/", include("security.urls")),
    path("webauthn/", include("security.webauthn_urls")),
    path("documents/", include("billing.documents.urls")),
    path("l/", include("billing.delivery.urls")),
]
