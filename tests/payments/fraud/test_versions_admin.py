"""Model versions in the admin: the fraud analyst sees each version's holdout figures and
makes one live on the promotion page (fresh second factor, audited, a worse one only with
an override and a reason); every other role, a stale session and a forged POST are refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from payments.fraud.demo import seed_fraud_demo, seed_fraud_rules_demo
from payments.fraud.models import FraudListEntry, FraudModelVersion, FraudRule
from payments.fraud.training import promote_model_version
from security.models import User
from security.roles import FRAUD_ANALYST, ROLE_NAMES
from security.selectors import MFA_VERIFIED_AT_KEY
from tests.factories import audit_events, make_user
from tests.mfa_helpers import stepped_up_request
from tests.payments.fraud.helpers import constant_version

pytestmark = pytest.mark.django_db


def promote_url(version: FraudModelVersion) -> str:
    return reverse("admin:payments_fraudmodelversion_promote", args=[version.pk])


def test_the_analyst_sees_the_versions_and_their_holdout_figures(
    trained: FraudModelVersion, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)

    listed = client.get(reverse("admin:payments_fraudmodelversion_changelist"))
    detail = client.get(reverse("admin:payments_fraudmodelversion_change", args=[trained.pk]))

    assert listed.status_code == 200 and f"fraud model v{trained.pk}" in listed.text
    assert f"{trained.metrics['average_precision']:.3f}" in listed.text
    assert detail.status_code == 200
    assert "fraud caught" in detail.text and "Make this version live" in detail.text
    assert 'name="_save"' not in detail.text  # read-only: promotion is its own page


def test_the_analyst_promotes_a_version_after_confirming(
    trained: FraudModelVersion, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)

    page = client.get(promote_url(trained))
    assert not FraudModelVersion.objects.filter(live=True).exists()  # GET changes nothing
    done = client.post(promote_url(trained), {"reason": ""})

    assert page.status_code == 200 and "average precision" in page.text
    # The breadcrumbs lead back to the list and to the version's page.
    crumbs = page.text.split('class="breadcrumbs"', 1)[1].split("</div>", 1)[0]
    assert reverse("admin:payments_fraudmodelversion_changelist") in crumbs
    assert reverse("admin:payments_fraudmodelversion_change", args=[trained.pk]) in crumbs
    assert done.status_code == 302
    trained.refresh_from_db()
    assert trained.live and trained.promoted_by == analyst
    assert audit_events("fraud.model_promoted", trained)


def test_a_worse_version_needs_the_override_and_a_reason_in_the_form(
    trained: FraudModelVersion, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    promote_model_version(trained, by=analyst, request=stepped_up_request(analyst))
    worse = constant_version(trained)
    client = admin_client_for(analyst)

    refused = client.post(promote_url(worse), {"reason": "cheaper"})
    no_reason = client.post(promote_url(worse), {"override": "on", "reason": " "})

    assert refused.status_code == 200 and "does worse than the live version" in refused.text
    assert no_reason.status_code == 200 and "say why a worse model should go live" in no_reason.text
    assert FraudModelVersion.objects.get(live=True) == trained
    assert not audit_events("fraud.model_promoted", worse)

    client.post(promote_url(worse), {"override": "on", "reason": "drift in the old one"})
    assert FraudModelVersion.objects.get(live=True) == worse


def test_a_stale_second_factor_is_sent_to_step_up_and_nothing_changes(
    trained: FraudModelVersion, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    session = client.session
    session[MFA_VERIFIED_AT_KEY] -= 24 * 3600
    session.save()

    for response in (client.get(promote_url(trained)), client.post(promote_url(trained), {})):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("security:step_up"))
    assert not FraudModelVersion.objects.filter(live=True).exists()


def test_a_promotion_without_the_csrf_token_is_refused(
    trained: FraudModelVersion, analyst: User, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(analyst)
    client.handler.enforce_csrf_checks = True

    response = client.post(promote_url(trained), {"reason": ""})

    assert response.status_code == 403
    assert not FraudModelVersion.objects.filter(live=True).exists()


@pytest.mark.parametrize("role", [r for r in ROLE_NAMES if r not in (FRAUD_ANALYST, "Customer")])
def test_no_other_role_promotes_and_only_the_auditor_reads_the_versions(
    trained: FraudModelVersion, role: str, admin_client_for: Callable[[User], Client]
) -> None:
    user = make_user(f"user-{role.replace(' ', '-').lower()}", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = admin_client_for(User.objects.get(pk=user.pk))

    page = client.get(promote_url(trained))
    post = client.post(promote_url(trained), {"override": "on", "reason": "x"})
    listed = client.get(reverse("admin:payments_fraudmodelversion_changelist"))

    assert (page.status_code, post.status_code) == (403, 403)
    # The auditor reads every record (docs/roles.md), without the promotion's button.
    reads = role == "Auditor"
    assert listed.status_code == (200 if reads else 403)
    if reads:
        detail = client.get(reverse("admin:payments_fraudmodelversion_change", args=[trained.pk]))
        assert detail.status_code == 200 and "Make this version live" not in detail.text
    assert not FraudModelVersion.objects.filter(live=True).exists()


def test_the_demo_makes_its_first_model_live_once_and_its_rules_through_the_services(
    analyst: User,
) -> None:
    analyst.username = "fraud"
    analyst.save(update_fields=["username"])

    first = seed_fraud_demo()
    again = seed_fraud_demo()
    made = seed_fraud_rules_demo()

    assert first is not None and first.live and again is None
    assert first.metrics["average_precision"] >= 0.65
    event = audit_events("fraud.model_promoted", first)[0]
    assert event.actor_type == "system" and "demo installation" in event.details["reason"]
    assert made == 3 and seed_fraud_rules_demo() == 0
    assert FraudRule.objects.filter(enabled=True).count() == 1
    assert FraudListEntry.objects.get().value == "throwaway-mail.example"
    assert audit_events("fraud.rule_created", FraudRule.objects.first())
