"""URL wiring: no logic lives here."""

from django.contrib import admin
from django.urls import include, path

from billing.portal.views import home, set_language
from security.api.urls import not_found_patterns

urlpatterns = [
    # The front door: customers to the portal, staff to the admin.
    path("", home, name="home"),
    path("language/", set_language, name="set_language"),
    path("portal/privacy/", include("billing.privacy.urls")),
    path("portal/", include("billing.portal.urls")),
    path("portal/", include("payments.portal.urls")),
    path("admin/", admin.site.urls),
    path("payments/", include("payments.urls")),
    path("account/", include("security.urls")),
    path("webauthn/", include("security.webauthn_urls")),
    path("documents/", include("billing.documents.urls")),
    path("l/", include("billing.delivery.urls")),
    # OAuth 2.0 / OpenID Connect (django-oauth-toolkit's views we serve, security/api/).
    path("oauth/", include("security.api.oauth_urls", namespace="oauth2_provider")),
    # The API: each app's endpoints, then the catch-all answering unknown paths in the
    # API's error shape (docs/api.md).
    path("api/v1/", include("billing.api.urls")),
    path("api/v1/", include("payments.api.urls")),
    path("api/", include("security.api.urls", namespace="api")),
    path("api/", include(("billing.webhooks.api", "webhooks_api"))),
    path("api/", include(not_found_patterns)),
]

# Error pages in the customer shell (templates/400.html ... 500.html).
handler400 = "billing.portal.shell.bad_request"
handler403 = "billing.portal.shell.permission_denied"
handler404 = "billing.portal.shell.page_not_found"
handler500 = "billing.portal.shell.server_error"
