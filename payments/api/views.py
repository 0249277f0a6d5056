"""Payments' API: payments (pay with a saved card, list, read, refund) and saved cards
(the card-entry key, tokenize from the browser's ciphertext, list, read, delete).

Thin, as the portal's paying pages: parse, select with the access check
(``payments.selectors``: another customer's id is a 404), one call of the same service
the portal and the admin call (``payments.services``, ``payments.saved_cards``), render.
"""

from __future__ import annotations

import base64
from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.caller import actor_of, is_integration, scope_of
from billing.api.schema import READ, WRITE, errors
from billing.money import Money
from billing.selectors import get_invoice_in_scope
from payments import services
from payments.api import serializers as api
from payments.api.errors import register_payments_errors
from payments.exceptions import PaymentsError, RefundRefused, SavedCardRefused
from payments.models import Payment
from payments.saved_cards import delete_saved_card, save_card
from payments.selectors import (
    get_payment_in_scope,
    get_saved_card_in_scope,
    payments_in_scope,
    saved_cards_in_scope,
)
from payments.vault.entry import EncryptedCard, issue_entry_nonce
from payments.vault.services import card_entry_key
from security.api.errors import ApiError, insufficient_user_authentication
from security.api.permissions import Scopes
from security.api.principal import principal_of
from security.api.views import ApiView, IdempotentMixin

register_payments_errors()

IDEMPOTENCY_HEADER = "Idempotency-Key"
# A refusal about who acts (a permission, a second factor, a card that is not theirs) is a
# 403 (404 for a card); one about the input (an amount, a reason) a 400.
_WHO = {"user": 403, "step_up": 403, "keep_card": 403, "card": 404}


def refused(exc: PaymentsError, *, code: str, request: Request | None = None) -> ApiError:
    """A service's refusal in the API's error shape, its status by the field it names. A
    step-up refused to a customer's token is 401 ``insufficient_user_authentication``
    (the customer confirms a second factor again through the app, decision 74); to an
    integration's, 403: no person stands behind it to confirm one."""
    if exc.field == "step_up" and request is not None and not is_integration(request):
        return insufficient_user_authentication(exc.message)
    status_code = _WHO.get(exc.field, 400)
    return ApiError(exc.message, status_code=status_code, code=code, field=exc.field)


def _body(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PaymentFilterSerializer(serializers.Serializer):
    """The list's filters (query parameters)."""

    invoice = serializers.IntegerField(min_value=1, required=False)
    status = serializers.ChoiceField(choices=Payment.Status.choices, required=False)


@extend_schema_view(
    list=extend_schema(
        summary="List payments",
        parameters=[PaymentFilterSerializer],
        responses={200: api.PaymentSerializer(many=True), **errors(400, *READ)},
    ),
    retrieve=extend_schema(
        summary="Read a payment", responses={200: api.PaymentSerializer, **errors(*READ)}
    ),
    create=extend_schema(
        summary="Pay an invoice with a saved card",
        description=(
            "Charges one of the invoice's customer's saved cards, never beyond the amount"
            " due. A declined card is a payment with status `failed` (201). The"
            " Idempotency-Key is also the payment's own key: a retry never charges twice."
        ),
        request=api.PaymentCreateSerializer,
        responses={201: api.PaymentSerializer, **errors(*WRITE, 503)},
    ),
    refunds=extend_schema(
        summary="Refund part or all of a payment (payments operators, with step-up)",
        request=api.RefundCreateSerializer,
        responses={201: api.RefundSerializer, **errors(*WRITE)},
    ),
)
class PaymentViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Card payments with a saved card; refunds (the payments operator's, with step-up)."""

    serializer_class = api.PaymentSerializer
    required_scopes = {"GET": ["payments:read"], "POST": ["payments:write"]}
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> Any:
        return payments_in_scope(scope_of(self.request))

    def list(self, request: Request) -> Response:
        filters = PaymentFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        found = self.get_queryset()
        for name, value in filters.validated_data.items():
            found = found.filter(**{"invoice_id" if name == "invoice" else name: value})
        page = self.paginate_queryset(found)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        payment = get_payment_in_scope(scope_of(request), _id(pk))
        return Response(self.get_serializer(payment).data)

    def create(self, request: Request) -> Response:
        body = _body(api.PaymentCreateSerializer, request)
        try:
            invoice = get_invoice_in_scope(scope_of(request), body["invoice"])
        except Http404:  # named as the field, like any bad input
            raise serializers.ValidationError({"invoice": ["no such invoice"]}) from None
        payment = services.pay_invoice(
            invoice,
            amount=Money(body["amount"], body["currency"]),
            payment_method=body["payment_method"],
            idempotency_key=request.headers.get(IDEMPOTENCY_HEADER, ""),
            by=actor_of(request),
            request=request._request,
        )
        return Response(self.get_serializer(payment).data, status=status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def refunds(self, request: Request, pk: str) -> Response:
        payment = get_payment_in_scope(scope_of(request), _id(pk))
        body = _body(api.RefundCreateSerializer, request)
        try:
            refund = services.refund_payment(
                payment,
                amount=Money(body["amount"], body["currency"]),
                reason=body["reason"],
                purpose=body["purpose"],
                by=principal_of(request).user,  # a person's rule: the token's user
                request=request._request,
            )
        except RefundRefused as exc:  # who may refund (403), or what (400)
            raise refused(exc, code="refund_refused", request=request) from None
        return Response(api.RefundSerializer(refund).data, status=status.HTTP_201_CREATED)


def _id(pk: str) -> int | None:
    return int(pk) if pk.isascii() and pk.isdigit() and len(pk) < 19 else None


def entry_binding(request: Request) -> str:
    """What a card form's one-time nonce is bound to besides the user: the access token the
    API is called with (the portal binds it to the session)."""
    return f"oauth2-token:{request.auth.pk}"


class CustomerOnly(BasePermission):
    """The view's ``customer_only`` actions take a customer user's token (a card is the
    customer's to save or delete)."""

    message = "only a customer's own token may do this"

    def has_permission(self, request: Request, view: Any) -> bool:
        name = getattr(view, "action", None) or request.method.lower()
        return name not in getattr(view, "customer_only", ()) or not is_integration(request)


@extend_schema_view(
    list=extend_schema(
        summary="List saved cards",
        responses={200: api.PaymentMethodSerializer(many=True), **errors(400, *READ)},
    ),
    retrieve=extend_schema(
        summary="Read a saved card",
        responses={200: api.PaymentMethodSerializer, **errors(*READ)},
    ),
    create=extend_schema(
        summary="Save a card from the browser's ciphertext (the customer's own token)",
        request=api.PaymentMethodCreateSerializer,
        responses={201: api.PaymentMethodSerializer, **errors(*WRITE, 503)},
    ),
    destroy=extend_schema(
        summary="Delete a saved card (the customer's own token)",
        responses={204: None, **errors(*WRITE)},
    ),
)
class PaymentMethodViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Saved cards: brand, last 4 and expiry only; saved from the browser's ciphertext."""

    serializer_class = api.PaymentMethodSerializer
    required_scopes = {
        "GET": ["payment_methods:read"],
        "POST": ["payment_methods:write"],
        "DELETE": ["payment_methods:write"],
    }
    permission_classes = [Scopes, CustomerOnly]
    customer_only = frozenset({"create", "destroy"})
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> Any:
        return saved_cards_in_scope(scope_of(self.request)).order_by("-pk")

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        card = get_saved_card_in_scope(scope_of(request), _id(pk))
        return Response(self.get_serializer(card).data)

    def create(self, request: Request) -> Response:
        payload = _body(api.PaymentMethodCreateSerializer, request)["payload"]
        card = EncryptedCard(
            payload=payload,
            user_id=principal_of(request).user.pk,
            session_key=entry_binding(request),
        )
        try:
            method = save_card(card, by=actor_of(request), request=request._request)
        except SavedCardRefused as exc:
            raise refused(exc, code="card_refused", request=request) from None
        return Response(self.get_serializer(method).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        card = get_saved_card_in_scope(scope_of(request), _id(pk))
        try:
            delete_saved_card(card.pk, by=actor_of(request), request=request._request)
        except SavedCardRefused as exc:
            raise refused(exc, code="card_refused", request=request) from None
        return Response(status=status.HTTP_204_NO_CONTENT)


class EntryKeyView(ApiView):
    """The card-entry key and a one-time nonce for one card: what the browser encrypts a card
    to before ``POST payment-methods/`` (a customer's token, ``payment_methods:write``)."""

    required_scopes = {"GET": ["payment_methods:write"]}
    permission_classes = [Scopes, CustomerOnly]
    customer_only = frozenset({"get"})

    @extend_schema(
        summary="The card-entry key and a one-time nonce for one card",
        responses={200: api.EntryKeySerializer, **errors(*READ, 503)},
    )
    def get(self, request: Request) -> Response:
        key = card_entry_key(by=actor_of(request), request=request._request)
        nonce = issue_entry_nonce(
            user_id=principal_of(request).user.pk, session_key=entry_binding(request)
        )
        return Response(
            api.EntryKeySerializer(
                {
                    "kid": key.kid,
                    "public_key": base64.b64encode(bytes(key.public_key_der)).decode(),
                    "nonce": nonce,
                    "algorithm": "RSA-OAEP-256",
                }
            ).data
        )
