"""The portal's paying pages (mounted at /portal/ beside billing.portal.urls)."""

from django.urls import path

from payments.portal import views

app_name = "portal_pay"

urlpatterns = [
    path("invoices/<int:pk>/pay/", views.pay, name="pay"),
    path("payments/<int:pk>/", views.payment, name="payment"),
    path("refunds/<int:pk>/", views.refund, name="refund"),
    path("cards/", views.cards, name="cards"),
    path("cards/<int:pk>/delete/", views.delete_card, name="delete_card"),
    path("security/", views.security_page, name="security"),
]
