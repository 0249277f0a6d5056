"""URL wiring: no logic lives here."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    # Until the customer portal exists, the front door is the staff login.
    path("", RedirectView.as_view(pattern_name="admin:login", permanent=False)),
    path("admin/", admin.site.urls),
    path("payments/", include("payments.urls")),
    path("account/", include("security.urls")),
    path("webauthn/", include("security.webauthn_urls")),
    path("documents/", include("billing.documents.urls")),
    path("l/", include("billing.delivery.urls")),
]
