"""Payments' API routes, under ``/api/v1/`` (config/urls.py)."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from payments.api.views import EntryKeyView, PaymentMethodViewSet, PaymentViewSet

router = SimpleRouter(trailing_slash="")
router.register("payments", PaymentViewSet, basename="api-payment")
router.register("payment-methods", PaymentMethodViewSet, basename="api-payment-method")

urlpatterns = [
    path("payment-methods/entry-key", EntryKeyView.as_view(), name="api-card-entry-key"),
    *router.urls,
]
