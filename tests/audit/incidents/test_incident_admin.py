"""Incidents in the admin: officers open, update and respond (through the services);
auditors read; every other role is refused every page."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from audit.incidents import services
from audit.incidents.models import Incident
from security.models import User
from tests.factories import audit_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(officer: User) -> Incident:
    opened, _ = services.open_incident(
        title="Suspicious refunds", kind="fraud_wave", severity="medium", by=officer
    )
    return opened


def test_an_officer_opens_an_incident_from_the_admin_through_the_service(
    officer: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    response = client.post(
        reverse("admin:audit_incident_add"),
        {
            "title": "Laptop stolen",
            "summary": "",
            "kind": "data_loss",
            "severity": "high",
            "commander": officer.pk,
        },
    )
    assert response.status_code == 302
    incident = Incident.objects.get()
    assert (incident.title, incident.commander, incident.opened_by) == (
        "Laptop stolen",
        officer,
        "sofia",
    )
    assert audit_events("incident.opened", incident)


def test_the_incident_page_shows_the_timeline_and_the_respond_page_moves_it(
    officer: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    page = client.get(reverse("admin:audit_incident_change", args=[incident.pk]))
    assert page.status_code == 200 and "Containment actions" in page.content.decode()
    url = reverse("admin:audit_incident_respond", args=[incident.pk])
    bad = client.post(url, {"what": "status", "status": "closed", "text": ""})
    assert bad.status_code == 200 and bad.context["form"].errors["text"]
    moved = client.post(url, {"what": "status", "status": "triaged", "text": "real"})
    assert moved.status_code == 302
    assert Incident.objects.get(pk=incident.pk).status == "triaged"
    refused = client.post(url, {"what": "status", "status": "recovered", "text": "skip"})
    assert refused.context["form"].errors["status"]
    assert Incident.objects.get(pk=incident.pk).status == "triaged"


def test_changing_severity_goes_through_the_service(
    officer: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    response = client.post(
        reverse("admin:audit_incident_change", args=[incident.pk]),
        {
            "title": incident.title,
            "summary": "",
            "kind": incident.kind,
            "severity": "critical",
            "commander": "",
            "affected_customers": "",
        },
    )
    assert response.status_code == 302
    (event,) = audit_events("incident.updated", incident)
    assert event.details["severity"] == "critical"


def test_the_auditor_reads_incidents_but_changes_nothing(
    auditor: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(auditor)
    assert client.get(reverse("admin:audit_incident_changelist")).status_code == 200
    assert client.get(reverse("admin:audit_incident_change", args=[incident.pk])).status_code == 200
    url = reverse("admin:audit_incident_respond", args=[incident.pk])
    assert client.post(url, {"what": "note", "text": "mine"}).status_code == 403
    assert client.get(reverse("admin:audit_incident_add")).status_code == 403
    assert not audit_events("incident.note_added")


def test_every_other_role_is_refused_every_incident_page(
    officer: User,
    incident: Incident,
    other_roles: list[User],
    admin_client_for: Callable[[User], Client],
) -> None:
    urls = [
        reverse("admin:audit_incident_changelist"),
        reverse("admin:audit_incident_add"),
        reverse("admin:audit_incident_change", args=[incident.pk]),
        reverse("admin:audit_incident_respond", args=[incident.pk]),
    ]
    for user in other_roles:
        if user.groups.filter(name="Auditor").exists():
            continue
        client = admin_client_for(user)
        for url in urls:
            assert client.get(url).status_code == 403, (user, url)
        response = client.post(urls[3], {"what": "note", "text": "x"})
        assert response.status_code == 403
    assert not audit_events("incident.note_added")
