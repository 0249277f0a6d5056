"""The commands and the weekly job: simulate to a CSV, train from it, train on the database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule

from payments.fraud.features import write_csv
from payments.fraud.models import FraudModelVersion
from payments.fraud.simulator import simulate
from payments.schedules import register_payments_schedules
from payments.tasks import train_fraud_model_task
from tests.payments.fraud.helpers import SMALL

pytestmark = pytest.mark.django_db


def test_train_fraud_model_trains_on_a_csv_and_says_how_it_went(tmp_path: Path) -> None:
    path = tmp_path / "past.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        write_csv(simulate(SMALL), stream)
    out = io.StringIO()
    call_command("train_fraud_model", "--csv", str(path), "--seed", "3", stdout=out)
    version = FraudModelVersion.objects.get()
    assert version.source == "csv:past.csv" and version.seed == 3 and not version.live
    assert "computing features" in out.getvalue()
    assert f"stored version {version.pk}" in out.getvalue()


def test_train_fraud_model_refuses_a_bad_csv_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "created_at,customer_id,email,card_fingerprint,amount,currency,status\n"
        "2026-11-01T10:00:00+00:00,c1,a@example.se,f1,ten,SEK,succeeded\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="line 2: amount"):
        call_command("train_fraud_model", "--csv", str(path), stdout=io.StringIO())
    assert not FraudModelVersion.objects.exists()


def test_simulate_fraud_loads_what_the_weekly_job_trains_on() -> None:
    call_command(
        "simulate_fraud", "--load", "--customers", "150", "--weeks", "4", stdout=io.StringIO()
    )
    version = FraudModelVersion.objects.get(pk=train_fraud_model_task())
    assert version.source == "database (weekly)"


def test_the_weekly_job_without_labels_stores_nothing() -> None:
    assert train_fraud_model_task() == 0
    assert not FraudModelVersion.objects.exists()


def test_training_is_scheduled_weekly() -> None:
    register_payments_schedules()
    schedule = Schedule.objects.get(name="payments.train_fraud_model")
    assert (schedule.func, schedule.schedule_type) == (
        "payments.tasks.train_fraud_model_task",
        Schedule.WEEKLY,
    )


def test_simulate_fraud_needs_somewhere_to_put_the_payments() -> None:
    with pytest.raises(CommandError, match="--csv FILE, --load"):
        call_command("simulate_fraud", stdout=io.StringIO())
