"""A signing job that keeps failing (the key's passphrase is wrong) under a real django-q2
cluster: retried with backoff, stopped after Q_MAX_ATTEMPTS, every attempt kept, and the
failure shown on its invoice with the reason and a "Retry now" only staff allowed to
(a billing clerk) may use; audited."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django_q.models import OrmQ
from django_q.tasks import async_task

from billing.documents import hooks
from billing.documents.models import InvoiceDocument
from billing.models import Customer, Invoice
from security.models import JobAttempt, User
from security.roles import ACCOUNTANT, AUDITOR, BILLING_CLERK, PAYMENTS_OPERATOR
from tests.cluster import JobCluster, wait_until
from tests.factories import audit_events, make_user, with_role

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def test_a_failing_signing_job_stops_after_its_attempts_and_shows_on_its_invoice(
    default_series: None,
    make_open_invoice: Callable[..., Invoice],
    alice_company: Customer,
    signing_key: Path,
    job_cluster: Callable[..., JobCluster],
    admin_client_for: Callable[[User], Client],
    clerk: User,
    settings: Any,
) -> None:
    invoice = make_open_invoice(alice_company)
    async_task(hooks.TASK, invoice.pk)  # what finalizing queues (DOCUMENTS_ON_FINALIZE=async)

    job_cluster(
        Q_TIMEOUT="2",
        Q_RETRY="3",
        Q_MAX_ATTEMPTS="3",
        DOCUMENTS_SIGNING_KEY_FILE=str(signing_key),
        DOCUMENTS_KEY_PASSPHRASE="not the key's passphrase",
        DOCUMENTS_CREATE_KEYS="false",
    )
    attempts: list[JobAttempt] = wait_until(
        lambda: (
            (tried := list(JobAttempt.objects.filter(func=hooks.TASK).order_by("attempt")))
            and tried[-1].gave_up
            and tried
        ),
        timeout=90,
        what="the signing job to give up",
    )

    assert [(a.attempt, a.outcome) for a in attempts] == [(n, "failed") for n in (1, 2, 3)]
    assert all("SigningKeyError" in a.error for a in attempts)
    first, second = (
        (later.started_at - earlier.started_at).total_seconds()
        for earlier, later in itertools.pairwise(attempts)
    )
    assert 3 <= first < 6 and 6 <= second < 10  # Q_RETRY, then twice that: backoff
    wait_until(lambda: not OrmQ.objects.exists(), timeout=10, what="the job to leave the queue")
    assert not InvoiceDocument.objects.exists()

    # On its invoice: the reason; "Retry now" for the billing clerk only.
    change = reverse("admin:billing_invoice_change", args=[invoice.pk])
    retry = reverse("admin:billing_invoice_retry_document", args=[invoice.pk])
    clerk_client = admin_client_for(with_role(clerk, BILLING_CLERK))
    page = clerk_client.get(change).content.decode()
    assert 'id="document-failed"' in page and "Failed after 3 attempts" in page
    assert "SigningKeyError" in page and 'id="retry-document"' in page
    for role in (ACCOUNTANT, PAYMENTS_OPERATOR, AUDITOR):
        other = admin_client_for(with_role(make_user(f"r-{role[:4]}", is_staff=True), role))
        seen = other.get(change).content.decode()
        assert 'id="document-failed"' in seen and 'id="retry-document"' not in seen, role
        assert other.get(retry).status_code == 403, role
        assert other.post(retry).status_code == 403, role
    assert not audit_events("invoice.document_retried")

    # The clerk fixes nothing in the cluster's settings here; the web tier signs inline.
    settings.DOCUMENTS_ON_FINALIZE = "sync"
    confirm = clerk_client.get(retry)
    assert confirm.status_code == 200 and "SigningKeyError" in confirm.content.decode()
    done = clerk_client.post(retry)

    assert done.status_code == 302 and done["Location"] == change
    assert InvoiceDocument.objects.filter(invoice=invoice).count() == 1
    [event] = audit_events("invoice.document_retried", invoice)
    assert event.details["queued"] is True and "SigningKeyError" in event.details["last_error"]
    page = clerk_client.get(change).content.decode()
    assert "version 1, signed" in page and 'id="retry-document"' not in page
