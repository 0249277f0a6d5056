"""Incidents: opening (by people and detectors), the lifecycle, notes, evidence, customers;
each change audited, bad input refused by field with nothing changed."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from audit import SYSTEM, record
from audit.incidents import services
from audit.incidents.exceptions import IncidentRefused
from audit.incidents.models import Incident, IncidentEntry
from audit.incidents.tasks import notify_incident_opened
from billing.models import Customer
from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


def _open(by: Any, **extra: Any) -> Incident:
    values = {"title": "Phishing of a clerk", "kind": "account_takeover", "severity": "high"}
    incident, created = services.open_incident(**{**values, **extra}, by=by)
    assert created
    return incident


def test_opening_an_incident_is_audited_and_tells_the_officers_after_commit(
    officer: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        incident = _open(officer, summary="A clerk typed her password on a fake page.")
    assert incident.status == Incident.Status.DETECTED
    assert incident.opened_by == "sofia"
    (event,) = audit_events("incident.opened", incident)
    assert event.details["severity"] == "high" and event.actor_label == "sofia"
    assert len(callbacks) == 1  # the notification job is queued only once it commits
    assert notify_incident_opened(incident.pk) == 1
    (message,) = mail.outbox
    assert message.to == ["sofia@example.test"]
    assert f"INC-{incident.pk}" in message.subject and "fake page" not in message.body


def test_the_lifecycle_is_walked_step_by_step_with_a_note_each_time(officer: User) -> None:
    incident = _open(officer)
    for status in ("triaged", "contained", "eradicated", "recovered", "closed"):
        incident = services.change_incident_status(
            incident, to=status, note=f"now {status}", by=officer
        )
    assert incident.status == "closed"
    assert incident.time_to_contain is not None and incident.time_to_close is not None
    assert incident.time_to_contain <= incident.time_to_close
    statuses = [e.details["status"] for e in audit_events("incident.status_changed", incident)]
    assert statuses == ["triaged", "contained", "eradicated", "recovered", "closed"]
    kinds = list(incident.entries.values_list("kind", flat=True))
    assert kinds == ["detection"] + ["status"] * 5


@pytest.mark.parametrize(
    ("steps", "to"),
    [([], "contained"), (["triaged", "contained"], "closed"), (["closed"], "triaged")],
)
def test_a_step_the_lifecycle_does_not_allow_is_refused_and_changes_nothing(
    officer: User, steps: list[str], to: str
) -> None:
    incident = _open(officer)
    for step in steps:
        incident = services.change_incident_status(incident, to=step, note="x", by=officer)
    with pytest.raises(IncidentRefused) as refused:
        services.change_incident_status(incident, to=to, note="skip", by=officer)
    assert refused.value.field == "status"
    assert Incident.objects.get(pk=incident.pk).status == incident.status


def test_a_status_change_without_a_note_is_refused_by_field(officer: User) -> None:
    incident = _open(officer)
    with pytest.raises(IncidentRefused) as refused:
        services.change_incident_status(incident, to="triaged", note="  ", by=officer)
    assert refused.value.field == "note"
    assert Incident.objects.get(pk=incident.pk).status == "detected"


@pytest.mark.parametrize(
    ("field", "value"),
    [("title", ""), ("kind", "aliens"), ("severity", "apocalyptic"), ("title", "x" * 201)],
)
def test_bad_input_when_opening_names_the_field_and_opens_nothing(
    officer: User, field: str, value: str
) -> None:
    values: dict[str, Any] = {"title": "A title", "kind": "other", "severity": "low", field: value}
    with pytest.raises(IncidentRefused) as refused:
        services.open_incident(**values, by=officer)
    assert refused.value.field == field
    assert not Incident.objects.exists()


def test_a_person_without_the_role_cannot_open_or_change_an_incident(
    officer: User, other_roles: list[User]
) -> None:
    incident = _open(officer)
    for user in other_roles:
        with pytest.raises(IncidentRefused):
            services.open_incident(title="x", kind="other", severity="low", by=user)
        with pytest.raises(IncidentRefused):
            services.change_incident_status(incident, to="triaged", note="x", by=user)
        with pytest.raises(IncidentRefused):
            services.add_incident_note(incident, text="x", by=user)
    assert Incident.objects.count() == 1
    assert Incident.objects.get(pk=incident.pk).status == "detected"


def test_a_detector_firing_again_adds_to_the_open_incident_not_a_new_one(
    time_machine: Any,
) -> None:
    time_machine.move_to(timezone.now(), tick=False)
    first, created = services.open_incident(
        title="Spike", kind="fraud_wave", severity="high", detector_key="spike", by=SYSTEM
    )
    assert created
    again, created = services.open_incident(
        title="Spike", kind="fraud_wave", severity="high", detector_key="spike", by=SYSTEM
    )
    assert (again.pk, created) == (first.pk, False)
    assert first.entries.count() == 1  # within the quiet hour: not noted again
    time_machine.shift(3700)
    services.open_incident(
        title="Spike", kind="fraud_wave", severity="high", detector_key="spike", by=SYSTEM
    )
    assert first.entries.filter(kind=IncidentEntry.Kind.DETECTION).count() == 2
    assert len(audit_events("incident.detected_again", first)) == 1
    services.change_incident_status(first, to="closed", note="false alarm", by=SYSTEM)
    fresh, created = services.open_incident(
        title="Spike", kind="fraud_wave", severity="high", detector_key="spike", by=SYSTEM
    )
    assert created and fresh.pk != first.pk


def test_evidence_links_existing_audit_events_and_refuses_unknown_ones(officer: User) -> None:
    incident = _open(officer)
    evidence = record("security.lockout", actor=SYSTEM, username="carla", minutes=30)
    assert services.link_audit_events(incident, seqs=[evidence.seq], by=officer) == 1
    assert services.link_audit_events(incident, seqs=[evidence.seq], by=officer) == 0
    with pytest.raises(IncidentRefused) as refused:
        services.link_audit_events(incident, seqs=[evidence.seq, 99_999_999], by=officer)
    assert refused.value.field == "seqs"
    assert list(incident.audit_events.values_list("seq", flat=True)) == [evidence.seq]
    (event,) = audit_events("incident.evidence_linked", incident)
    assert event.details["seqs"] == [evidence.seq]


def test_affected_customers_are_set_and_audited_by_id(
    officer: User, alice_company: Customer, bob_company: Customer
) -> None:
    incident = _open(officer)
    services.set_affected_customers(incident, customers=[alice_company, bob_company], by=officer)
    assert set(incident.affected_customers.all()) == {alice_company, bob_company}
    (event,) = audit_events("incident.customers_changed", incident)
    assert event.details["customer_ids"] == sorted([alice_company.pk, bob_company.pk])


def test_the_commander_must_be_active_staff(officer: User, alice: User) -> None:
    incident = _open(officer)
    with pytest.raises(IncidentRefused) as refused:
        services.update_incident(incident, changes={"commander": alice}, by=officer)
    assert refused.value.field == "commander"
    updated = services.update_incident(
        incident, changes={"commander": officer, "severity": "critical"}, by=officer
    )
    assert (updated.commander, updated.severity) == (officer, "critical")
    (event,) = audit_events("incident.updated", incident)
    assert event.details == {
        "fields": ["commander", "severity"],
        "severity": "critical",
        "commander": "sofia",
    }


def test_notes_are_added_to_the_timeline(officer: User) -> None:
    incident = _open(officer)
    entry = services.add_incident_note(incident, text="Called the acquirer.", by=officer)
    assert (entry.author, entry.kind) == ("sofia", "note")
    assert audit_events("incident.note_added", incident)


def test_nobody_is_emailed_when_no_officer_has_an_address(officer: User) -> None:
    User.objects.filter(pk=officer.pk).update(email="")
    incident = _open(officer)
    assert notify_incident_opened(incident.pk) == 0
    assert not mail.outbox
