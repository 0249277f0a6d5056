"""Containment actions: each takes effect, is audited and lands on the incident's timeline;
each needs a fresh second factor and the Security officer role (every other role refused)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from audit import SYSTEM
from audit.incidents import containment, services
from audit.incidents.exceptions import ContainmentRefused
from audit.incidents.models import Incident
from payments.models import CardPaymentFreeze, DataKey, EntryKey
from payments.vault.services import rotate_data_key, rotate_entry_key
from security.models import User
from security.selectors import MFA_VERIFIED_AT_KEY
from tests.audit.governance import staff_member
from tests.factories import audit_events

pytestmark = pytest.mark.django_db

ADMIN_HOME = "/admin/"


@pytest.fixture
def incident(officer: User) -> Incident:
    opened, _ = services.open_incident(
        title="Clerk account phished", kind="account_takeover", severity="high", by=officer
    )
    return opened


@pytest.fixture
def carl(db: None) -> User:
    """Carl, a billing clerk whose account may have been taken over."""
    return staff_member("carl", "Billing clerk")


def contain_url(incident: Incident) -> str:
    return reverse("admin:audit_incident_containment", args=[incident.pk])


def post_action(client: Client, incident: Incident, action: str, **fields: str) -> Any:
    return client.post(contain_url(incident), {"action": action, "confirm": "on", **fields})


def signed_out(client: Client) -> bool:
    response = client.get(ADMIN_HOME)
    return response.status_code == 302 and "login" in response["Location"]


def test_revoking_a_users_sessions_makes_his_next_request_need_a_login(
    officer: User, carl: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    carl_client = admin_client_for(carl)
    assert carl_client.get(ADMIN_HOME).status_code == 200
    response = post_action(
        admin_client_for(officer), incident, "revoke_user_sessions", username="Carl"
    )
    assert response.status_code == 302
    assert signed_out(carl_client)
    (event,) = audit_events("security.sessions_revoked", carl)
    assert (event.actor_label, event.details["count"]) == ("sofia", 1)
    (applied,) = audit_events("incident.containment_applied", incident)
    assert applied.details["containment"] == "revoke_user_sessions"
    assert incident.entries.filter(kind="containment", text__contains="carl").exists()


def test_revoking_all_staff_sessions_keeps_only_the_officers_own(
    officer: User,
    carl: User,
    auditor: User,
    incident: Incident,
    admin_client_for: Callable[[User], Client],
) -> None:
    carl_client, auditor_client = admin_client_for(carl), admin_client_for(auditor)
    officer_client = admin_client_for(officer)
    other_officer_session = admin_client_for(officer)
    assert post_action(officer_client, incident, "revoke_staff_sessions").status_code == 302
    assert signed_out(carl_client) and signed_out(auditor_client)
    assert signed_out(other_officer_session)
    assert officer_client.get(ADMIN_HOME).status_code == 200
    (event,) = audit_events("security.sessions_revoked")
    assert event.details == {"scope": "staff", "count": 3}


def test_disabling_a_staff_account_signs_it_out_and_stops_its_logins(
    officer: User, carl: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    carl_client = admin_client_for(carl)
    response = post_action(
        admin_client_for(officer), incident, "disable_staff_account", username="carl"
    )
    assert response.status_code == 302
    assert not User.objects.get(pk=carl.pk).is_active
    assert signed_out(carl_client)
    login = Client().post(
        "/account/login/", {"username": "carl", "password": "correct horse battery staple"}
    )
    assert login.status_code == 200  # the form again: no session for a disabled account
    (event,) = audit_events("security.account_disabled", carl)
    assert event.details["sessions_ended"] == 1


def test_a_customer_account_is_not_disabled_as_staff(
    officer: User, alice: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    response = post_action(
        admin_client_for(officer), incident, "disable_staff_account", username="alice"
    )
    assert response.status_code == 200
    assert "not a staff account" in response.content.decode()
    assert User.objects.get(pk=alice.pk).is_active
    assert not audit_events("incident.containment_applied")


def test_an_unknown_login_name_is_refused_on_its_field(
    officer: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    response = post_action(
        admin_client_for(officer), incident, "revoke_user_sessions", username="nobody"
    )
    assert response.status_code == 200
    assert response.context["form"].errors["username"]
    assert not audit_events("security.sessions_revoked")


def test_rotating_the_vault_keys_puts_new_ones_in_use(
    officer: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    old_dek, old_entry = rotate_data_key(by=SYSTEM), rotate_entry_key(by=SYSTEM)
    response = post_action(admin_client_for(officer), incident, "rotate_vault_keys")
    assert response.status_code == 302
    new_dek = DataKey.objects.get(state=DataKey.State.ACTIVE)
    new_entry = EntryKey.objects.get(state=EntryKey.State.ACTIVE)
    assert new_dek.pk != old_dek.pk and new_entry.pk != old_entry.pk
    assert DataKey.objects.get(pk=old_dek.pk).state == DataKey.State.DECRYPT_ONLY
    assert [e.details["reason"] for e in audit_events("vault.dek_rotated")] == [
        "requested",
        "requested",
    ]
    assert audit_events("vault.entry_key_rotated")[-1].actor_label == "sofia"
    assert incident.entries.filter(text__contains=new_dek.hex_id).exists()


def test_freezing_and_lifting_card_payments_from_the_containment_page(
    officer: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    client = admin_client_for(officer)
    response = post_action(client, incident, "freeze_card_payments", reason="")
    assert response.context["form"].errors["reason"]
    assert not CardPaymentFreeze.objects.exists()
    post_action(client, incident, "freeze_card_payments", reason="skimming suspected")
    freeze = CardPaymentFreeze.objects.get(active=True)
    assert "skimming suspected" in client.get(contain_url(incident)).content.decode()
    post_action(client, incident, "lift_card_payment_freeze")
    freeze.refresh_from_db()
    assert not freeze.active and freeze.lifted_by == officer
    actions = [e.details["containment"] for e in audit_events("incident.containment_applied")]
    assert actions == ["freeze_card_payments", "lift_card_payment_freeze"]


def test_without_a_fresh_second_factor_no_action_is_taken(
    officer: User,
    carl: User,
    incident: Incident,
    stepped_up: Callable[[User], Any],
    admin_client_for: Callable[[User], Client],
) -> None:
    carl_client = admin_client_for(carl)
    stale = stepped_up(officer)
    stale.session.pop(MFA_VERIFIED_AT_KEY, None)
    actions: list[Callable[[], Any]] = [
        lambda: containment.freeze_card_payments(
            incident=incident, reason="x", by=officer, request=stale
        ),
        lambda: containment.revoke_user_sessions(
            incident=incident, user=carl, by=officer, request=stale
        ),
        lambda: containment.revoke_staff_sessions(incident=incident, by=officer, request=stale),
        lambda: containment.disable_staff_account(
            incident=incident, user=carl, by=officer, request=stale
        ),
        lambda: containment.rotate_vault_keys(incident=incident, by=officer, request=stale),
    ]
    for action in actions:
        with pytest.raises(ContainmentRefused) as refused:
            action()
        assert refused.value.field == "step_up"
    assert not CardPaymentFreeze.objects.exists()
    assert not DataKey.objects.exists()
    assert carl_client.get(ADMIN_HOME).status_code == 200
    assert not audit_events("incident.containment_applied")


def test_the_domain_services_refuse_without_step_up_too(officer: User, carl: User) -> None:
    """Fail closed: called directly (not through the incident tooling), they refuse too."""
    from payments import freeze
    from payments.exceptions import FreezeRefused
    from security import containment as security_containment
    from security.exceptions import StepUpRequired

    with pytest.raises(FreezeRefused):
        freeze.freeze_card_payments(reason="x", by=officer, request=None)
    with pytest.raises(StepUpRequired):
        security_containment.revoke_user_sessions(user=carl, by=officer, request=None)
    assert not CardPaymentFreeze.objects.exists()


def test_every_other_role_is_refused_the_containment_page(
    incident: Incident, other_roles: list[User], admin_client_for: Callable[[User], Client]
) -> None:
    for user in other_roles:
        client = admin_client_for(user)
        for url in (contain_url(incident), reverse("admin:audit_incident_containment_any")):
            assert client.get(url).status_code == 403, user
            response = client.post(url, {"action": "revoke_staff_sessions", "confirm": "on"})
            assert response.status_code == 403, user
    assert not audit_events("security.sessions_revoked")


def test_every_role_but_the_officer_is_refused_the_services(
    incident: Incident, other_roles: list[User], carl: User, stepped_up: Callable[[User], Any]
) -> None:
    for user in other_roles:
        request = stepped_up(user)
        with pytest.raises(ContainmentRefused) as refused:
            containment.revoke_user_sessions(incident=incident, user=carl, by=user, request=request)
        assert refused.value.field == "user"
        with pytest.raises(ContainmentRefused):
            containment.freeze_card_payments(
                incident=incident, reason="x", by=user, request=request
            )
    assert not CardPaymentFreeze.objects.exists()


def test_revoking_a_clients_api_tokens_makes_its_next_request_a_401(
    officer: User, incident: Incident, admin_client_for: Callable[[User], Client]
) -> None:
    from oauth2_provider.models import Application

    from tests.api.conftest import bearer, issue_token, make_application
    from tests.factories import make_user

    erp = make_application("ERP", user=make_user("api-erp"))
    other = make_application("Other", user=make_user("api-other"))
    token, kept = issue_token(erp, scopes="invoices:read"), issue_token(other)
    api = Client()
    assert api.get("/api/v1/me", **bearer(token)).status_code == 200

    response = post_action(
        admin_client_for(officer), incident, "revoke_client_api_tokens", client_id=erp.client_id
    )

    assert response.status_code == 302
    assert api.get("/api/v1/me", **bearer(token)).status_code == 401
    assert api.get("/api/v1/me", **bearer(kept)).status_code == 200
    (event,) = audit_events("security.api_tokens_revoked")
    assert (event.details["scope"], event.details["count"]) == ("application", 1)
    assert token not in str(event.details)
    (applied,) = audit_events("incident.containment_applied", incident)
    assert applied.details["containment"] == "revoke_api_tokens"
    assert Application.objects.count() == 2  # the clients stay; only their tokens end


def test_revoking_every_api_token_and_a_users_tokens(
    officer: User, incident: Incident, alice: User, stepped_up: Callable[[User], Any]
) -> None:
    from oauth2_provider.models import AccessToken

    from tests.api.conftest import issue_token, make_application
    from tests.factories import make_user

    app = make_application("App", grant="authorization-code")
    erp = make_application("ERP", user=make_user("api-erp"))
    issue_token(app, user=alice)
    issue_token(erp)
    request = stepped_up(officer)
    assert (
        containment.revoke_api_tokens(incident=incident, user=alice, by=officer, request=request)
        == 1
    )
    assert AccessToken.objects.count() == 1
    assert containment.revoke_api_tokens(incident=incident, by=officer, request=request) == 1
    assert not AccessToken.objects.exists()


def test_revoking_api_tokens_needs_the_officer_and_a_fresh_second_factor(
    officer: User,
    incident: Incident,
    other_roles: list[User],
    stepped_up: Callable[[User], Any],
) -> None:
    from oauth2_provider.models import AccessToken

    from tests.api.conftest import issue_token, make_application
    from tests.factories import make_user

    issue_token(make_application("ERP", user=make_user("api-erp")))
    for user in other_roles:
        with pytest.raises(ContainmentRefused) as refused:
            containment.revoke_api_tokens(incident=incident, by=user, request=stepped_up(user))
        assert refused.value.field == "user"
    stale = stepped_up(officer)
    stale.session.pop(MFA_VERIFIED_AT_KEY, None)
    with pytest.raises(ContainmentRefused) as refused:
        containment.revoke_api_tokens(incident=incident, by=officer, request=stale)
    assert refused.value.field == "step_up"
    assert AccessToken.objects.count() == 1
    assert not audit_events("security.api_tokens_revoked")
