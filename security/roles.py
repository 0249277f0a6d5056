"""Roles as code: the one matrix of who may do what (docs/roles.md mirrors it).

Each role is a group holding exactly the permissions listed here, written as
``app_label.codename``. ``sync_roles`` makes the groups match the matrix: it adds
what is missing and removes anything extra. Permissions of models that do not
exist yet (an app still to come) are skipped, and added by the next sync.

Superuser is not a role: it is break-glass, and each login with it is audited
and flagged (``security.superuser_used``).
"""

from __future__ import annotations

from typing import Final

CUSTOMER: Final = "Customer"
BILLING_CLERK: Final = "Billing clerk"
ACCOUNTANT: Final = "Accountant"
PAYMENTS_OPERATOR: Final = "Payments operator"
FRAUD_ANALYST: Final = "Fraud analyst"
SECURITY_OFFICER: Final = "Security officer"
AUDITOR: Final = "Auditor"


def _crud(model: str, actions: str) -> set[str]:
    """``_crud("billing.invoice", "vac")`` -> view, add and change permissions of the model."""
    app_label, model_name = model.split(".")
    names = {"v": "view", "a": "add", "c": "change", "d": "delete"}
    return {f"{app_label}.{names[a]}_{model_name}" for a in actions}


# Permissions that are not a model's view/add/change/delete.
CUSTOM_PERMISSIONS: Final = frozenset(
    {
        "security.unlock_account",
        "security.change_roles",
        "security.reset_credentials",
        "security.manage_api_clients",
        "payments.view_key_status",
        "documents.download_invoice_documents",
        "documents.verify_invoice_documents",
        "payments.refund_payment",
        "payments.decide_risk",
        "payments.promote_fraud_model",
        "delivery.retry_delivery",
        "documents.retry_document",
        "privacy.decide_erasure",
        "audit.contain_incident",
        "audit.generate_review",
        "audit.sign_off_review",
        "webhooks.roll_webhook_secret",
        "webhooks.replay_webhook_delivery",
    }
)

_AUDIT_READ = _crud("audit.auditevent", "v") | _crud("audit.auditcheckpoint", "v")
_LOCKOUT_READ = (
    _crud("axes.accessattempt", "v")
    | _crud("axes.accessfailurelog", "v")
    | _crud("axes.accesslog", "v")
)
# Incidents and quarterly reviews (audit/incidents/, audit/reviews/): what an auditor reads.
_GOVERNANCE_READ = (
    _crud("audit.incident", "v")
    | _crud("audit.incidententry", "v")
    | _crud("audit.securityreview", "v")
    | _crud("audit.reviewfinding", "v")
    | _crud("payments.cardpaymentfreeze", "v")
)
# Every attempt of every background job, failed ones included.
_JOBS_READ = _crud("security.jobattempt", "v")
_BACKUPS_READ = _crud("audit.backuprun", "v") | _crud("audit.restoretest", "v")
# Webhook endpoints (URLs and chosen events; never a secret), the event log, deliveries.
_WEBHOOKS_READ = (
    _crud("webhooks.webhookendpoint", "v")
    | _crud("webhooks.event", "v")
    | _crud("webhooks.webhookdelivery", "v")
    | _crud("webhooks.webhookattempt", "v")
)
_BILLING_READ = (
    _crud("billing.companyprofile", "v")
    | _crud("billing.customer", "v")
    | _crud("billing.invoiceseries", "v")
    | _crud("billing.invoice", "v")
    | _crud("billing.invoiceline", "v")
)

# role -> the exact permissions its group holds.
ROLES: Final[dict[str, frozenset[str]]] = {
    # Customers use the portal only; the admin is closed to them.
    CUSTOMER: frozenset(),
    # Prepares customers and invoices; finalizing freezes them, so no delete of
    # invoices or customers (corrections are credit notes).
    BILLING_CLERK: frozenset(
        _crud("billing.companyprofile", "v")
        | _crud("billing.customer", "vac")
        | _crud("billing.portalaccount", "vac")
        | _crud("billing.invoiceseries", "v")
        | _crud("billing.invoice", "vac")
        | _crud("billing.invoiceline", "vacd")
        | _crud("delivery.customerpgpkey", "vad")
        | _crud("delivery.delivery", "v")
        # "Retry now" on an invoice whose signed PDF or delivery failed for good; the
        # signed PDF of the invoices the clerk issues (docs/decisions.md, 58).
        | {
            "delivery.retry_delivery",
            "documents.retry_document",
            "documents.download_invoice_documents",
        }
    ),
    # Reads the books and downloads signed documents; changes nothing.
    ACCOUNTANT: frozenset(
        _BILLING_READ
        | _crud("documents.invoicedocument", "v")
        | {"documents.download_invoice_documents", "documents.verify_invoice_documents"}
    ),
    # Sees what is owed and the saved cards (brand, last 4, expiry only) to run payments.
    # Also refunds (step-up in the service) and works the bank-transfer review list.
    PAYMENTS_OPERATOR: frozenset(
        _crud("billing.customer", "v")
        | _crud("billing.invoice", "v")
        | _crud("payments.paymentmethod", "v")
        | _crud("payments.payment", "v")
        | _crud("payments.refund", "v")
        | _crud("payments.bankfile", "va")
        | _crud("payments.bankline", "vc")
        | {"payments.refund_payment"}
    ),
    # Sees customers, invoices and saved cards to judge flagged payments; approves or
    # declines payments held for review (step-up in the service) and sets the thresholds.
    FRAUD_ANALYST: frozenset(
        _crud("billing.customer", "v")
        | _crud("billing.invoice", "v")
        | _crud("payments.paymentmethod", "v")
        | _crud("payments.payment", "v")
        | _crud("payments.risksettings", "vc")
        | _crud("payments.riskhold", "vc")
        | _crud("payments.fraudlabel", "v")
        | _crud("payments.fraudmodelversion", "v")
        | {"payments.decide_risk", "payments.promote_fraud_model"}
        # Rules (versioned), allow/block lists and the engine's evaluations (issue 24).
        | _crud("payments.fraudrule", "vac")
        | _crud("payments.fraudruleversion", "v")
        | _crud("payments.fraudlistentry", "vac")
        | _crud("payments.riskevaluation", "v")
    ),
    # Manages accounts, roles (through the step-up service), lockouts and factors;
    # reads the audit log. Changing an account's groups in the admin form is not
    # possible: roles change only through security.services.set_user_roles.
    SECURITY_OFFICER: frozenset(
        _crud("security.user", "vc")
        # API clients: registered, changed and removed only by security officers.
        | _crud("security.apiclient", "vacd")
        | {"security.manage_api_clients"}
        | _crud("auth.group", "v")
        | _crud("security.usersession", "v")
        | _crud("otp_totp.totpdevice", "v")
        | _crud("django_otp_webauthn.webauthncredential", "v")
        | _LOCKOUT_READ
        | _AUDIT_READ
        | _JOBS_READ
        | _BACKUPS_READ
        | _crud("privacy.erasurerequest", "vc")
        | {"privacy.decide_erasure"}
        # Security alerts (e.g. the vault's keys failing): closed once the cause is fixed.
        | _crud("security.securityalert", "vc")
        # Incidents (containment with step-up) and the quarterly review (sign-off, step-up).
        | _GOVERNANCE_READ
        | _crud("audit.incident", "vac")
        | _crud("audit.reviewfinding", "vac")
        | {"audit.contain_incident", "audit.generate_review", "audit.sign_off_review"}
        | {
            "security.unlock_account",
            "security.change_roles",
            "security.reset_credentials",
            "payments.view_key_status",
        }
        # Integrations: webhook endpoints send customers' events out of the platform, so
        # the officers who register API clients register them too (step-up, audited;
        # docs/decisions.md), roll their secrets and replay deliveries.
        | _WEBHOOKS_READ
        | _crud("webhooks.webhookendpoint", "ac")
        | {"webhooks.roll_webhook_secret", "webhooks.replay_webhook_delivery"}
    ),
    # Independent reviewer: reads everything of evidence value, changes nothing.
    AUDITOR: frozenset(
        _AUDIT_READ
        | _JOBS_READ
        | _BACKUPS_READ
        | _crud("privacy.erasurerequest", "v")
        | _GOVERNANCE_READ
        | _crud("security.securityalert", "v")
        | _BILLING_READ
        | _crud("documents.invoicedocument", "v")
        | _crud("security.user", "v")
        | _crud("auth.group", "v")
        | _LOCKOUT_READ
        | {"payments.view_key_status"}
        | _crud("payments.payment", "v")
        | _crud("payments.refund", "v")
        | _crud("payments.bankfile", "v")
        | _crud("payments.bankline", "v")
        | _crud("payments.risksettings", "v")
        | _crud("payments.riskhold", "v")
        | _crud("payments.fraudlabel", "v")
        | _crud("payments.fraudmodelversion", "v")
        | _WEBHOOKS_READ
    ),
}
# Nobody holds payments.reveal_card: only the payment-processing service account may.

# A role holding any of these can move money, read card data or hand out privileges:
# granting it needs a second security officer's approval (four eyes).
FOUR_EYES_PERMISSIONS: Final = frozenset(
    {
        "payments.refund_payment",
        "payments.decide_risk",
        "payments.view_paymentmethod",
        "payments.change_bankline",
        "payments.add_bankfile",
        "payments.reveal_card",
        "security.change_roles",
        "security.reset_credentials",
    }
)
FOUR_EYES_ROLES: Final = tuple(
    name for name, perms in ROLES.items() if perms & FOUR_EYES_PERMISSIONS
)

ROLE_NAMES: Final = tuple(ROLES)
STAFF_ROLES: Final = tuple(name for name in ROLES if name != CUSTOMER)


# What each role is for: docs/roles.md and the change-roles page show these (a test keeps
# them equal).
ROLE_PURPOSES: Final[dict[str, str]] = {
    CUSTOMER: ("portal only (own invoices, payments, cards, MFA); no admin access at all"),
    BILLING_CLERK: (
        "prepares customers, portal accounts and invoices; no deletes of customers or "
        "invoices (corrections are credit notes); on an invoice whose signed PDF or "
        'delivery failed for good, "Retry now" (`documents.retry_document`, '
        "`delivery.retry_delivery`); opens the signed PDF of any invoice from its page "
        "(`documents.download_invoice_documents`)"
    ),
    ACCOUNTANT: ("reads the books and downloads signed documents; changes nothing"),
    PAYMENTS_OPERATOR: (
        "sees what is owed and saved cards (brand, last 4, expiry; never the number)"
    ),
    FRAUD_ANALYST: (
        "sees customers, invoices and saved cards to judge flagged payments; approves or "
        "declines payments held for risk review (`payments.decide_risk`, step-up); edits "
        "the risk thresholds (risk settings, audited); makes a trained fraud model version "
        "live (`payments.promote_fraud_model`, step-up, audited; a worse one only with a reason); "
        "edits the fraud rules (versioned) and the allow/block lists; reads the engine's "
        "evaluations, backtests and fraud reports"
    ),
    SECURITY_OFFICER: (
        "accounts, roles (step-up page; four eyes for money, card-data and privilege "
        "roles), lockouts (step-up page), resets of another account's password and second "
        "factors (step-up page; the owner chooses the new ones), MFA devices (read, never "
        "a secret), sessions, key status, audit log (read), background-job attempts "
        "(read), security alerts (read; resolve once fixed; emailed when one opens), webhook "
        "endpoints (register, change, roll the secret: step-up page; the secret is shown "
        "once) and their deliveries (read; replay)"
    ),
    AUDITOR: (
        "independent read access to the audit log, the books, accounts, lockouts, the "
        "risk thresholds, fraud labels and model versions, background-job attempts, "
        "security alerts, webhook endpoints, events and deliveries; changes nothing"
    ),
}


def purposes_markdown() -> str:
    """The "what each role is for" table of docs/roles.md (a test keeps them equal)."""
    rows = [f"| {role} | {ROLE_PURPOSES[role]} |" for role in ROLE_NAMES]
    return "\n".join(["| role | purpose |", "|---|---|", *rows])


def matrix_markdown() -> str:
    """The matrix as the Markdown table docs/roles.md holds (a test keeps them equal)."""
    models: dict[str, set[str]] = {}
    extra: dict[str, set[str]] = {}
    for role, perms in ROLES.items():
        for perm in perms:
            app_label, codename = perm.split(".", 1)
            _action, _, model = codename.partition("_")
            if perm not in CUSTOM_PERMISSIONS:
                models.setdefault(f"{app_label}.{model}", set()).add(role)
            else:
                extra.setdefault(perm, set()).add(role)
    letters = {"view": "v", "add": "a", "change": "c", "delete": "d"}
    header = "| model / permission | " + " | ".join(ROLE_NAMES) + " |"
    rule = "|---|" + "---|" * len(ROLE_NAMES)
    rows = []
    for model in sorted(models):
        cells = []
        for role in ROLE_NAMES:
            granted = "".join(
                letter
                for action, letter in letters.items()
                if f"{model.split('.')[0]}.{action}_{model.split('.')[1]}" in ROLES[role]
            )
            cells.append(granted or "-")
        rows.append(f"| {model} | " + " | ".join(cells) + " |")
    for perm in sorted(extra):
        cells = ["yes" if perm in ROLES[role] else "-" for role in ROLE_NAMES]
        rows.append(f"| {perm} | " + " | ".join(cells) + " |")
    return "\n".join([header, rule, *rows])
