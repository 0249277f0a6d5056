"""Simulated payments written into the database, for tests, the demo and the benchmark.

Synthetic history only: customers, invoices (series ``SIM``), cards (payment methods
without card data: deleted, as the vault leaves a card it has erased) and card payments
with their simulated times, and their labels (``FraudLabel`` source ``import``), and the
fraud engine's velocity counters rebuilt from the payments. Written in
bulk, beside the services on purpose: no card is charged, no invoice is really issued and
no mail is sent. One audit event records the load.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Case, DateTimeField, Max, Value, When
from django.utils import timezone

from audit import SYSTEM, record
from billing.models import Customer, Invoice, InvoiceSeries
from payments.fraud.features.offline import PastPayment
from payments.fraud.features.velocity import rebuild_velocity
from payments.fraud.models import FraudLabel
from payments.models import Payment
from payments.vault.models import PaymentMethod

SERIES = "SIM"
_CHUNK = 500


def _series() -> InvoiceSeries:
    series, _created = InvoiceSeries.objects.get_or_create(
        code=SERIES, defaults={"kind": "invoice", "name": "Simulated (fraud engine)"}
    )
    return series


def load_simulation(
    payments: Sequence[PastPayment], *, counters_before: datetime.datetime | None = None
) -> dict[str, int]:
    """Write ``payments`` (and their customers, invoices and cards) into the database; the
    payment ids of the rows (``payment_id``) mapped to the payments' primary keys. The
    fraud engine's velocity counters are rebuilt from every card payment before
    ``counters_before`` (default now): written in bulk, the rows did not count themselves."""
    with transaction.atomic():
        customers: dict[str, Customer] = {}
        for past in payments:
            a = past.attempt
            if a.customer_id not in customers:
                customers[a.customer_id] = Customer(
                    name=f"Simulated {a.customer_id}",
                    email=a.email,
                    country=a.billing_country or "SE",
                    currency=a.currency,
                )
        Customer.objects.bulk_create(customers.values(), batch_size=_CHUNK)

        series = _series()
        number = (Invoice.objects.filter(series=series).aggregate(n=Max("number"))["n"] or 0) + 1
        invoices: dict[tuple, Invoice] = {}
        for past in payments:
            a = past.attempt
            key = (a.customer_id, a.invoice_amount, a.invoice_sent_at)
            if key in invoices:
                continue
            sent = a.invoice_sent_at or a.at
            total = a.invoice_amount or a.amount
            invoices[key] = Invoice(
                series=series,
                number=number,
                display_number=f"{SERIES}-{number}",
                status=Invoice.Status.OPEN,
                customer=customers[a.customer_id],
                currency=a.currency,
                net_total=total,
                gross_total=total,
                issue_date=sent.date(),
                due_date=sent.date() + datetime.timedelta(days=30),
                finalized_at=a.invoice_sent_at,
            )
            number += 1
        Invoice.objects.bulk_create(invoices.values(), batch_size=_CHUNK)

        methods: dict[tuple[str, str], PaymentMethod] = {}
        for past in payments:
            a = past.attempt
            added = past.card_added_at or a.at
            method = methods.get((a.customer_id, a.card_fingerprint))
            if method is None:
                token = hashlib.sha256(f"{a.customer_id}|{a.card_fingerprint}".encode()).hexdigest()
                methods[(a.customer_id, a.card_fingerprint)] = PaymentMethod(
                    token=f"tok_sim_{token[:40]}",
                    customer=customers[a.customer_id],
                    brand=a.card_brand or "visa",
                    bin=a.card_bin[:6],
                    last4="0000",
                    exp_month=12,
                    exp_year=2030,
                    fingerprint=a.card_fingerprint,
                    status=PaymentMethod.Status.DELETED,
                    saved=False,
                    created_at=added,
                    deleted_at=added,
                )
            elif added < method.created_at:
                method.created_at = added
        PaymentMethod.objects.bulk_create(methods.values(), batch_size=_CHUNK)

        rows = []
        for n, past in enumerate(payments):
            a = past.attempt
            method = methods[(a.customer_id, a.card_fingerprint)]
            failed = past.status == "failed"
            rows.append(
                Payment(
                    invoice=invoices[(a.customer_id, a.invoice_amount, a.invoice_sent_at)],
                    amount=a.amount,
                    currency=a.currency,
                    method=Payment.Method.CARD,
                    status=past.status,
                    payment_method=method,
                    card_brand=method.brand,
                    card_last4=method.last4,
                    gateway="simulator",
                    idempotency_key=f"sim_{past.payment_id or n}",
                    client_ip=a.ip,
                    failure_code="card_declined" if failed else "",
                    settled_at=a.at,
                )
            )
        Payment.objects.bulk_create(rows, batch_size=_CHUNK)
        # created_at is set on insert (auto_now_add): the simulated times are written after.
        for start in range(0, len(rows), _CHUNK):
            chunk = list(
                zip(rows[start : start + _CHUNK], payments[start : start + _CHUNK], strict=True)
            )
            Payment.objects.filter(pk__in=[p.pk for p, _ in chunk]).update(
                created_at=Case(
                    *[When(pk=p.pk, then=Value(past.attempt.at)) for p, past in chunk],
                    output_field=DateTimeField(),
                )
            )
        FraudLabel.objects.bulk_create(
            [
                FraudLabel(
                    payment=payment,
                    label=past.label,
                    source=FraudLabel.Source.IMPORT,
                    reason=past.scenario or "simulated",
                    at=past.attempt.at,
                )
                for payment, past in zip(rows, payments, strict=True)
                if past.label
            ],
            batch_size=_CHUNK,
        )
        record(
            "fraud.simulation_loaded",
            actor=SYSTEM,
            payments=len(rows),
            customers=len(customers),
            labelled=sum(1 for past in payments if past.label),
            at=timezone.now().isoformat(),
        )
        rebuild_velocity(before=counters_before)
    return {
        past.payment_id or str(n): payment.pk
        for n, (payment, past) in enumerate(zip(rows, payments, strict=True))
    }
