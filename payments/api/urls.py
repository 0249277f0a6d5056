"""Payments' API routes, under ``/api/v1/`` (config/urls.py)."""

from rest_framework.routers import SimpleRouter

from payments.api.views import PaymentMethodViewSet, PaymentViewSet

router = SimpleRouter()
router.register("payments", PaymentViewSet, basename="api-payment")
router.register("payment-methods", PaymentMethodViewSet, basename="api-payment-method")

urlpatterns = router.urls
