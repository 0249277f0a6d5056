"""Delivery state changes: customers' PGP keys, queueing and attempting deliveries,
single-use links, overdue reminders.

A delivery is claimed ("sending", committed) before it is sent, so that one worker
sends it; sending happens outside any transaction (an SMTP server can be slow); each
attempt is then recorded, with its audit event, in one short transaction. A claim
with no outcome (the worker died mid-send) is never resent by itself: after
DELIVERY_SENDING_TIMEOUT_SECONDS it turns failed, and staff decide.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import secrets
import smtplib
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit import SYSTEM, record
from billing.delivery import mail, pgp
from billing.delivery.exceptions import (
    DeliveryError,
    LinkExpired,
    LinkRefused,
    LinkUsed,
    RetryRefused,
)
from billing.delivery.models import CustomerPgpKey, Delivery, DeliveryAttempt, InvoiceLink
from billing.delivery.selectors import may_retry, sending_interrupted
from billing.documents.models import InvoiceDocument
from billing.documents.selectors import latest_document
from billing.documents.services import sign_invoice_document
from billing.models import Customer, Invoice
from billing.selectors import customer_for_user
from security.actors import Actor, Person

logger = logging.getLogger(__name__)

TASK = "billing.delivery.tasks.attempt_delivery_job"


def _user_or_none(actor: Actor) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


# --- customers' PGP keys -------------------------------------------------------------


def set_customer_pgp_key(customer: Customer, *, armored_key: str, by: Actor) -> CustomerPgpKey:
    """Check and store (or replace) the customer's PGP public key; a bad key changes nothing."""
    info = pgp.inspect_public_key(armored_key, now=timezone.now())
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        previous = CustomerPgpKey.objects.filter(customer=locked).first()
        key, _ = CustomerPgpKey.objects.update_or_create(
            customer=locked,
            defaults={
                "fingerprint": info.fingerprint,
                "user_ids": "; ".join(info.user_ids)[:500],
                "public_key": info.armored,
                "expires_at": info.expires_at,
                "uploaded_by": _user_or_none(by),
            },
        )
        record(
            "customer.pgp_key_set",
            actor=by,
            obj=locked,
            fingerprint=info.fingerprint,
            expires_at=info.expires_at.isoformat() if info.expires_at else "",
            previous_fingerprint=previous.fingerprint if previous else "",
        )
    return key


def remove_customer_pgp_key(customer: Customer, *, by: Actor) -> None:
    """Forget the customer's PGP key: later deliveries use portal links."""
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        key = CustomerPgpKey.objects.filter(customer=locked).first()
        if key is None:
            return
        fingerprint = key.fingerprint
        key.delete()
        record("customer.pgp_key_removed", actor=by, obj=locked, fingerprint=fingerprint)


def _usable_key(customer: Customer, now: datetime.datetime) -> CustomerPgpKey | None:
    key = CustomerPgpKey.objects.filter(customer=customer).first()
    if key is None or (key.expires_at is not None and key.expires_at <= now):
        return None
    return key


# --- deliveries ----------------------------------------------------------------------


def _enqueue(delivery_id: int, *, eta: datetime.datetime | None = None) -> None:
    mode = settings.DOCUMENTS_ON_FINALIZE
    if mode == "off":
        return
    if mode == "sync":
        if eta is None:
            transaction.on_commit(lambda: attempt_delivery(delivery_id, by=SYSTEM))
        return  # sync mode retries from `manage.py send_deliveries` or the admin
    from django_q.models import Schedule
    from django_q.tasks import async_task, schedule

    if eta is None:
        transaction.on_commit(lambda: async_task(TASK, delivery_id, group="delivery"))
    else:
        transaction.on_commit(
            lambda: schedule(
                TASK,
                delivery_id,
                schedule_type=Schedule.ONCE,
                next_run=eta,
                repeats=1,
                name=f"delivery-{delivery_id}-{int(eta.timestamp())}",
            )
        )


def queue_delivery(invoice: Invoice, *, kind: str = Delivery.Kind.INVOICE, by: Actor) -> Delivery:
    """Record a delivery of the invoice (PGP if the customer has a valid key, else a link)
    and have it sent after commit."""
    if kind not in Delivery.Kind.values:
        raise DeliveryError(f"unknown delivery kind {kind!r}", field="kind")
    now = timezone.now()
    with transaction.atomic():
        customer = invoice.customer
        key = _usable_key(customer, now)
        delivery = Delivery.objects.create(
            invoice=invoice,
            document=latest_document(invoice),
            kind=kind,
            channel=Delivery.Channel.PGP if key else Delivery.Channel.LINK,
            recipient=customer.email,
            next_attempt_at=now,
        )
        record(
            "invoice.delivery_queued",
            actor=by,
            obj=invoice,
            delivery_id=delivery.pk,
            kind=kind,
            channel=delivery.channel,
        )
        _enqueue(delivery.pk)
    return delivery


def _new_link(invoice: Invoice, delivery: Delivery, now: datetime.datetime) -> str:
    """A fresh single-use link; only the SHA-256 of its token is stored."""
    token = secrets.token_urlsafe(32)
    InvoiceLink.objects.create(
        invoice=invoice,
        delivery=delivery,
        token_sha256=hashlib.sha256(token.encode()).hexdigest(),
        created_at=now,
        expires_at=now + datetime.timedelta(days=int(settings.DELIVERY_LINK_DAYS)),
    )
    return f"{settings.DELIVERY_PORTAL_URL.rstrip('/')}/l/{token}/"


def _build(delivery: Delivery, now: datetime.datetime) -> Any:
    """The email of one delivery, written in the customer's language."""
    with translation.override(delivery.invoice.customer.language):
        return _build_message(delivery, now)


def _build_message(delivery: Delivery, now: datetime.datetime) -> Any:
    invoice = delivery.invoice
    if delivery.channel == Delivery.Channel.PGP:
        key = _usable_key(invoice.customer, now)
        if key is None:
            raise DeliveryError("the customer's PGP key is gone or expired", field="pgp_key")
        if delivery.kind in mail.NOTICE_KINDS:  # the notice's text; no PDF needed
            page = "portal:receipt" if delivery.kind == Delivery.Kind.RECEIPT else "portal:invoice"
            receipt = reverse(page, args=[invoice.pk])
            return mail.pgp_message(
                invoice,
                kind=delivery.kind,
                document=None,
                to=delivery.recipient,
                key=key,
                receipt_url=f"{settings.DELIVERY_PORTAL_URL.rstrip('/')}{receipt}",
            )
        document = delivery.document or latest_document(invoice)
        if document is None:
            raise DeliveryError("the invoice has no signed PDF yet", field="document")
        return mail.pgp_message(
            invoice, kind=delivery.kind, document=document, to=delivery.recipient, key=key
        )
    with transaction.atomic():
        url = _new_link(invoice, delivery, now)
    return mail.link_message(invoice, kind=delivery.kind, url=url, to=delivery.recipient)


def _safe_error(exc: Exception) -> str:
    """What an attempt records: the error's kind and the server's words, never a secret."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [f"{code} {msg.decode(errors='replace')}" for code, msg in exc.recipients.values()]
        return ("recipient refused: " + "; ".join(codes))[:500]
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.smtp_code} {exc.smtp_error!r}"[:500]
    if isinstance(exc, DeliveryError):
        return str(exc)[:500]
    return type(exc).__name__


def _claim(delivery_id: int, now: datetime.datetime) -> bool:
    """Take a queued delivery for sending: one conditional UPDATE, committed before
    anything is sent. Of the workers that race for it (its own job, the safety net, a
    job retried after a crash), exactly one sees the row change."""
    return bool(
        Delivery.objects.filter(pk=delivery_id, status=Delivery.Status.QUEUED).update(
            status=Delivery.Status.SENDING, claimed_at=now
        )
    )


def attempt_delivery(delivery_id: int, *, by: Actor) -> Delivery:
    """Claim a queued delivery (so at most one worker sends it), send it once, record the
    attempt; schedule a retry with exponential backoff, or mark it failed after
    DELIVERY_MAX_ATTEMPTS. A delivery another worker is sending, or one whose sender died
    mid-send, is left alone: it is never sent again without a decision
    (``release_interrupted_deliveries``, ``retry_delivery``)."""
    claimed_at = timezone.now()
    if not _claim(delivery_id, claimed_at):
        return Delivery.objects.select_related("invoice").get(pk=delivery_id)
    delivery = Delivery.objects.select_related("invoice", "invoice__customer", "document").get(
        pk=delivery_id
    )
    error = ""
    try:
        message = _build(delivery, claimed_at)
        message.send(fail_silently=False)
    except (OSError, smtplib.SMTPException, DeliveryError) as exc:
        error = _safe_error(exc)
        logger.warning("delivery %s attempt failed: %s", delivery_id, error)
    finished = timezone.now()
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().get(pk=delivery_id)
        if locked.status != Delivery.Status.SENDING or locked.claimed_at != claimed_at:
            # Released meanwhile (judged interrupted, then perhaps retried): what happened
            # is still recorded, and a message that did go out counts as sent.
            return _record_late_attempt(locked, claimed_at, finished, error, by=by)
        locked.attempts += 1  # in this round (a retry from the admin starts a new round)
        _log_attempt(locked, claimed_at, finished, error)
        locked.claimed_at = None
        if not error:
            _mark_sent(locked, finished)
        elif locked.attempts >= int(settings.DELIVERY_MAX_ATTEMPTS):
            locked.status = Delivery.Status.FAILED
            locked.next_attempt_at = None
            locked.last_error = error
        else:
            locked.status = Delivery.Status.QUEUED
            backoff = int(settings.DELIVERY_RETRY_SECONDS) * 2 ** (locked.attempts - 1)
            locked.next_attempt_at = finished + datetime.timedelta(seconds=backoff)
            locked.last_error = error
            _enqueue(locked.pk, eta=locked.next_attempt_at)
        locked.save()
        _audit_attempt(locked, error, outcome="sent" if not error else locked.status, by=by)
    return locked


def _mark_sent(delivery: Delivery, finished: datetime.datetime) -> None:
    delivery.status = Delivery.Status.SENT
    delivery.sent_at = finished
    delivery.next_attempt_at = None
    delivery.claimed_at = None
    delivery.last_error = ""


def _audit_attempt(
    delivery: Delivery, error: str, *, outcome: str, by: Actor, **extra: Any
) -> None:
    record(
        "invoice.delivery_attempted",
        actor=by,
        obj=delivery.invoice,
        delivery_id=delivery.pk,
        attempt=delivery.attempts,
        channel=delivery.channel,
        outcome=outcome,
        error=error,
        **extra,
    )


def _log_attempt(
    delivery: Delivery, started: datetime.datetime, finished: datetime.datetime, error: str
) -> DeliveryAttempt:
    return DeliveryAttempt.objects.create(
        delivery=delivery,
        number=DeliveryAttempt.objects.filter(delivery=delivery).count() + 1,
        started_at=started,
        finished_at=finished,
        succeeded=not error,
        error=error,
    )


def _record_late_attempt(
    locked: Delivery,
    started: datetime.datetime,
    finished: datetime.datetime,
    error: str,
    *,
    by: Actor,
) -> Delivery:
    """The outcome of a send whose claim was released before it ended (under the lock)."""
    _log_attempt(locked, started, finished, error)
    if not error and locked.status != Delivery.Status.SENT:
        _mark_sent(locked, finished)
        locked.save()
    _audit_attempt(locked, error, outcome="sent" if not error else "failed", by=by, late=True)
    return locked


INTERRUPTED = (
    "interrupted while sending: no outcome was recorded, so the message may have reached"
    " the customer; check before sending it again"
)


def release_interrupted_deliveries(*, by: Actor, now: datetime.datetime | None = None) -> int:
    """Mark failed, never resend, each delivery claimed for sending longer than
    DELIVERY_SENDING_TIMEOUT_SECONDS ago with no outcome (its worker died mid-send):
    staff decide whether to send it again. The number released."""
    now = now or timezone.now()
    timeout = datetime.timedelta(seconds=int(settings.DELIVERY_SENDING_TIMEOUT_SECONDS))
    stale = Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lte=now - timeout)
    released = 0
    for delivery_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            locked = Delivery.objects.select_for_update().get(pk=delivery_id)
            if not sending_interrupted(locked, now):
                continue
            assert locked.claimed_at is not None
            _log_attempt(locked, locked.claimed_at, now, INTERRUPTED)
            claimed_at = locked.claimed_at
            locked.status = Delivery.Status.FAILED
            locked.attempts += 1
            locked.next_attempt_at = None
            locked.last_error = INTERRUPTED
            locked.save()
            record(
                "invoice.delivery_interrupted",
                actor=by,
                obj=locked.invoice,
                delivery_id=locked.pk,
                claimed_at=claimed_at.isoformat(),
                channel=locked.channel,
            )
        released += 1
    return released


RETRY_PERMISSION = "delivery.retry_delivery"


def retry_delivery(
    delivery: Delivery, *, by: Person, request: HttpRequest | None = None
) -> Delivery:
    """Send a failed delivery again, now (attempts start again): staff with
    ``delivery.retry_delivery`` only. Also a delivery whose send was interrupted and not
    yet released, once DELIVERY_SENDING_TIMEOUT_SECONDS have passed; never one being sent."""
    if not (getattr(by, "is_active", False) and by.has_perm(RETRY_PERMISSION)):
        raise RetryRefused(f"sending a delivery again needs {RETRY_PERMISSION}")
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
        previous = locked.status
        if not may_retry(locked):
            raise DeliveryError(f"delivery {locked.pk} is {locked.status}", field="status")
        locked.status = Delivery.Status.QUEUED
        locked.attempts = 0
        locked.claimed_at = None
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["status", "attempts", "claimed_at", "next_attempt_at"])
        record(
            "invoice.delivery_retried",
            actor=by,
            obj=locked.invoice,
            request=request,
            delivery_id=locked.pk,
            previous_status=previous,
            last_error=locked.last_error,
        )
        _enqueue(locked.pk)
    return locked


def send_due_deliveries(*, by: Actor, now: datetime.datetime | None = None) -> int:
    """The schedule's safety net: release interrupted sends (failed, not resent), then
    attempt every queued delivery whose time has come; the number attempted."""
    now = now or timezone.now()
    release_interrupted_deliveries(by=by, now=now)
    due = Delivery.objects.filter(status=Delivery.Status.QUEUED, next_attempt_at__lte=now)
    count = 0
    for delivery_id in due.values_list("pk", flat=True):
        attempt_delivery(delivery_id, by=by)
        count += 1
    return count


# --- links ---------------------------------------------------------------------------


def open_invoice_link(token: str, *, user: Any) -> InvoiceLink:
    """Use a link once: unknown, used, expired or another customer's link is refused
    (LinkRefused), and nothing changes. The link knows its invoice and delivery."""
    digest = hashlib.sha256((token or "").encode()).hexdigest()
    now = timezone.now()
    with transaction.atomic():
        link = (
            InvoiceLink.objects.select_for_update(of=("self",))
            .select_related("invoice", "delivery")
            .filter(token_sha256=digest)
            .first()
        )
        customer = customer_for_user(user)
        if link is None or customer is None or link.invoice.customer_id != customer.pk:
            raise LinkRefused(_("this link is not valid for your account"))
        if link.used_at is not None:
            raise LinkUsed(_("this link was already used; open the invoice from the portal"))
        if link.expires_at <= now:
            raise LinkExpired(_("this link has expired; open the invoice from the portal"))
        link.used_at = now
        link.used_by = user
        link.save(update_fields=["used_at", "used_by"])
        record("invoice.link_opened", actor=user, obj=link.invoice, link_id=link.pk)
    return link


# --- receipts ------------------------------------------------------------------------


def queue_receipt(invoice: Invoice | int, *, by: Actor) -> Delivery | None:
    """Queue the receipt notification of a paid invoice (or invoice id), once: None when the
    invoice is not (or no longer) paid, is a credit note, or already has its receipt."""
    pk = invoice.pk if isinstance(invoice, Invoice) else invoice
    with transaction.atomic():
        locked = (
            Invoice.objects.select_for_update(of=("self",)).select_related("customer").get(pk=pk)
        )
        if locked.status != Invoice.Status.PAID or locked.is_credit_note:
            return None
        if Delivery.objects.filter(invoice=locked, kind=Delivery.Kind.RECEIPT).exists():
            return None
        return queue_delivery(locked, kind=Delivery.Kind.RECEIPT, by=by)


# --- reminders -----------------------------------------------------------------------


def send_overdue_reminders(*, by: Actor, today: datetime.date | None = None) -> int:
    """Queue one reminder per overdue invoice not reminded in DELIVERY_REMINDER_DAYS."""
    today = today or timezone.localdate()
    since = timezone.now() - datetime.timedelta(days=int(settings.DELIVERY_REMINDER_DAYS))
    overdue = (
        Invoice.objects.overdue(today)
        .exclude(deliveries__kind=Delivery.Kind.REMINDER, deliveries__created_at__gte=since)
        .select_related("customer")
    )
    count = 0
    for invoice in overdue:
        queue_delivery(invoice, kind=Delivery.Kind.REMINDER, by=by)
        count += 1
    return count


def issue_invoice_document(invoice: Invoice, *, by: Actor) -> InvoiceDocument:
    """Sign the invoice's PDF (once, after its XML passes every check) and queue its
    delivery to the customer if none is queued yet; a failed check raises InvalidFacturX
    (recorded) and nothing is signed or sent. Delivery's, as it sends what documents
    signs: documents never imports delivery."""
    document = sign_invoice_document(invoice, by=by)
    if not Delivery.objects.filter(invoice=invoice, kind=Delivery.Kind.INVOICE).exists():
        queue_delivery(invoice, by=by)
    return document
