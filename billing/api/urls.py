"""Billing's API routes, under ``/api/v1/`` (config/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from billing.api.views import CustomerViewSet, InvoiceVerifyView, InvoiceViewSet

router = SimpleRouter(trailing_slash="")
router.register("customers", CustomerViewSet, basename="api-customer")
router.register("invoices", InvoiceViewSet, basename="api-invoice")

urlpatterns = [
    path("invoices/verify", InvoiceVerifyView.as_view(), name="api-invoice-verify"),
    *router.urls,
]
