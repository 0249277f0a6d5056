"""Accounts and their security state. Security is the ground floor: it imports no domain app."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.contrib.auth.models import UserManager as DjangoUserManager
from django.db import models, transaction
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from security import mfa
from security.identity import normalize_login


class UserManager(DjangoUserManager["User"]):
    """Django's, with login names normalized (``security.identity``) on the way in and on
    every lookup by natural key, the sign-in's included."""

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        return normalize_login(email) if email else ""

    def get_by_natural_key(self, username: Any) -> User:
        return self.get(**{self.model.USERNAME_FIELD: normalize_login(username)})


class User(AbstractUser):  # type: ignore[django-manager-missing]
    """A person who signs in: staff in the admin, or a customer in the portal.

    A customer user's link to its customer lives in ``billing`` (which may import
    ``security``, never the other way round). Usernames and e-mail addresses are
    stored normalized (``security.identity.normalize_login``).
    """

    objects: ClassVar[UserManager] = UserManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        db_table = "security_user"
        permissions = [
            ("unlock_account", "Can lift a login lockout"),
            ("change_roles", "Can change the roles of an account"),
            (
                "reset_credentials",
                "Can reset another account's password and second factors (step-up)",
            ),
        ]

    def __str__(self) -> str:
        return self.get_username()

    @classmethod
    def normalize_username(cls, username: Any) -> str:
        return normalize_login(username)


class PasswordHistory(models.Model):
    """One password a user has had, as its salted hash (never the password itself).

    The newest rows are compared against a new password so that none of the last
    ``SECURITY_PASSWORD_HISTORY`` passwords is reused (PCI DSS 8.3.7).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_history"
    )
    password_hash = models.CharField(max_length=256)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "password history"

    def __str__(self) -> str:
        return f"password of {self.user_id} set {self.created_at:%Y-%m-%d %H:%M}"


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A set of single-use backup codes, stored as SHA-256 hashes.

    django-otp's own static device stores its codes in clear; these codes are
    shown once at enrollment and only their hashes are kept. They carry 50 bits of
    randomness each, so an unsalted fast hash is enough (no guessing attack can
    search that space, and the device is throttled).
    """

    class Meta(Device.Meta):
        verbose_name = "backup code set"

    def get_throttle_factor(self) -> int:
        return 1

    def verify_token(self, token: object) -> bool:
        """django-otp's check, which django-otp asks of the device itself (as of its own
        static device): true once per code, which is used up; false for anything else
        (throttled)."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        code = mfa.normalize_code(token)
        with transaction.atomic():
            deleted = 0
            if mfa.is_backup_code(code):
                deleted, _ = self.codes.filter(code_hash=mfa.hash_backup_code(code)).delete()
            if deleted:
                self.throttle_reset(commit=False)
                self.set_last_used_timestamp(commit=False)
                self.save()
            else:
                self.throttle_increment(commit=True)
        return bool(deleted)


class BackupCode(models.Model):
    """One unused backup code of a set, as the SHA-256 of its normalized text."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="backup_code_unique")
        ]

    def __str__(self) -> str:
        return f"backup code of set {self.device_id}"


class UserSession(models.Model):
    """A signed-in session a user can see and end (PCI DSS 8.2.8).

    The session itself lives in Django's session store; this row lists it so a
    user can end sessions other than the current one, and carries the absolute
    start time that the 12-hour lifetime is measured from.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sessions"
    )
    session_key = models.CharField(max_length=40, unique=True)
    created_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self) -> str:
        return f"session of {self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


class JobAttempt(models.Model):
    """One run of a background job (a django-q2 task), kept for staff to see.

    django-q2 keeps one row per job and overwrites it on every retry, and keeps
    nothing for a job whose cluster died under it. Here each attempt stays: taken by
    the broker (``security.jobs``), finished by the cluster's monitor, or found lost
    when the job is taken again.
    """

    class Outcome(models.TextChoices):
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        LOST = "lost", "Lost (its worker or cluster stopped before it ended)"

    task_id = models.CharField(max_length=32, editable=False)
    func = models.CharField("job", max_length=200, editable=False)
    task_name = models.CharField(max_length=100, editable=False)
    args = models.JSONField(default=list, editable=False, help_text="Its positional arguments.")
    attempt = models.PositiveSmallIntegerField(editable=False)
    started_at = models.DateTimeField(editable=False, help_text="When the cluster took it.")
    retry_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When it is taken again unless it succeeds first.",
    )
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)
    outcome = models.CharField(
        max_length=10, choices=Outcome.choices, default=Outcome.RUNNING, editable=False
    )
    gave_up = models.BooleanField(
        default=False, editable=False, help_text="No attempt follows: the job failed for good."
    )
    error = models.CharField(max_length=500, blank=True, editable=False)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["task_id", "attempt"], name="job_attempt_once")
        ]
        indexes = [
            models.Index(fields=["func", "started_at"], name="job_attempt_func_idx"),
            models.Index(fields=["outcome", "started_at"], name="job_attempt_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.func} attempt {self.attempt}: {self.outcome}"


class SecurityAlert(models.Model):
    """Something the security officers must look at now (e.g. the vault's keys failing).

    One row per kind of trouble: raised again, it counts and stays open; the officers
    are emailed at most every ``SECURITY_ALERT_EMAIL_MINUTES``; a security officer
    closes it once the cause is fixed (``security.services.resolve_security_alert``).
    """

    kind = models.CharField(max_length=100, unique=True, editable=False)
    summary = models.CharField(max_length=300, editable=False)
    detail = models.CharField(max_length=1000, blank=True, editable=False)
    first_raised_at = models.DateTimeField(editable=False)
    last_raised_at = models.DateTimeField(editable=False)
    count = models.PositiveIntegerField(default=1, editable=False)
    emailed_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True, editable=False)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )

    class Meta:
        ordering = ["-last_raised_at"]

    def __str__(self) -> str:
        state = "resolved" if self.resolved_at else "open"
        return f"{self.summary} ({state})"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None


class RoleGrant(models.Model):
    """A role change that waits for a second security officer (four eyes).

    Granting a role that can move money or read card data (``roles.FOUR_EYES_ROLES``) is
    requested by one security officer and applied only when another approves it
    (``security.services.decide_role_grant``); ``before`` is the account's roles when it
    was asked, so an approval never applies to roles that changed meanwhile.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for a second security officer"
        APPROVED = "approved", "Approved and applied"
        REJECTED = "rejected", "Rejected"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="role_grants"
    )
    roles = models.JSONField(help_text="The account's roles once approved (the whole set).")
    before = models.JSONField(help_text="The account's roles when the grant was asked for.")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, editable=False
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(status="pending"),
                name="security_rolegrant_one_pending",
            ),
            models.CheckConstraint(
                condition=~models.Q(decided_by=models.F("requested_by")),
                name="security_rolegrant_four_eyes",
            ),
        ]

    def __str__(self) -> str:
        return f"roles {', '.join(self.roles) or 'none'} for {self.user_id} ({self.status})"


class IdempotencyKey(models.Model):
    """An API POST's ``Idempotency-Key`` and the first answer to it (security.api.idempotency).

    One row per key and owner (the application and the user the token acts for). While the
    first request runs, ``status_code`` is null; then it holds the answer a retry is given
    again until ``expires_at`` (at least 24 hours), when the daily job deletes the row.
    """

    owner = models.CharField(max_length=64, help_text="application id:user id of the token")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    endpoint = models.CharField(max_length=300, help_text="The endpoint's URL pattern.")
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of method, path and body.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(blank=True, default=b"")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["owner", "key"], name="security_idempotency_unique")
        ]

    def __str__(self) -> str:
        return f"idempotency key of {self.owner} for {self.method} {self.endpoint}"


class ApiClient(models.Model):
    """Tillit's facts about an OAuth client (django-oauth-toolkit's ``Application``): what
    kind it is and which scopes it may be granted (security.services.clients registers them)."""

    class Kind(models.TextChoices):
        INTEGRATION = "integration", "Server integration (client credentials)"
        CUSTOMER_APP = "customer_app", "App for customers (authorization code + PKCE)"

    application = models.OneToOneField(
        "oauth2_provider.Application", on_delete=models.CASCADE, related_name="tillit_client"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    allowed_scopes = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        permissions = [("manage_api_clients", "Can register, change and remove API clients")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.application_id}"


class ApiRateCounter(models.Model):
    """An API throttle's count of requests in its current window (security.api.throttling):
    one row per key (``client:<application id>`` or ``user:<user id>``), written by one
    upsert per request (``db.counters``)."""

    key = models.CharField(max_length=64, primary_key=True)
    window_start = models.BigIntegerField(help_text="Unix time the window began.")
    hits = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.key}: {self.hits} since {self.window_start}"


class ApiStepUp(models.Model):
    """How the customer user behind an authorization-code grant last proved who they were in
    the portal session that consented: when that session last authenticated (its sign-in or
    a later second factor: the ID token's ``auth_time``) and when it last confirmed a second
    factor (RFC 9470, our step-up rule, decision 74; None without one). Recorded on the
    grant at consent, copied to each access token issued from it, and on to each token a
    refresh issues, so that refreshing never makes either fresher."""

    grant = models.OneToOneField(
        "oauth2_provider.Grant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tillit_step_up",
    )
    access_token = models.OneToOneField(
        "oauth2_provider.AccessToken",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tillit_step_up",
    )
    mfa_verified_at = models.DateTimeField(null=True, blank=True)
    # None on the rows recorded before it was kept (their ID tokens say the last sign-in).
    authenticated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(grant__isnull=True) ^ models.Q(access_token__isnull=True),
                name="security_apistepup_grant_or_token",
            )
        ]

    def __str__(self) -> str:
        if self.mfa_verified_at is None:
            return "no second factor"
        return f"second factor at {self.mfa_verified_at:%Y-%m-%d %H:%M:%S}"
