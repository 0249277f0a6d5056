"""Billing's API: customers, invoices (drafts, lines, finalize, void, credit notes) and their
signed PDFs (download, verify).

Thin, as the admin's and the portal's views: parse (the serializers), select with the
access check (``billing.selectors``: another customer's id is a 404), one service call,
render. Every rule is the services'; nothing here writes through the ORM.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from billing import services
from billing.api import serializers as api
from billing.api.caller import IntegrationOnly, actor_of, scope_of
from billing.api.errors import register_billing_errors
from billing.api.schema import READ, WRITE, errors
from billing.documents import selectors as documents
from billing.documents import services as document_services
from billing.documents.exceptions import InvalidUpload
from billing.documents.verify import check_pdf_upload
from billing.models import Invoice, InvoiceLine
from billing.money import Money
from billing.selectors import get_customer_in_scope, get_invoice_in_scope, invoice_lines
from billing.services import CreditLine
from security.api.permissions import Scopes
from security.api.views import ApiView, IdempotentMixin

register_billing_errors()


def _body(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _customer_for(request: Request, pk: int) -> Any:
    """The customer a write names, if the caller sees it; else refused naming ``customer``."""
    try:
        return get_customer_in_scope(scope_of(request), pk)
    except Http404:
        raise serializers.ValidationError({"customer": ["no such customer"]}) from None


def detail(
    invoice: Invoice,
    status_code: int = status.HTTP_200_OK,
    *,
    lines: list[InvoiceLine] | None = None,
) -> Response:
    """The invoice (as a service returned it, or as read) with its lines: those the service
    returned beside it, else read."""
    context = {"lines": invoice_lines(invoice) if lines is None else lines}
    return Response(api.InvoiceDetailSerializer(invoice, context=context).data, status=status_code)


@extend_schema_view(
    list=extend_schema(
        summary="List customers",
        responses={200: api.CustomerSerializer(many=True), **errors(400, *READ)},
    ),
    retrieve=extend_schema(
        summary="Read a customer", responses={200: api.CustomerSerializer, **errors(*READ)}
    ),
    create=extend_schema(
        summary="Create a customer (integrations)",
        request=api.CustomerWriteSerializer,
        responses={201: api.CustomerSerializer, **errors(*WRITE)},
    ),
    partial_update=extend_schema(
        summary="Change a customer (integrations)",
        request=api.CustomerWriteSerializer,
        responses={200: api.CustomerSerializer, **errors(*WRITE)},
    ),
)
class CustomerViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Customers: a customer's token sees its own; an integration lists, creates and changes."""

    serializer_class = api.CustomerSerializer
    required_scopes = {
        "GET": ["customers:read"],
        "POST": ["customers:write"],
        "PATCH": ["customers:write"],
    }
    permission_classes = [Scopes, IntegrationOnly]
    integration_only = frozenset({"create", "partial_update"})
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> Any:
        return scope_of(self.request).customers()

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self.get_serializer(get_customer_in_scope(scope_of(request), pk)).data)

    def create(self, request: Request) -> Response:
        fields = _body(api.CustomerWriteSerializer, request)
        customer = services.create_customer(by=actor_of(request), **fields)
        return Response(self.get_serializer(customer).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        customer = get_customer_in_scope(scope_of(request), pk)
        serializer = api.CustomerWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changed = services.update_customer(
            customer, by=actor_of(request), **serializer.validated_data
        )
        return Response(self.get_serializer(changed).data)


class InvoiceFilterSerializer(serializers.Serializer):
    """The list's filters (query parameters)."""

    status = serializers.ChoiceField(choices=Invoice.Status.choices, required=False)
    kind = serializers.ChoiceField(choices=Invoice.Kind.choices, required=False)
    customer = serializers.IntegerField(min_value=1, required=False)


@extend_schema_view(
    list=extend_schema(
        summary="List invoices and credit notes",
        parameters=[InvoiceFilterSerializer],
        responses={200: api.InvoiceSerializer(many=True), **errors(400, *READ)},
    ),
    retrieve=extend_schema(
        summary="Read an invoice with its lines",
        responses={200: api.InvoiceDetailSerializer, **errors(*READ)},
    ),
    create=extend_schema(
        summary="Create a draft invoice (integrations)",
        request=api.InvoiceCreateSerializer,
        responses={201: api.InvoiceDetailSerializer, **errors(*WRITE)},
    ),
    lines=extend_schema(
        summary="Add a line to a draft (integrations)",
        request=api.LineInputSerializer,
        responses={201: api.InvoiceDetailSerializer, **errors(*WRITE)},
    ),
    finalize=extend_schema(
        summary="Finalize a draft: number, freeze, sign and send (integrations)",
        request=api.FinalizeSerializer,
        responses={200: api.InvoiceDetailSerializer, **errors(*WRITE)},
    ),
    void=extend_schema(
        summary="Void an open invoice with nothing paid or credited (integrations)",
        request=api.VoidSerializer,
        responses={200: api.InvoiceDetailSerializer, **errors(*WRITE)},
    ),
    credit_notes=extend_schema(
        summary="Issue a credit note on an open invoice (integrations)",
        request=api.CreditNoteCreateSerializer,
        responses={201: api.InvoiceDetailSerializer, **errors(*WRITE)},
    ),
    pdf=extend_schema(
        summary="Download the invoice's signed PDF",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The signed PDF/A-3 with its Factur-X XML."
            ),
            **errors(*READ),
        },
    ),
)
class InvoiceViewSet(IdempotentMixin, viewsets.GenericViewSet):
    """Invoices and credit notes: read, and (integrations) the draft-to-paid lifecycle."""

    serializer_class = api.InvoiceSerializer
    required_scopes = {"GET": ["invoices:read"], "POST": ["invoices:write"]}
    permission_classes = [Scopes, IntegrationOnly]
    lookup_value_regex = "[0-9]+"
    # A customer's own token reads its finalized invoices; drafts and the lifecycle are
    # the seller's, through a server integration.
    integration_only = frozenset({"create", "lines", "finalize", "void", "credit_notes"})

    def get_queryset(self) -> Any:
        return scope_of(self.request).invoices()

    def _invoice(self, pk: str) -> Invoice:
        return get_invoice_in_scope(scope_of(self.request), pk)

    def list(self, request: Request) -> Response:
        filters = InvoiceFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        found = self.get_queryset()
        for name, value in filters.validated_data.items():
            found = found.filter(**{"customer_id" if name == "customer" else name: value})
        page = self.paginate_queryset(found)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request: Request, pk: str) -> Response:
        return detail(self._invoice(pk))

    def create(self, request: Request) -> Response:
        fields = _body(api.InvoiceCreateSerializer, request)
        customer = _customer_for(request, fields.pop("customer"))
        draft, lines = services.create_draft_invoice_with_lines(
            customer=customer, by=actor_of(request), **fields
        )
        return detail(draft, status.HTTP_201_CREATED, lines=lines)

    @action(detail=True, methods=["post"])
    def lines(self, request: Request, pk: str) -> Response:
        invoice = self._invoice(pk)
        line = _body(api.LineInputSerializer, request)
        services.add_invoice_line(invoice, by=actor_of(request), **line)  # the row is unchanged
        return detail(invoice, status.HTTP_201_CREATED)

    @action(detail=True, methods=["post"])
    def finalize(self, request: Request, pk: str) -> Response:
        invoice = self._invoice(pk)
        _body(api.FinalizeSerializer, request)
        finalized, lines = services.finalize_invoice_with_lines(invoice, by=actor_of(request))
        return detail(finalized, lines=lines)

    @action(detail=True, methods=["post"])
    def void(self, request: Request, pk: str) -> Response:
        invoice = self._invoice(pk)
        reason = _body(api.VoidSerializer, request).get("reason", "")
        return detail(services.void_invoice(invoice, by=actor_of(request), reason=reason))

    @action(detail=True, methods=["post"], url_path="credit-notes")
    def credit_notes(self, request: Request, pk: str) -> Response:
        invoice = self._invoice(pk)
        body = _body(api.CreditNoteCreateSerializer, request)
        by, reason = actor_of(request), body.get("reason", "")
        if "amount" in body:
            amount = Money(body["amount"], body["currency"])
            note = services.issue_credit_note_for_amount(
                invoice, amount=amount, by=by, reason=reason
            )
        else:
            lines = [
                CreditLine(line_id=spec["line"], quantity=spec.get("quantity"))
                for spec in body.get("lines", ())
            ]
            note = services.issue_credit_note(invoice, by=by, lines=lines or None, reason=reason)
        return detail(note, status.HTTP_201_CREATED)

    @action(detail=True, methods=["get"])
    def pdf(self, request: Request, pk: str) -> HttpResponse:
        document = documents.get_document_among(scope_of(request).invoices(), pk)
        document_services.record_document_download(
            document, by=actor_of(request), request=request._request
        )
        response = HttpResponse(bytes(document.content), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{document.filename}"'
        response["X-Content-SHA256"] = document.sha256
        response["Cache-Control"] = "no-store"
        return response


class InvoiceVerifyView(ApiView):
    """Verify an uploaded PDF: signed by us, untampered, and which invoice (named only when
    the caller sees it). A read: it needs ``invoices:read``."""

    required_scopes = {"POST": ["invoices:read"]}

    @extend_schema(
        summary="Verify a PDF: signed by us, untampered, which invoice",
        request=api.VerifyUploadSerializer,
        responses={200: api.VerificationSerializer, **errors(*WRITE)},
    )
    def post(self, request: Request) -> Response:
        data = _body(api.VerifyUploadSerializer, request)["pdf"]
        check_pdf_upload(data, max_bytes=int(settings.DOCUMENTS_MAX_UPLOAD_BYTES), field_name="pdf")
        try:
            result = documents.verify_document(data, invoices=scope_of(request).invoices())
        except InvalidUpload:  # a decompression bomb: refused, never inflated (and recorded)
            document_services.record_verification(
                sha256=hashlib.sha256(data).hexdigest(),
                outcome="refused",
                by=actor_of(request),
                request=request._request,
            )
            raise
        invoice = result.document.invoice if result.document else None
        document_services.record_verification(
            sha256=result.inspection.sha256,
            outcome=result.outcome,
            by=actor_of(request),
            invoice=invoice,
            request=request._request,
        )
        inspection = result.inspection
        return Response(
            api.VerificationSerializer(
                {
                    "outcome": result.outcome,
                    "genuine": result.genuine,
                    "signed": inspection.signed,
                    "signed_by_us": inspection.signed_by_known_certificate,
                    "intact": inspection.intact,
                    "sha256": inspection.sha256,
                    "invoice": invoice.pk if invoice else None,
                    "number": invoice.display_number if invoice else "",
                    "version": result.document.version if result.document else None,
                    "sentences": [str(s) for s in result.sentences],
                }
            ).data
        )
