"""Reads and checks of the security app: devices, sessions, step-up freshness, the ID-token
signing key's age."""

from __future__ import annotations

import datetime
import operator
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.module_loading import import_string
from django_otp import device_classes, devices_for_user
from django_otp.models import Device
from django_otp.plugins.otp_totp.models import TOTPDevice

from db.compiled import compiled
from security.models import BackupCodeDevice, PasswordHistory, RoleGrant, UserSession
from security.oidc_key_files import key_id

MFA_VERIFIED_AT_KEY = "security_mfa_verified_at"
# Set on an API request by its bearer check (security.api.authentication) to when the
# customer behind the token confirmed a second factor before consenting, or None
# (decision 74); such a request's step-up is the token's, never a session's.
API_SECOND_FACTOR_ATTRIBUTE = "tillit_api_second_factor_at"
SESSION_STARTED_AT_KEY = "security_session_started_at"
SESSION_REFRESHED_AT_KEY = "security_session_refreshed_at"

User = get_user_model()


def recent_password_hashes(*, user: Any) -> list[str]:
    """The hashes of the user's last SECURITY_PASSWORD_HISTORY passwords, newest first."""
    return list(
        PasswordHistory.objects.filter(user=user).values_list("password_hash", flat=True)[
            : settings.SECURITY_PASSWORD_HISTORY
        ]
    )


def confirmed_devices(*, user: Any) -> list[Device]:
    """Every confirmed second factor of the user (TOTP, backup codes, passkeys)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    return list(devices_for_user(user, confirmed=True))


def has_second_factor(*, user: Any) -> bool:
    """True when the user has at least one confirmed TOTP device or passkey.

    A set of backup codes alone does not count: it is a fallback, not a factor
    a user enrolls by itself.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return _second_factor.first(user.pk) is not None


# The attribute the sign-in backend annotates the request's user with: whether a
# second factor is enrolled, read in the same query as the user.
REQUEST_USER_MFA = "tillit_mfa_enrolled"


def enrolled_factor(user_id: Any) -> Q:
    """True for a user with a confirmed factor of any kind but backup codes (EXISTS per
    kind); ``user_id`` is a value or an ``OuterRef``."""
    factors = [
        Exists(model.objects.filter(user_id=user_id, confirmed=True))
        for model in device_classes()
        if not issubclass(model, BackupCodeDevice)
    ]
    # Starting from "pk IS NULL" (never true): with no factor kinds, nothing is found.
    return reduce(operator.or_, factors, Q(pk=None))


@compiled(int)
def _second_factor(user_id: int) -> Any:
    """Asked on every signed-in request, so compiled once per process."""
    return User.objects.filter(pk=user_id).filter(enrolled_factor(user_id)).values("pk")[:1]


def pending_totp_device(*, user: Any) -> TOTPDevice | None:
    """The user's TOTP device awaiting its first code, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()


def backup_codes_left(*, user: Any) -> int:
    """How many unused backup codes the user has."""
    device = BackupCodeDevice.objects.filter(user=user, confirmed=True).first()
    return device.codes.count() if device else 0


def device_of_user(*, user: Any, persistent_id: str) -> Device | None:
    """The user's confirmed device with this persistent id, or None (never another's)."""
    if not isinstance(persistent_id, str) or len(persistent_id) > 100:
        return None
    try:
        device = Device.from_persistent_id(persistent_id)
    except Exception:  # malformed ids name no device
        return None
    if device is None or device.user_id != user.pk or not device.confirmed:
        return None
    return device


def is_session_verified(request: HttpRequest) -> bool:
    """True when this session has verified a second factor (django-otp)."""
    is_verified = getattr(request.user, "is_verified", None)
    return bool(callable(is_verified) and is_verified())


def is_step_up_fresh(request: HttpRequest) -> bool:
    """True when this session verified a second factor within SECURITY_STEP_UP_SECONDS,
    or, for an API request, when the customer behind its bearer token confirmed one that
    recently before consenting to the app (the same window; decision 74)."""
    if hasattr(request, API_SECOND_FACTOR_ATTRIBUTE):  # a bearer token's, never a session's
        token_verified_at = getattr(request, API_SECOND_FACTOR_ATTRIBUTE)
        if token_verified_at is None:
            return False
        verified_at = token_verified_at.timestamp()
    elif is_session_verified(request):
        verified_at = request.session.get(MFA_VERIFIED_AT_KEY)
        if not isinstance(verified_at, int | float):
            return False
    else:
        return False
    age = timezone.now().timestamp() - verified_at
    return 0 <= age <= settings.SECURITY_STEP_UP_SECONDS


def session_started_at(request: HttpRequest) -> float | None:
    """When this session signed in (Unix time), or None."""
    started = request.session.get(SESSION_STARTED_AT_KEY)
    return float(started) if isinstance(started, int | float) else None


def session_second_factor_at(request: HttpRequest) -> float | None:
    """When this session last verified a second factor (Unix time), or None."""
    if not is_session_verified(request):
        return None
    verified_at = request.session.get(MFA_VERIFIED_AT_KEY)
    return float(verified_at) if isinstance(verified_at, int | float) else None


def needs_second_factor(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Whether this user must pass a second factor to use the site: staff always,
    customers when they have enrolled one."""
    if not user.is_authenticated:
        return False
    return bool(getattr(user, "is_staff", False)) or has_second_factor(user=user)


def request_needs_second_factor(request: HttpRequest) -> bool:
    """``needs_second_factor`` for the signed-in user of this request, looked up once
    per request (the middleware and the view's guard both ask)."""
    cached = getattr(request, "_tillit_needs_second_factor", None)
    if cached is None:
        user = request.user
        # The sign-in backend reads the user with this fact (``REQUEST_USER_MFA``).
        enrolled = getattr(user, REQUEST_USER_MFA, None)
        if isinstance(enrolled, bool) and user.is_authenticated:
            cached = bool(getattr(user, "is_staff", False)) or enrolled
        else:
            cached = needs_second_factor(user)
        request._tillit_needs_second_factor = cached  # type: ignore[attr-defined]
    return bool(cached)


def is_staff_account(user: Any) -> bool:
    """Staff in any sense: the staff or superuser flag, or a staff role (a group other than
    Customer). Such an account may never act as a customer (no portal account)."""
    from security.roles import STAFF_ROLES

    if getattr(user, "is_staff", False) or getattr(user, "is_superuser", False):
        return True
    if user is None or getattr(user, "pk", None) is None:
        return False
    return bool(user.groups.filter(name__in=STAFF_ROLES).exists())


def customer_may_save_card(*, user: Any) -> bool:
    """The vault asks this before saving a card: MFA first when the setting demands it."""
    if not settings.SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS:
        return True
    return has_second_factor(user=user)


def active_sessions(*, user: Any) -> list[UserSession]:
    """The user's signed-in sessions, most recently used first."""
    return list(UserSession.objects.filter(user=user).order_by("-last_seen_at"))


def staff_q() -> Q:
    """Staff in any sense, as a filter on users: the staff or superuser flag, or a staff
    role (``is_staff_account`` for one user). Join through groups: filter ``pk__in`` a
    subquery of it to count each user once."""
    from security.roles import STAFF_ROLES

    return Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name__in=STAFF_ROLES)


def staff_users() -> Any:
    """Every staff account (``staff_q``), enabled or not, each once."""
    return User.objects.filter(pk__in=User.objects.filter(staff_q()).values("pk"))


def dormant_staff_accounts(*, now: Any = None) -> Any:
    """Staff accounts (``staff_q``), enabled or not, with no login for
    SECURITY_DORMANT_STAFF_DAYS (or never, since joining that long ago): the one
    definition the dashboards, the quarterly review and the daily job share."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.SECURITY_DORMANT_STAFF_DAYS)
    return staff_users().filter(
        Q(last_login__lt=cutoff) | Q(last_login__isnull=True, date_joined__lt=cutoff)
    )


def dormant_staff(*, now: Any = None) -> list[Any]:
    """The still enabled ``dormant_staff_accounts``, by username."""
    return list(dormant_staff_accounts(now=now).filter(is_active=True).order_by("username"))


def staff_without_second_factor() -> Any:
    """Active staff accounts (``staff_q``) without a confirmed factor (backup codes alone
    do not count), by username: ``SELECT … FROM security_user WHERE is_active AND pk IN
    (staff) AND NOT (EXISTS totp OR EXISTS passkey)``."""
    return (
        staff_users()
        .filter(is_active=True)
        .exclude(enrolled_factor(OuterRef("pk")))
        .order_by("username")
    )


def needs_enrollment(user: Any) -> bool:
    """Staff without a second factor must enroll one before anything else."""
    return bool(user.is_authenticated and user.is_staff and not has_second_factor(user=user))


def open_security_alerts() -> list[Any]:
    """The security alerts not resolved yet, the latest first (the admin's banner)."""
    from security.models import SecurityAlert

    return list(SecurityAlert.objects.filter(resolved_at__isnull=True).order_by("-last_raised_at"))


def pending_role_grants() -> list[RoleGrant]:
    """Role grants waiting for a second security officer, oldest first."""
    return list(
        RoleGrant.objects.filter(status=RoleGrant.Status.PENDING)
        .select_related("user", "requested_by")
        .order_by("requested_at", "pk")
    )


def language_of(user: Any) -> str | None:
    """The language the user reads (a customer's profile says it), or None when the
    account has none of its own. Asked through SECURITY_USER_LANGUAGE, the dotted path of
    a function of the user: the domain that keeps the preference answers it."""
    path = getattr(settings, "SECURITY_USER_LANGUAGE", "")
    if not path:
        return None
    language = import_string(path)(user)
    return str(language) if language else None


def request_users() -> Any:
    """Users as a request reads its own: with whether a second factor is enrolled (the
    session policy asks on every request) and the relations
    ``SECURITY_REQUEST_USER_RELATED`` names (the portal account and its customer: every
    portal page asks)."""
    return (
        get_user_model()
        ._default_manager.select_related(*settings.SECURITY_REQUEST_USER_RELATED)
        .annotate(
            **{REQUEST_USER_MFA: ExpressionWrapper(enrolled_factor(OuterRef("pk")), BooleanField())}
        )
    )


@dataclass(frozen=True)
class AccessFigures:
    """Accounts for the security officer's and the auditor's dashboard."""

    failed_logins_24h: int
    lockouts_24h: int
    """Account lockouts and blocked addresses in the last 24 hours (the audit log's)."""
    staff_without_factor: list[Any]
    dormant_staff: list[Any]


def access_figures(*, now: Any = None) -> AccessFigures:
    """Sign-in failures (django-axes' log) and lockouts (the audit log's, which is
    authoritative: ``audit.selectors.lockouts_since``) of the last 24 hours, active staff
    without a second factor, dormant staff: four queries."""
    from axes.models import AccessFailureLog

    from audit.selectors import lockouts_since

    now = now or timezone.now()
    since = now - timedelta(hours=24)
    failed = AccessFailureLog.objects.filter(attempt_time__gte=since).count()
    without = list(staff_without_second_factor().only("pk", "username", "first_name", "last_name"))
    return AccessFigures(
        failed_logins_24h=failed,
        lockouts_24h=lockouts_since(since),
        staff_without_factor=without,
        dormant_staff=dormant_staff(now=now),
    )


def oidc_signing_key_in_use() -> tuple[str, datetime.datetime | None]:
    """The ID-token signing key this process signs with: its id (the ``kid`` of its ID
    tokens and the JWKS) and when its file was written (a rotation writes a new one).
    ``("", None)`` without OpenID Connect; no time for a key given inline, nor between a
    rotation and the restart that makes its new key the one in use."""
    pem = str(settings.OAUTH2_PROVIDER.get("OIDC_RSA_PRIVATE_KEY") or "")
    if not pem:
        return "", None
    since = None
    if settings.OIDC_KEY_FILE is not None:
        path = Path(settings.OIDC_KEY_FILE)
        try:
            if path.read_text(encoding="ascii").strip() == pem.strip():
                since = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.UTC)
        except (OSError, UnicodeDecodeError):
            since = None
    return key_id(pem), since
