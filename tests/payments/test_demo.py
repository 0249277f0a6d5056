"""The payments demo: work waiting for the operator and the fraud analyst, three months of
bank transfers for the charts, and the sample camt.054 file the operator imports."""

from __future__ import annotations

import datetime
import io
import re

import pytest
from django.core.management import call_command
from django.utils import timezone

from audit import SYSTEM
from payments import selectors
from payments.demo import SAMPLE_FILE, sample_camt054_for_demo
from payments.models import BankLine, Payment, RiskHold
from payments.reconciliation.services import import_bank_file

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("demo_settings")]


@pytest.fixture
def seeded() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_the_demo_leaves_work_for_the_operator_and_the_fraud_analyst(seeded: str) -> None:
    assert Payment.objects.awaiting_risk_review().count() == 1
    assert Payment.objects.filter(status=Payment.Status.UNKNOWN).count() == 1
    assert Payment.objects.filter(status=Payment.Status.FAILED).count() == 1
    assert "today's card payments: held pending, approved succeeded" in seeded
    # Nothing looked like card testing: the demo customer can still pay with a card.
    assert not RiskHold.objects.filter(lifted_at__isnull=True).exists()
    assert not Payment.objects.filter(risk_decision="block").exists()


def test_the_demo_has_three_months_of_payments_for_the_chart(seeded: str) -> None:
    per_day = selectors.payments_per_day(days=90)

    assert len(per_day) >= 20
    assert min(per_day) <= timezone.localdate() - datetime.timedelta(days=60)


def _without_references(content: bytes) -> bytes:
    # OCR references carry the invoice's id: a fresh demo's, not this test database's.
    return re.sub(rb"<Ref>[0-9]+</Ref>", b"<Ref/>", content)


def test_the_sample_bank_file_is_the_one_a_fresh_demo_makes(seeded: str) -> None:
    assert _without_references(SAMPLE_FILE.read_bytes()) == _without_references(
        sample_camt054_for_demo()
    )


def test_the_sample_bank_file_matches_one_line_and_leaves_two_to_resolve(seeded: str) -> None:
    report = import_bank_file(sample_camt054_for_demo(), filename=SAMPLE_FILE.name, by=SYSTEM)

    lines = BankLine.objects.filter(bank_file__message_id="TILLIT-DEMO-SAMPLE-1")
    assert sorted(lines.values_list("status", "reason")) == [
        ("matched", ""),
        ("review", "amount_mismatch"),
        ("review", "unknown_reference"),
    ]
    assert report is not None


def test_seeding_again_adds_no_payment(seeded: str) -> None:
    before = (Payment.objects.count(), BankLine.objects.count())
    call_command("seed_demo", stdout=io.StringIO())

    assert (Payment.objects.count(), BankLine.objects.count()) == before
