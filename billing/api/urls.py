"""Billing's API routes, under ``/api/v1/`` (config/urls.py)."""

from rest_framework.routers import SimpleRouter

from billing.api.views import CustomerViewSet, InvoiceViewSet

router = SimpleRouter()
router.register("customers", CustomerViewSet, basename="api-customer")
router.register("invoices", InvoiceViewSet, basename="api-invoice")

urlpatterns = router.urls
