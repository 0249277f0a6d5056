"""Every privacy write: policy acceptance, data export, erasure, retention.

Each service owns its transaction and audit event; emails and job enqueues wait for the
commit. An audit event never holds a personal value: customers are named by id and, once
erased, by their pseudonym.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import io
import json
import logging
import secrets
import zipfile
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from audit import SYSTEM, record
from billing.exceptions import BillingError
from billing.models import Customer, Invoice, PortalAccount
from billing.privacy import registry
from billing.privacy.models import DataExport, ErasureRequest, PolicyAcceptance
from billing.privacy.policy import current_policy, policy_version
from security.actors import Actor, user_of
from security.erasure import remove_user
from security.services import require_step_up

logger = logging.getLogger(__name__)

BUILD_EXPORT_TASK = "billing.privacy.tasks.build_data_export_job"
DECIDE_PERMISSION = "privacy.decide_erasure"


class PrivacyError(BillingError):
    """A privacy action was refused; the message names the field or rule."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


# The privacy policy ---------------------------------------------------------------------


def accept_privacy_policy(
    *, user: Any, version: str, request: HttpRequest | None
) -> PolicyAcceptance:
    """Record that this portal user accepted ``version`` (only the current one); audited.
    Accepting it again changes nothing."""
    from billing.selectors import customer_for_user

    customer = customer_for_user(user)
    if customer is None:
        raise PrivacyError(_("only a customer accepts the privacy policy"), field="user")
    if policy_version(version) is None or version != current_policy().version:
        raise PrivacyError(_("this is not the current version of the policy"), field="version")
    with transaction.atomic():
        acceptance, created = PolicyAcceptance.objects.get_or_create(
            user=user,
            version=version,
            defaults={"customer": customer, "accepted_at": timezone.now()},
        )
        if created:
            record(
                "privacy.policy_accepted",
                actor=user,
                obj=customer,
                request=request,
                version=version,
            )
    return acceptance


# Data export ----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def request_data_export(*, by: Actor, request: HttpRequest | None) -> DataExport:
    """A portal user asks for their customer's data: needs a second factor confirmed just
    now; one export at a time; built by a background job after commit; audited."""
    from billing.selectors import customer_for_user
    from security.selectors import has_second_factor

    customer = customer_for_user(by)
    if customer is None:
        raise PrivacyError(_("only a customer can export their data"), field="user")
    if not has_second_factor(user=by):
        raise PrivacyError(
            _("exporting your data needs two-step sign-in: turn it on under Account first"),
            field="mfa",
        )
    require_step_up(request, by)
    with transaction.atomic():
        Customer.objects.select_for_update().get(pk=customer.pk)
        if DataExport.objects.filter(customer=customer, status=DataExport.Status.PENDING).exists():
            raise PrivacyError(_("an export is already being prepared"), field="export")
        export = DataExport.objects.create(
            customer=customer, requested_by=user_of(by), requested_at=timezone.now()
        )
        record(
            "privacy.export_requested", actor=by, obj=customer, request=request, export_id=export.pk
        )
        transaction.on_commit(lambda: _queue_export(export.pk))
    return export


def _queue_export(export_id: int) -> None:
    from django_q.tasks import async_task

    async_task(BUILD_EXPORT_TASK, export_id, group="privacy", timeout=settings.Q_LONG_TIMEOUT)


def _customer_data(customer: Customer) -> dict[str, Any]:
    """Everything billing holds about the customer, as plain JSON (amounts in minor units)."""
    from billing.delivery.models import CustomerPgpKey, Delivery

    invoices = []
    for invoice in (
        Invoice.objects.filter(customer=customer)
        .exclude(status=Invoice.Status.DRAFT)
        .prefetch_related("lines")
        .order_by("finalized_at", "pk")
    ):
        invoices.append(
            {
                "number": invoice.display_number,
                "kind": invoice.kind,
                "status": invoice.status,
                "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
                "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
                "currency": invoice.currency,
                "net_total": invoice.net_total,
                "vat_total": invoice.vat_total,
                "gross_total": invoice.gross_total,
                "amount_paid": invoice.amount_paid,
                "amount_credited": invoice.amount_credited,
                "ocr_reference": invoice.ocr_reference,
                "buyer": invoice.buyer_snapshot,
                "lines": [
                    {
                        "description": line.description,
                        "quantity": str(line.quantity),
                        "unit": line.unit,
                        "unit_price": str(line.unit_price),
                        "vat_rate": str(line.vat_rate),
                        "net_amount": line.net_amount,
                    }
                    for line in invoice.lines.all()
                ],
            }
        )
    users = get_user_model().objects.filter(portal_account__customer=customer).order_by("pk")
    return {
        "customer": customer.snapshot()
        | {"currency": customer.currency, "created_at": customer.created_at.isoformat()},
        "portal_users": [
            {
                "username": user.get_username(),
                "email": user.email,
                "date_joined": user.date_joined.isoformat(),
                "last_login": user.last_login.isoformat() if user.last_login else None,
            }
            for user in users
        ],
        "privacy_policy_acceptances": [
            {"version": a.version, "accepted_at": a.accepted_at.isoformat()}
            for a in PolicyAcceptance.objects.filter(customer=customer)
        ],
        "pgp_keys": [
            {"fingerprint": key.fingerprint, "uploaded_at": key.uploaded_at.isoformat()}
            for key in CustomerPgpKey.objects.filter(customer=customer)
        ],
        "deliveries": [
            {
                "invoice": d.invoice.display_number,
                "kind": d.kind,
                "channel": d.channel,
                "recipient": d.recipient,
                "status": d.status,
            }
            for d in Delivery.objects.filter(invoice__customer=customer).select_related("invoice")
        ],
        "invoices": invoices,
    }


def export_archive(customer: Customer) -> bytes:
    """The ZIP a customer downloads: ``data.json`` and each invoice's newest signed PDF."""
    from billing.documents.models import InvoiceDocument

    data = _customer_data(customer)
    for name, section in registry.export_sections().items():
        data[name] = section(customer)
    data["exported_at"] = timezone.now().isoformat()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data.json", json.dumps(data, indent=2, ensure_ascii=False, default=str))
        newest: dict[int, InvoiceDocument] = {}
        for document in InvoiceDocument.objects.filter(invoice__customer=customer).select_related(
            "invoice"
        ):
            current = newest.get(document.invoice_id)
            if current is None or document.version > current.version:
                newest[document.invoice_id] = document
        for document in newest.values():
            archive.writestr(f"documents/{document.filename}", bytes(document.content))
    return buffer.getvalue()


def build_data_export(export_id: int) -> str | None:
    """The job: build the ZIP, make a one-time link (only its hash kept) and email it to
    the user who asked. Returns the link's token (for the email), None if nothing to do."""
    with transaction.atomic():
        export = DataExport.objects.select_for_update().select_related("customer").get(pk=export_id)
        if export.status != DataExport.Status.PENDING:
            return None
        content = export_archive(export.customer)
        token = secrets.token_urlsafe(32)
        now = timezone.now()
        export.content = content
        export.size = len(content)
        export.sha256 = hashlib.sha256(content).hexdigest()
        export.token_sha256 = _token_hash(token)
        export.status = DataExport.Status.READY
        export.ready_at = now
        export.expires_at = now + datetime.timedelta(hours=settings.PRIVACY_EXPORT_LINK_HOURS)
        export.save()
        record(
            "privacy.export_ready",
            actor=SYSTEM,
            obj=export.customer,
            export_id=export.pk,
            size=export.size,
            sha256=export.sha256,
        )
        user = export.requested_by
        if user is not None and user.email:
            language = export.customer.language
            transaction.on_commit(lambda: _email_export_link(user.email, token, language))
    return token


def fail_data_export(export_id: int, *, error: str) -> None:
    """The job could not build the export: it stops blocking a new request (the page says
    it failed); audited."""
    with transaction.atomic():
        export = DataExport.objects.select_for_update().get(pk=export_id)
        if export.status != DataExport.Status.PENDING:
            return
        export.status = DataExport.Status.FAILED
        export.error = error[:300]
        export.save(update_fields=["status", "error"])
        record("privacy.export_failed", actor=SYSTEM, obj=export.customer, export_id=export.pk)


def export_link(token: str) -> str:
    from django.urls import reverse

    base = settings.DELIVERY_PORTAL_URL.rstrip("/")
    return base + reverse("privacy:download", args=[token])


def _email_export_link(address: str, token: str, language: str) -> None:
    from django.core.mail import send_mail

    with translation.override(language):
        subject = _("Your data export is ready")
        body = _(
            "The export of your data you asked for is ready. Download it once, within"
            " %(hours)s hours, here (you sign in with your second factor first):\n\n%(link)s\n"
        ) % {"hours": settings.PRIVACY_EXPORT_LINK_HOURS, "link": export_link(token)}
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
    except Exception:  # the export stays ready; the page says so
        logger.exception("data export: the link email could not be sent")


def download_data_export(*, token: str, by: Actor, request: HttpRequest | None) -> DataExport:
    """Hand the ZIP over once: the link's user must belong to the export's customer, with a
    second factor confirmed just now; a used, expired or unknown link is refused. The ZIP
    is erased from the database as it is handed over; audited."""
    from billing.selectors import customer_for_user

    require_step_up(request, by)
    customer = customer_for_user(by)
    refusal = ""
    with transaction.atomic():
        export = (
            DataExport.objects.select_for_update().filter(token_sha256=_token_hash(token)).first()
        )
        if export is None or customer is None or export.customer_id != customer.pk:
            raise PrivacyError(_("this download link is not valid"), field="token")
        now = timezone.now()
        if export.status == DataExport.Status.READY and export.expires_at <= now:  # type: ignore[operator]
            _expire(export)  # committed: the refusal below is raised after the commit
        if export.status != DataExport.Status.READY:
            refusal = _("this download link was used or has expired: ask for a new export")
        else:
            handed = DataExport(
                pk=export.pk,
                content=bytes(export.content or b""),
                sha256=export.sha256,
                size=export.size,
                customer=export.customer,
            )
            export.content = None
            export.status = DataExport.Status.DOWNLOADED
            export.downloaded_at = now
            export.save(update_fields=["content", "status", "downloaded_at"])
            record(
                "privacy.export_downloaded",
                actor=by,
                obj=customer,
                request=request,
                export_id=export.pk,
                sha256=export.sha256,
            )
    if refusal:
        raise PrivacyError(refusal, field="token")
    return handed


def _expire(export: DataExport) -> None:
    export.content = None
    export.status = DataExport.Status.EXPIRED
    export.save(update_fields=["content", "status"])


def expire_data_exports(*, by: Actor = SYSTEM) -> int:
    """Erase every ready export past its link's expiry; audited as one event."""
    with transaction.atomic():
        ids = list(
            DataExport.objects.select_for_update()
            .filter(status=DataExport.Status.READY, expires_at__lte=timezone.now())
            .values_list("pk", flat=True)
        )
        if ids:
            DataExport.objects.filter(pk__in=ids).update(
                content=None, status=DataExport.Status.EXPIRED
            )
            record("privacy.exports_expired", actor=by, count=len(ids))
    return len(ids)


# Erasure --------------------------------------------------------------------------------


def pseudonym_for(customer: Customer) -> str:
    """A keyed hash (HMAC-SHA256) of the customer's identity: the same person erased twice,
    or asked about later by an auditor, links to one pseudonym; nobody can reverse it."""
    key = (
        settings.PRIVACY_PSEUDONYM_KEY
        or hmac.new(
            str(settings.SECRET_KEY).encode(), b"tillit.privacy.pseudonym", hashlib.sha256
        ).hexdigest()
    )
    identity = (customer.identity_number or customer.email).strip().lower()
    return hmac.new(key.encode(), identity.encode(), hashlib.sha256).hexdigest()


def request_erasure(
    *, customer: Customer, by: Actor, request: HttpRequest | None
) -> ErasureRequest:
    """Record a customer's request to be erased (from the portal, by one of its users with
    a second factor confirmed just now, or by staff on the customer's behalf); audited."""
    from billing.selectors import customer_for_user

    person = user_of(by)
    is_customer = customer_for_user(by) is not None
    if is_customer and customer_for_user(by) != customer:
        raise PrivacyError(_("you can only ask to erase your own data"), field="customer")
    if not is_customer and (person is None or not person.has_perm("billing.change_customer")):
        raise PrivacyError(
            _("recording an erasure request needs the Billing clerk role"), field="customer"
        )
    require_step_up(request, by)
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if (
            ErasureRequest.objects.filter(customer=locked)
            .exclude(status=ErasureRequest.Status.REJECTED)
            .exists()
        ):
            raise PrivacyError(_("an erasure was already requested"), field="customer")
        erasure = ErasureRequest.objects.create(
            customer=locked, requested_by=person, requested_at=timezone.now()
        )
        record(
            "privacy.erasure_requested",
            actor=by,
            obj=locked,
            request=request,
            erasure_id=erasure.pk,
        )
    return erasure


def decide_erasure(
    erasure: ErasureRequest,
    *,
    approve: bool,
    by: Actor,
    request: HttpRequest | None,
    note: str = "",
) -> ErasureRequest:
    """A security officer (not the one who recorded the request) approves — the customer is
    erased at once, in this transaction — or rejects it. Step-up; audited."""
    officer = user_of(by)
    if officer is None or not (officer.is_active and officer.has_perm(DECIDE_PERMISSION)):
        raise PrivacyError(
            _("deciding an erasure needs the Security officer role"), field="erasure"
        )
    require_step_up(request, by)
    with transaction.atomic():
        locked = ErasureRequest.objects.select_for_update().get(pk=erasure.pk)
        if locked.status != ErasureRequest.Status.PENDING:
            raise PrivacyError(_("this request was already decided"), field="erasure")
        if locked.requested_by_id == officer.pk:
            raise PrivacyError(
                _("a second person decides: not the one who recorded the request"),
                field="erasure",
            )
        locked.decided_by = officer
        locked.decided_at = timezone.now()
        locked.decision_note = note[:300]
        if not approve:
            locked.status = ErasureRequest.Status.REJECTED
            locked.save()
            record(
                "privacy.erasure_rejected",
                actor=by,
                obj=locked.customer,
                request=request,
                erasure_id=locked.pk,
            )
            return locked
        locked.pseudonym, locked.summary = _erase_customer(locked.customer, by=by)
        locked.status = ErasureRequest.Status.COMPLETED
        # requested_by is left alone: the erasure just removed that portal user.
        locked.save(
            update_fields=[
                "status",
                "decided_by",
                "decided_at",
                "decision_note",
                "pseudonym",
                "summary",
            ]
        )
        record(
            "privacy.customer_erased",
            actor=by,
            obj=locked.customer,
            request=request,
            erasure_id=locked.pk,
            pseudonym=locked.pseudonym,
            erased=locked.summary,
        )
    return locked


def _erase_customer(customer: Customer, *, by: Actor) -> tuple[str, dict[str, int]]:
    """Replace the customer's personal data with its pseudonym; remove its portal users, PGP
    keys and exports; let payments delete its cards. Invoices keep their frozen content
    (bookkeeping law) and totals."""
    from billing.delivery.models import CustomerPgpKey, Delivery

    locked = Customer.objects.select_for_update().get(pk=customer.pk)
    pseudonym = pseudonym_for(locked)
    short = pseudonym[:12]
    erased_email = f"erased-{short}@erased.invalid"
    summary: dict[str, int] = {}
    locked.name = f"Erased customer {short}"
    locked.identity_number = ""
    locked.vat_id = ""
    locked.email = erased_email
    locked.address_line1 = locked.address_line2 = locked.postal_code = locked.city = ""
    locked.save()
    users = list(get_user_model().objects.filter(portal_account__customer=locked))
    PortalAccount.objects.filter(customer=locked).delete()
    for user in users:
        remove_user(user, by=by)
    summary["portal_users"] = len(users)
    summary["pgp_keys"] = CustomerPgpKey.objects.filter(customer=locked).delete()[0]
    summary["deliveries"] = Delivery.objects.filter(invoice__customer=locked).update(
        recipient=erased_email
    )
    summary["exports"] = DataExport.objects.filter(customer=locked).delete()[0]
    for name, step in registry.erasure_steps().items():
        for what, count in step(locked, by=by, pseudonym=pseudonym).items():
            summary[f"{name}.{what}"] = count
    return pseudonym, summary


# Retention ------------------------------------------------------------------------------


def deactivate_inactive_portal_users(*, by: Actor = SYSTEM, now: Any = None) -> int:
    """Portal users not signed in for PRIVACY_PORTAL_INACTIVE_MONTHS (or never, since as
    long) can no longer sign in; audited as one event."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=30 * settings.PRIVACY_PORTAL_INACTIVE_MONTHS)
    users = get_user_model().objects.filter(
        portal_account__isnull=False, is_active=True, is_staff=False
    )
    stale = users.filter(last_login__lt=cutoff) | users.filter(
        last_login__isnull=True, date_joined__lt=cutoff
    )
    with transaction.atomic():
        ids = list(stale.select_for_update().values_list("pk", flat=True))
        if ids:
            get_user_model().objects.filter(pk__in=ids).update(is_active=False)
            record(
                "privacy.portal_users_deactivated",
                actor=by,
                count=len(ids),
                user_ids=ids[:1000],
                months=settings.PRIVACY_PORTAL_INACTIVE_MONTHS,
            )
    return len(ids)


def apply_privacy_retention(*, by: Actor = SYSTEM, now: Any = None) -> dict[str, int]:
    """The daily retention: expired exports, inactive portal users, what other apps
    registered (unused saved cards), and invoices past the bookkeeping period."""
    now = now or timezone.now()
    done = {
        "exports_expired": expire_data_exports(by=by),
        "portal_users_deactivated": deactivate_inactive_portal_users(by=by, now=now),
    }
    for name, step in registry.retention_steps().items():
        for what, count in step(by=by, now=now).items():
            done[f"{name}.{what}"] = count
    from billing.privacy.invoice_retention import delete_expired_invoices

    for what, count in delete_expired_invoices(by=by, now=now).items():
        done[f"expired_invoices.{what}"] = count
    return done


def retention_table() -> list[tuple[str, str, str]]:
    """(data, kept for, then) rows, as docs/privacy.md and the admin show them."""
    return [
        (
            _("Saved cards"),
            _("%(n)s months after last use") % {"n": settings.PRIVACY_CARD_UNUSED_MONTHS},
            _("deleted (ciphertext erased: crypto-shredding)"),
        ),
        (
            _("Portal accounts"),
            _("%(n)s months without signing in") % {"n": settings.PRIVACY_PORTAL_INACTIVE_MONTHS},
            _("deactivated"),
        ),
        (
            _("Invoices, credit notes and their signed PDFs"),
            _("%(n)s years (Swedish bookkeeping law)")
            % {"n": settings.PRIVACY_INVOICE_RETENTION_YEARS},
            _("deleted by a scheduled job, audited"),
        ),
        (
            _("Audit events"),
            _("at least %(n)s months") % {"n": settings.AUDIT_RETENTION_MONTHS},
            _("archived (manage.py archive_audit)"),
        ),
        (
            _("Data exports"),
            _("%(n)s hours, or until downloaded") % {"n": settings.PRIVACY_EXPORT_LINK_HOURS},
            _("erased"),
        ),
    ]


def register_privacy_schedules(sender: Any = None, **kwargs: Any) -> None:
    from django_q.models import Schedule

    from audit.schedules import ensure_schedule

    ensure_schedule(
        "privacy.retention",
        func="billing.privacy.tasks.apply_privacy_retention_job",
        schedule_type=Schedule.DAILY,
    )
