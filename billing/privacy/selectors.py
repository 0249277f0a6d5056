"""Reads of privacy records, scoped to the signed-in customer."""

from __future__ import annotations

from typing import Any

from billing.privacy.models import DataExport, ErasureRequest, PolicyAcceptance


def latest_acceptance(user: Any) -> PolicyAcceptance | None:
    """The newest policy version this user accepted."""
    return PolicyAcceptance.objects.filter(user=user).order_by("-accepted_at", "-pk").first()


def latest_export(customer: Any) -> DataExport | None:
    return (
        DataExport.objects.filter(customer=customer)
        .defer("content")
        .order_by("-requested_at", "-pk")
        .first()
    )


def open_erasure(customer: Any) -> ErasureRequest | None:
    return (
        ErasureRequest.objects.filter(customer=customer)
        .exclude(status=ErasureRequest.Status.REJECTED)
        .first()
    )
