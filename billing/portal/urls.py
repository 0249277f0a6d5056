"""Portal URLs (mounted at /portal/); the paying pages are payments.portal.urls."""

from django.urls import path

from billing.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.invoice_list, name="invoices"),
    path("invoices/<int:pk>/", views.invoice_detail, name="invoice"),
    path("invoices/<int:pk>/receipt/", views.receipt, name="receipt"),
    path("account/", views.account, name="account"),
]
