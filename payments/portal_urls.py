"""The portal's paying pages (mounted at /portal/ beside billing.portal.urls)."""

from django.urls import path

from payments import portal_views

app_name = "portal_pay"

urlpatterns = [
    path("invoices/<int:pk>/pay/", portal_views.pay, name="pay"),
    path("payments/<int:pk>/", portal_views.payment, name="payment"),
    path("refunds/<int:pk>/", portal_views.refund, name="refund"),
    path("cards/", portal_views.cards, name="cards"),
    path("cards/<int:pk>/delete/", portal_views.delete_card, name="delete_card"),
    path("security/", portal_views.security_page, name="security"),
]
