"""Tillit settings: the one place that reads the environment.

Every value comes from the environment (or a ``*_FILE`` path for secrets) and
bad values fail loudly with ImproperlyConfigured. ``TILLIT_MODE`` selects
``development`` (the default: the zero-setup demo and the test suite) or
``production`` (refuses to start without a secret key and passes
``manage.py check --deploy``). See ``.env.example`` for every variable.
"""

from __future__ import annotations

import secrets
import socket
import sys
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("TILLIT_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

MODE = env.str("TILLIT_MODE", default="development")
if MODE not in {"development", "production"}:
    raise ImproperlyConfigured(f"TILLIT_MODE must be 'development' or 'production', not {MODE!r}")
PRODUCTION = MODE == "production"


def _bool(name: str, *, default: bool) -> bool:
    """A strict boolean: true/false, yes/no, on/off, 1/0; anything else is refused."""
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def _int(name: str, *, default: int, minimum: int = 0) -> int:
    """A whole number not below ``minimum``; anything else is refused by name."""
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


TESTING = "pytest" in sys.modules or _bool("TILLIT_TESTING", default=False)


def _secret(name: str, *, default: str | None = None) -> str | None:
    """Read a secret from NAME or from the file named by NAME_FILE."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        try:
            return Path(file_path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE cannot be read: {exc}") from exc
    return env.str(name, default=default)


def _demo_secret_key() -> str:
    """The demo keeps a generated key under var/ so sessions survive restarts."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret("SECRET_KEY")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) is required when TILLIT_MODE=production"
        )
    SECRET_KEY = _demo_secret_key()
if PRODUCTION and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters in production")

DEBUG = _bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when TILLIT_MODE=production")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS",
    default=[] if PRODUCTION else ["127.0.0.1", "localhost", "testserver"],
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when TILLIT_MODE=production")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The admin site itself is security's: it refuses sessions without a verified
    # second factor (see security/admin_site.py).
    "security.admin_apps.TillitAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves the static files in every mode; runserver leaves them to it.
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_q",
    "csp",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    # The API (security/api/): Django REST framework, OAuth 2.0 / OIDC, OpenAPI.
    "rest_framework",
    "oauth2_provider",
    "drf_spectacular",
    # Ground floor first: security and audit import no domain app.
    "security",
    "audit",
    "billing",
    "billing.documents",
    "billing.delivery",
    "billing.privacy",
    "billing.webhooks",
    "payments",
]

MIDDLEWARE = [
    # First: every answer (errors included) carries the request's id (security/api/requests.py).
    "security.api.requests.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files (WhiteNoise), answered before sessions or the database are touched.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads a parameter (sessions, django-axes at sign-in, searches).
    "security.middleware.RefuseNulMiddleware",
    # django-csp's, with the shared header built once (security.middleware).
    "security.middleware.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # config.middleware: the browser's layers, passed by on /api/ (bearer tokens only:
    # no session, session user, second factor, session policy, customer language or
    # messages there; docs/decisions.md, 78). Django's own run on every other request.
    "config.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # On every request: the API's views are exempt (REST framework's), any other is not.
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.middleware.AuthenticationMiddleware",
    "config.middleware.OTPMiddleware",
    "config.middleware.SessionPolicyMiddleware",
    # Cache-Control: no-store on every answer to a signed-in request and on every API answer.
    "security.middleware.NoStoreMiddleware",
    # A signed-in customer's pages in their profile's language (billing/portal/shell.py).
    "config.middleware.CustomerLanguageMiddleware",
    "config.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a lockout into its answer.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it refuses a locked-out account or address before any
# password is checked. Then usernames (staff), then e-mail addresses (customers).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "security.backends.UsernameBackend",
    "security.backends.EmailBackend",
    "django_otp_webauthn.backends.WebAuthnBackend",
]
# Read with the signed-in user in the one query of every request (security.backends):
# every portal page asks for the user's customer.
SECURITY_REQUEST_USER_RELATED = ["portal_account__customer"]
# Which language a user reads, for emails security sends (a customer's profile keeps it).
SECURITY_USER_LANGUAGE = "billing.selectors.language_for_user"
LOGIN_URL = "security:login"
# The front door: customers on to their invoices, staff to the admin.
LOGIN_REDIRECT_URL = "home"

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "security.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                # The customer shell (templates/base.html): navigation, language switch.
                "billing.portal.shell.shell",
            ],
        },
    },
]


def _local_postgres_url() -> str | None:
    """The test suite's default: the local server on 127.0.0.1:5432, if it answers."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return "postgres://postgres@127.0.0.1:5432/tillit"
    except OSError:
        return None


_database_url = env.str("DATABASE_URL", default="")
if not _database_url and TESTING:
    _database_url = _local_postgres_url() or ""
if not _database_url:
    if PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL is required when TILLIT_MODE=production")
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _database_url = f"sqlite:///{VAR_DIR / 'tillit.sqlite3'}"
try:
    DATABASES = {"default": env.db_url_config(_database_url)}
except Exception as exc:  # django-environ raises several types for bad URLs
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"]["ENGINE"] not in {
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
}:
    raise ImproperlyConfigured(
        "DATABASE_URL must name PostgreSQL (postgres://...) or SQLite (sqlite:///...)"
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections: a new PostgreSQL connection per request (a forked
# backend, authentication, session set-up) cost more than the request's queries.
# A connection is checked before reuse and dropped after this many seconds.
DATABASES["default"]["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend with a health check that reads the socket instead of sending
    # SELECT 1 at the start of every request (db/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "db.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo's SQLite serves the web server and the job cluster at once: WAL
    # lets readers run beside the writer, and IMMEDIATE transactions take the
    # write lock up front, so a busy writer is waited for (timeout) instead of
    # failing with "database is locked" on a read-to-write upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # Server-side parameters, and the hot statements (db.prepared) prepared on
    # each connection from their first run; no other statement is ever prepared
    # (psycopg's automatic preparing, left on its own, once made the bank-file import
    # 15 times slower). A card payment's PostgreSQL time halved (docs/decisions.md, 22).
    # DATABASE_SERVER_SIDE_BINDING=false: behind a transaction-mode pooler.
    _server_side = _bool("DATABASE_SERVER_SIDE_BINDING", default=True)
    DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = _server_side
    if _server_side:
        # Not None (psycopg would then refuse even an explicit prepare=True); never
        # reached, as the engine's cursor (db.prepared) always says whether to prepare.
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 2**31 - 1
if TESTING and DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = env.str(
        "TILLIT_TEST_DATABASE", default=f"test_{DATABASES['default']['NAME']}"
    )

# The vault's secret table behind a role of its own (docs/vault.md, "The vault role";
# docs/deploy.md): VAULT_DATABASE_URL, the same database as DATABASE_URL as the vault
# role, is the `vault` alias, the only connection that reads card ciphertexts. Unset
# (the demo, a simple install): no second alias, the vault's table is read on default.
# DATABASE_WEB_ROLE and VAULT_DATABASE_ROLE (default: VAULT_DATABASE_URL's user) name the
# roles whose privileges the migrations (or `manage.py grant_vault_role`) set.
_vault_database_url = env.str("VAULT_DATABASE_URL", default="")
if _vault_database_url:
    try:
        _vault_database = env.db_url_config(_vault_database_url)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ImproperlyConfigured(
            f"VAULT_DATABASE_URL is not a valid database URL: {exc}"
        ) from exc
    if not DATABASES["default"]["ENGINE"].endswith("postgresql") or not _vault_database[
        "ENGINE"
    ].endswith("postgresql"):
        raise ImproperlyConfigured(
            "VAULT_DATABASE_URL needs PostgreSQL for both it and DATABASE_URL (a role of its own)"
        )
    if (_vault_database["NAME"], _vault_database.get("HOST"), _vault_database.get("PORT")) != (
        DATABASES["default"]["NAME"],
        DATABASES["default"].get("HOST"),
        DATABASES["default"].get("PORT"),
    ):
        raise ImproperlyConfigured(
            "VAULT_DATABASE_URL must name the same database, host and port as DATABASE_URL"
            " (one schema; only the role differs)"
        )
    if _vault_database.get("USER") == DATABASES["default"].get("USER"):
        raise ImproperlyConfigured(
            "VAULT_DATABASE_URL must connect as another role than DATABASE_URL"
        )
    DATABASES["vault"] = {
        **_vault_database,
        "ENGINE": DATABASES["default"]["ENGINE"],
        "ATOMIC_REQUESTS": False,
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            **DATABASES["default"].get("OPTIONS", {}),
            **_vault_database.get("OPTIONS", {}),
        },
        # The same database under another role: tests use default's test database.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["db.routers.VaultRouter"]
# The alias the card secrets are read and written on (db.routers.vault_alias).
VAULT_DATABASE_ALIAS = "vault" if "vault" in DATABASES else "default"
DATABASE_WEB_ROLE = env.str("DATABASE_WEB_ROLE", default="")
VAULT_DATABASE_ROLE = env.str(
    "VAULT_DATABASE_ROLE",
    default=str(DATABASES["vault"].get("USER") or "") if "vault" in DATABASES else "",
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "security.validators.LettersAndDigitsValidator"},
    {"NAME": "security.validators.PasswordHistoryValidator"},
]
# PCI DSS 8.3.7: a new password differs from the last four (the current one included).
SECURITY_PASSWORD_HISTORY = _int("SECURITY_PASSWORD_HISTORY", default=4, minimum=4)
# Password reset links are single-use (the token covers the password hash) and
# expire after 30 minutes.
PASSWORD_RESET_TIMEOUT = _int("PASSWORD_RESET_TIMEOUT_SECONDS", default=30 * 60, minimum=60)
if not TESTING:
    # Argon2id (argon2-cffi) first: memory-hard, so a stolen hash costs an attacker
    # memory as well as time; PBKDF2 stays to read older hashes. See docs/security.md.
    PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
else:
    # The suite creates many users; a fast hasher keeps it quick. Production and
    # the demo use Django's default (PBKDF2-SHA256, see docs/benchmarks.md).
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en"
# Each language named in itself: the switch offers it to readers of the other one.
LANGUAGES = [("en", "English"), ("sv", "Svenska")]
# The language switch's cookie (signed-out pages; a customer's profile decides the rest).
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = PRODUCTION
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Europe/Stockholm")
USE_I18N = True
USE_TZ = True

# Static files: WhiteNoise serves what `manage.py collectstatic` gathered into
# STATIC_ROOT, in every mode (demo, production, the browser tests): compressed
# (gzip, Brotli) copies beside content-hashed names, cached for a year by browsers.
# A template naming a file that collectstatic did not gather fails loudly.
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").exists() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"

# Email: console in the demo, SMTP when EMAIL_HOST is set.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = _int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = _secret("EMAIL_HOST_PASSWORD", default="") or ""
EMAIL_USE_TLS = _bool("EMAIL_USE_TLS", default=False)
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend",
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="billing@tillit.example")
# Seconds an SMTP connection may wait for the server (connect, each command).
EMAIL_TIMEOUT = _int("EMAIL_TIMEOUT", default=30, minimum=1)

# Sessions and cookies (PCI DSS 8.2.8): 15 minutes idle, HttpOnly, SameSite.
SESSION_ENGINE = "security.sessions"  # Django's database sessions, read by a compiled query
SESSION_COOKIE_AGE = _int("SESSION_IDLE_SECONDS", default=15 * 60)
# The expiry is pushed forward by security.middleware at most once a minute (not by
# a save on every request), so a session idle for SESSION_IDLE_SECONDS minus at
# most a minute ends: never later than the limit.
SESSION_SAVE_EVERY_REQUEST = False
SESSION_REFRESH_SECONDS = 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
# A form that comes back without its token gets the site's own page, in its language.
CSRF_FAILURE_VIEW = "billing.portal.shell.csrf_failure"
# A session lives at most 12 hours however active it is; a factor verified more
# than 5 minutes ago is not fresh enough for a sensitive action (step-up).
SESSION_ABSOLUTE_SECONDS = _int("SESSION_ABSOLUTE_SECONDS", default=12 * 60 * 60, minimum=60)
SECURITY_STEP_UP_SECONDS = _int("SECURITY_STEP_UP_SECONDS", default=5 * 60, minimum=1)
# Staff accounts unused this long are disabled by a scheduled job (PCI DSS 8.2.6).
SECURITY_DORMANT_STAFF_DAYS = _int("SECURITY_DORMANT_STAFF_DAYS", default=90, minimum=1)
# Customers must have a second factor before they may save a card (the vault reads it).
SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS = _bool(
    "SECURITY_REQUIRE_CUSTOMER_MFA_FOR_CARDS", default=True
)
# An open security alert (e.g. the vault's keys failing) emails the security officers
# at most once in this many minutes, however often it is raised meanwhile.
SECURITY_ALERT_EMAIL_MINUTES = _int("SECURITY_ALERT_EMAIL_MINUTES", default=15, minimum=1)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy (django-csp): no inline script or style, no third-party
# origin, no framing. Pages load their scripts and styles from our static files.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# Permissions-Policy (django-permissions-policy): browser features we never use are
# switched off; WebAuthn (passkeys) only for our own origin.
PERMISSIONS_POLICY: dict[str, list[str]] = {
    "accelerometer": [],
    "camera": [],
    "display-capture": [],
    "geolocation": [],
    "gyroscope": [],
    "magnetometer": [],
    "microphone": [],
    "payment": [],
    "usb": [],
    "publickey-credentials-get": ["self"],
    "publickey-credentials-create": ["self"],
}

if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Lockout (django-axes, PCI DSS 8.3.4): 10 failed logins lock the account for 30
# minutes, counted from the 10th failure (failures during the lockout do not extend
# it). An address with 100 failures in an hour is blocked too, whatever usernames
# it tries (security.lockout.TillitAxesHandler adds that rule).
AXES_FAILURE_LIMIT = _int("AXES_FAILURE_LIMIT", default=10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=_int("AXES_COOLOFF_MINUTES", default=30, minimum=30))
AXES_LOCKOUT_PARAMETERS = ["username"]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_ENABLE_ACCESS_FAILURE_LOG = True
AXES_HANDLER = "security.lockout.TillitAxesHandler"
AXES_USERNAME_CALLABLE = "security.lockout.username_from_credentials"
AXES_LOCKOUT_TEMPLATE = "security/locked_out.html"
# The client's address (the lockout's address rule, the session list, the card-testing
# rules) is read by django-ipware, as axes asks (security.net.client_address). Behind
# reverse proxies set AXES_PROXY_COUNT to how many there are: each appends the address
# it saw to X-Forwarded-For and the last one connects to us, so the client is the
# AXES_PROXY_COUNT-th entry from the right; what a client writes further left is
# ignored (it could name anyone). Without proxies (0, the default) X-Forwarded-For is
# never read: any client could write it. docs/security.md, "Behind a proxy".
PROXY_COUNT = _int("AXES_PROXY_COUNT", default=0)
AXES_IPWARE_PROXY_ORDER = "left-most"
# ipware counts the proxies *listed* in the header: all but the last one.
AXES_IPWARE_PROXY_COUNT = PROXY_COUNT - 1 if PROXY_COUNT else None
AXES_IPWARE_META_PRECEDENCE_ORDER = (
    ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR") if PROXY_COUNT else ("REMOTE_ADDR",)
)
# Not strict: a longer header (a client's own X-Forwarded-For in front) still names the
# client by its position from the right, instead of falling back to the proxy's address
# (which would put every client behind the proxy under one address rule again).
IPWARE_STRICT = False
# axes warns when its one rule ignores the address; the address rule is ours (above).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
SECURITY_IP_FAILURE_LIMIT = _int("SECURITY_IP_FAILURE_LIMIT", default=100, minimum=1)
SECURITY_IP_FAILURE_WINDOW = timedelta(
    minutes=_int("SECURITY_IP_FAILURE_MINUTES", default=60, minimum=1)
)

# MFA (django-otp, django-otp-webauthn). A TOTP code is accepted once: the device
# remembers the last time step used.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Tillit")
# Nobody sees another person's TOTP key or QR code in the admin (security/admin.py also
# replaces django-otp's device admin with a read-only one without them).
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_WEBAUTHN_RP_ID = env.str(
    "OTP_WEBAUTHN_RP_ID", default=ALLOWED_HOSTS[0] if PRODUCTION else "localhost"
)
OTP_WEBAUTHN_RP_NAME = "Tillit"
# Passkeys are a second factor only: signing in takes a password first. The library's
# default (passwordless sign-in on) is turned off on purpose (docs/decisions.md, 31).
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "OTP_WEBAUTHN_ALLOWED_ORIGINS",
    default=[f"https://{OTP_WEBAUTHN_RP_ID}"]
    if PRODUCTION
    else [f"http://{OTP_WEBAUTHN_RP_ID}:8000"],
)

# Billing: the VAT rates (percent, as strings) an invoice line may use.
BILLING_VAT_RATES = env.list("BILLING_VAT_RATES", default=["25", "12", "6", "0"])
BILLING_DEFAULT_PAYMENT_TERMS_DAYS = _int("BILLING_DEFAULT_PAYMENT_TERMS_DAYS", default=30)

# Audit log: where the Ed25519 checkpoint key lives (outside the database).
AUDIT_SIGNING_KEY_FILE = Path(
    env.str("AUDIT_SIGNING_KEY_FILE", default=str(VAR_DIR / "keys" / "audit_ed25519.pem"))
)
AUDIT_CHECKPOINT_MINUTES = _int("AUDIT_CHECKPOINT_MINUTES", default=60, minimum=1)
# Public keys (64 hex characters each) of retired checkpoint keys, still trusted
# when verifying old checkpoints after a key rotation (see docs/audit.md).
AUDIT_TRUSTED_PUBLIC_KEYS = [k.lower() for k in env.list("AUDIT_TRUSTED_PUBLIC_KEYS", default=[])]
for _key in AUDIT_TRUSTED_PUBLIC_KEYS:
    if len(_key) != 64 or any(c not in "0123456789abcdef" for c in _key):
        raise ImproperlyConfigured(
            "AUDIT_TRUSTED_PUBLIC_KEYS must list raw Ed25519 public keys as 64 hex characters"
        )
# Where exported copies of the chain are kept within the server's reach (archives by
# name, ``audit_checkpoint --export`` files): the quarterly review checks each against the
# live chain (docs/audit.md, "Exported copies"). Archives are also found where recorded.
AUDIT_EXPORT_DIRS = [Path(p) for p in env.list("AUDIT_EXPORT_DIRS", default=[])]

# Incidents (docs/incident-response.md): the detectors' schedule and thresholds. A spike
# is at least the minimum in the last hour and at least INCIDENT_SPIKE_FACTOR times the
# hourly average of the 7 days before it.
INCIDENT_DETECTOR_MINUTES = _int("INCIDENT_DETECTOR_MINUTES", default=10, minimum=1)
INCIDENT_CHAIN_CHECK_MINUTES = _int("INCIDENT_CHAIN_CHECK_MINUTES", default=24 * 60, minimum=1)
INCIDENT_SPIKE_FACTOR = _int("INCIDENT_SPIKE_FACTOR", default=3, minimum=1)
INCIDENT_LOCKOUT_SPIKE_MIN = _int("INCIDENT_LOCKOUT_SPIKE_MIN", default=5, minimum=1)
INCIDENT_REVEAL_SPIKE_MIN = _int("INCIDENT_REVEAL_SPIKE_MIN", default=200, minimum=1)
INCIDENT_FRAUD_DECLINE_SPIKE_MIN = _int("INCIDENT_FRAUD_DECLINE_SPIKE_MIN", default=20, minimum=1)
# Fraud features (docs/fraud.md): the card's country by BIN prefix and the payer's by
# network, from CSV tables (the defaults are example tables; point these at real ones).
FRAUD_BIN_TABLE = Path(
    env.str(
        "FRAUD_BIN_TABLE", default=str(BASE_DIR / "payments/fraud/features/data/bin_countries.csv")
    )
)
FRAUD_IP_TABLE = Path(
    env.str(
        "FRAUD_IP_TABLE", default=str(BASE_DIR / "payments/fraud/features/data/ip_countries.csv")
    )
)
# Cryptoperiods (PCI DSS 3.6.4) of the keys without a rotation schedule of their own, and
# how long before their end a detector warns.
GOVERNANCE_KEK_CRYPTOPERIOD_DAYS = _int("GOVERNANCE_KEK_CRYPTOPERIOD_DAYS", default=365, minimum=1)
GOVERNANCE_AUDIT_KEY_CRYPTOPERIOD_DAYS = _int(
    "GOVERNANCE_AUDIT_KEY_CRYPTOPERIOD_DAYS", default=365, minimum=1
)
GOVERNANCE_KEY_WARNING_DAYS = _int("GOVERNANCE_KEY_WARNING_DAYS", default=30, minimum=1)

# Background jobs: django-q2 on the ORM broker (Redis optional via Q_REDIS_URL).
# A job runs at most Q_TIMEOUT seconds (Q_LONG_TIMEOUT for the few long ones: period
# signing, vault re-encryption); one a dead cluster had taken, or one that failed, runs
# again Q_RETRY seconds after it was taken, then after twice that, four times... until
# Q_MAX_ATTEMPTS attempts (docs/architecture.md, Background jobs). Every attempt is
# kept (security.JobAttempt).
Q_TIMEOUT = _int("Q_TIMEOUT", default=45, minimum=1)
Q_RETRY = _int("Q_RETRY", default=60, minimum=2)
Q_MAX_ATTEMPTS = _int("Q_MAX_ATTEMPTS", default=5, minimum=1)
Q_LONG_TIMEOUT = _int("Q_LONG_TIMEOUT", default=1800, minimum=1)
# Job attempts kept for staff: succeeded ones this many days, the others (failed, lost)
# this many; a daily job deletes older ones.
Q_ATTEMPTS_KEEP_DAYS = _int("Q_ATTEMPTS_KEEP_DAYS", default=30, minimum=1)
Q_FAILED_ATTEMPTS_KEEP_DAYS = _int("Q_FAILED_ATTEMPTS_KEEP_DAYS", default=180, minimum=1)
if Q_RETRY <= Q_TIMEOUT:
    # django-q2 takes a job again once Q_RETRY has passed: one still running would run twice.
    raise ImproperlyConfigured(
        f"Q_RETRY ({Q_RETRY} s) must be longer than Q_TIMEOUT ({Q_TIMEOUT} s)"
    )
if Q_LONG_TIMEOUT < Q_TIMEOUT:
    raise ImproperlyConfigured(
        f"Q_LONG_TIMEOUT ({Q_LONG_TIMEOUT} s) must be at least Q_TIMEOUT ({Q_TIMEOUT} s)"
    )
Q_CLUSTER: dict[str, object] = {
    "name": "tillit",
    "workers": _int("Q_WORKERS", default=2),
    "timeout": Q_TIMEOUT,
    "retry": Q_RETRY,
    "max_attempts": Q_MAX_ATTEMPTS,
    "orm": "default",
    # The ORM broker, enqueueing by a compiled INSERT, taking jobs with backoff and
    # keeping every attempt (security/jobs.py).
    "broker_class": "security.jobs.CompiledORM",
    "catch_up": False,
}
# Job workers on several hosts may share a Redis list instead of the queue table
# (docs/scaling.md; decisions.md, 61): django-q2's Redis broker. Jobs are then queued
# after commit, and a job whose worker dies mid-run is not taken again (the jobs that
# must not run twice protect themselves either way).
Q_REDIS_URL = env.str("Q_REDIS_URL", default="")
if Q_REDIS_URL:
    if not Q_REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("Q_REDIS_URL must be a redis://, rediss:// or unix:// URL")
    for _orm_only in ("orm", "broker_class"):
        Q_CLUSTER.pop(_orm_only)
    Q_CLUSTER["redis"] = Q_REDIS_URL

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # WeasyPrint and fontTools narrate every render at INFO, factur-x every XML
        # check and extraction; django-q2 logs every enqueue. Their warnings and
        # errors still show.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        "factur-x": {"level": "WARNING"},
        "django-q": {"level": env.str("LOG_LEVEL_JOBS", default="WARNING")},
    },
}

# Card vault (docs/vault.md). The KEKs and the fingerprint key live outside the
# database: in a JSON file (the default; created on first use outside production)
# or in VAULT_KEYRING_JSON / VAULT_KEYRING_JSON_FILE with VAULT_KEYRING_PROVIDER=env,
# or behind a KMS/HSM adapter named by its dotted path.
VAULT_KEYRING_PROVIDER = env.str("VAULT_KEYRING_PROVIDER", default="file")
VAULT_KEYRING_FILE = Path(
    env.str("VAULT_KEYRING_FILE", default=str(VAR_DIR / "keys" / "vault_keyring.json"))
)
VAULT_KEYRING_CREATE = _bool("VAULT_KEYRING_CREATE", default=not PRODUCTION)
VAULT_KEYRING_JSON = _secret("VAULT_KEYRING_JSON", default="") or ""
# A data key (DEK) encrypts for this many hours, then turns decrypt-only.
VAULT_DEK_ROTATION_HOURS = _int("VAULT_DEK_ROTATION_HOURS", default=24, minimum=1)
# A process keeps the active DEK's bytes in memory at most this long (0: never),
# so a DEK destroyed elsewhere leaves no copy behind for longer than this.
VAULT_DEK_CACHE_SECONDS = _int("VAULT_DEK_CACHE_SECONDS", default=60, minimum=0)
# The card-entry key pair (browser encryption) rotates too; the previous key
# is still accepted for the grace period so that an open form can be sent.
VAULT_ENTRY_KEY_ROTATION_HOURS = _int("VAULT_ENTRY_KEY_ROTATION_HOURS", default=24, minimum=1)
VAULT_ENTRY_KEY_GRACE_MINUTES = _int("VAULT_ENTRY_KEY_GRACE_MINUTES", default=60, minimum=1)
VAULT_ENTRY_KEY_BITS = _int("VAULT_ENTRY_KEY_BITS", default=3072, minimum=2048)
# A card form's one-time nonce (bound to the user and session) is accepted this long.
VAULT_ENTRY_NONCE_SECONDS = _int("VAULT_ENTRY_NONCE_SECONDS", default=10 * 60, minimum=60)
# Reveals (detokenization) allowed per actor per minute.
VAULT_REVEAL_RATE_PER_MINUTE = _int("VAULT_REVEAL_RATE_PER_MINUTE", default=120, minimum=1)
# Records re-encrypted per transaction by the re-encryption job.
VAULT_REENCRYPT_BATCH = _int("VAULT_REENCRYPT_BATCH", default=1000, minimum=1)
# A card secret whose payment method is missing or deleted (a tokenize that failed or
# rolled back after its secret was written; a deletion interrupted before the erase) is
# erased by the hourly key job once it is this old (docs/vault.md, "The vault role").
VAULT_ORPHAN_SECRET_MINUTES = _int("VAULT_ORPHAN_SECRET_MINUTES", default=60, minimum=5)

# Signed invoice documents (docs/documents.md). The PKCS#12 signing key lives
# outside the database; its passphrase comes from the environment or a file. The
# demo creates a key and a passphrase file under var/keys/ on first use.
DOCUMENTS_SIGNING_KEY_FILE = Path(
    env.str("DOCUMENTS_SIGNING_KEY_FILE", default=str(VAR_DIR / "keys" / "invoice_signing.p12"))
)
DOCUMENTS_CREATE_KEYS = _bool("DOCUMENTS_CREATE_KEYS", default=not PRODUCTION)


def _documents_passphrase() -> str:
    value = _secret("DOCUMENTS_KEY_PASSPHRASE", default="") or ""
    if value or PRODUCTION or not DOCUMENTS_CREATE_KEYS:
        return value
    path = VAR_DIR / "keys" / "documents_passphrase"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


DOCUMENTS_KEY_PASSPHRASE = _documents_passphrase()
# An RFC 3161 timestamp authority turns the PAdES B-B signature into B-T.
DOCUMENTS_TSA_URL = env.str("DOCUMENTS_TSA_URL", default="")
DOCUMENTS_SIGNING_LOCATION = env.str("DOCUMENTS_SIGNING_LOCATION", default="")
# What finalizing an invoice does about its PDF: "async" (after commit, a
# django-q2 job renders, signs and queues delivery), "sync" (the same, inline
# after commit: the demo and some tests) or "off" (nothing; the test suite's
# default and the billing benchmark's).
DOCUMENTS_ON_FINALIZE = env.str("DOCUMENTS_ON_FINALIZE", default="off" if TESTING else "async")
if DOCUMENTS_ON_FINALIZE not in {"async", "sync", "off"}:
    raise ImproperlyConfigured(
        f"DOCUMENTS_ON_FINALIZE must be async, sync or off, not {DOCUMENTS_ON_FINALIZE!r}"
    )
DOCUMENTS_MAX_UPLOAD_BYTES = _int("DOCUMENTS_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024, minimum=1)
# An uploaded PDF is read with bounded decompression (a decompression bomb is refused):
# at most this much inflated data in all, this much for any one stream, and this many
# attachments (only the Factur-X XML is ever read). Our invoices need a fraction of it.
DOCUMENTS_VERIFY_MAX_INFLATED_BYTES = _int(
    "DOCUMENTS_VERIFY_MAX_INFLATED_BYTES", default=32 * 1024 * 1024, minimum=1024 * 1024
)
DOCUMENTS_VERIFY_MAX_STREAM_BYTES = _int(
    "DOCUMENTS_VERIFY_MAX_STREAM_BYTES", default=8 * 1024 * 1024, minimum=1024 * 1024
)
DOCUMENTS_VERIFY_MAX_ATTACHMENTS = _int("DOCUMENTS_VERIFY_MAX_ATTACHMENTS", default=5, minimum=1)

# Delivery by email (docs/documents.md): PGP/MIME to customers with a key, else a
# single-use portal link. The app's GnuPG home holds the company's PGP key.
DELIVERY_GNUPGHOME = Path(env.str("DELIVERY_GNUPGHOME", default=str(VAR_DIR / "gnupg")))
DELIVERY_LINK_DAYS = _int("DELIVERY_LINK_DAYS", default=14, minimum=1)
DELIVERY_MAX_ATTEMPTS = _int("DELIVERY_MAX_ATTEMPTS", default=5, minimum=1)
DELIVERY_RETRY_SECONDS = _int("DELIVERY_RETRY_SECONDS", default=60, minimum=1)
# A delivery claimed for sending with no outcome recorded after this long was
# interrupted (its worker died mid-send): it turns failed, never resent by itself.
DELIVERY_SENDING_TIMEOUT_SECONDS = _int("DELIVERY_SENDING_TIMEOUT_SECONDS", default=600, minimum=1)
if max(Q_TIMEOUT, EMAIL_TIMEOUT) >= DELIVERY_SENDING_TIMEOUT_SECONDS:
    raise ImproperlyConfigured(
        "DELIVERY_SENDING_TIMEOUT_SECONDS must be longer than Q_TIMEOUT and EMAIL_TIMEOUT"
        " (a send still under way is not interrupted)"
    )
DELIVERY_PORTAL_URL = env.str("DELIVERY_PORTAL_URL", default="http://127.0.0.1:8000")
# An overdue invoice gets a reminder at most once in this many days.
DELIVERY_REMINDER_DAYS = _int("DELIVERY_REMINDER_DAYS", default=7, minimum=1)

# Webhooks (docs/webhooks.md): events of invoices and payments, signed and POSTed to the
# endpoints security officers register. Outside development only https:// URLs to public
# addresses (no loopback, private or link-local host: server-side request forgery).
WEBHOOKS_ENABLED = _bool("WEBHOOKS_ENABLED", default=True)  # off: no event is recorded
WEBHOOKS_ALLOW_HTTP = _bool("WEBHOOKS_ALLOW_HTTP", default=not PRODUCTION)
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES = _bool("WEBHOOKS_ALLOW_PRIVATE_ADDRESSES", default=not PRODUCTION)
WEBHOOKS_TIMEOUT_SECONDS = _int("WEBHOOKS_TIMEOUT_SECONDS", default=10, minimum=1)
# Retries: WEBHOOKS_RETRY_SECONDS, doubled after each failure up to ..._MAX_SECONDS,
# for as long as fits in WEBHOOKS_RETRY_HOURS; then the delivery is given up (alerted).
WEBHOOKS_RETRY_SECONDS = _int("WEBHOOKS_RETRY_SECONDS", default=60, minimum=1)
WEBHOOKS_RETRY_MAX_SECONDS = _int("WEBHOOKS_RETRY_MAX_SECONDS", default=12 * 3600, minimum=1)
WEBHOOKS_RETRY_HOURS = _int("WEBHOOKS_RETRY_HOURS", default=72, minimum=1)
WEBHOOKS_SENDING_TIMEOUT_SECONDS = _int("WEBHOOKS_SENDING_TIMEOUT_SECONDS", default=600, minimum=1)
WEBHOOKS_ROLL_OVERLAP_HOURS = _int("WEBHOOKS_ROLL_OVERLAP_HOURS", default=24, minimum=0)


# Payments (docs/payments.md). The gateway is a dotted path to a class with the
# payments.gateways.Gateway interface; the built-in sandbox acquirer is the default.
PAYMENTS_GATEWAY = env.str("PAYMENTS_GATEWAY", default="payments.gateways.sandbox.SandboxAcquirer")
# The service account that reveals a card for the gateway call (it alone holds
# payments.reveal_card; created on first use).
PAYMENTS_GATEWAY_ACCOUNT = env.str("PAYMENTS_GATEWAY_ACCOUNT", default="svc-gateway")
# Idempotency keys are kept at least this many hours (never fewer than 24).
PAYMENTS_IDEMPOTENCY_HOURS = _int("PAYMENTS_IDEMPOTENCY_HOURS", default=24, minimum=24)
# A payment still pending or unknown after this many minutes is asked about at the
# acquirer by the reconciliation job; with no charge there it has failed.
PAYMENTS_RECONCILE_AFTER_MINUTES = _int("PAYMENTS_RECONCILE_AFTER_MINUTES", default=5, minimum=1)
# The fraud engine (docs/fraud.md): lists, analysts' rules and the learned score on top of
# the built-in safety rules, with one RiskEvaluation stored per attempt. Off: the safety
# rules alone decide (bench/payments.py measures both in one run).
FRAUD_ENGINE_ENABLED = _bool("FRAUD_ENGINE_ENABLED", default=True)
# Bank files (camt.054) larger than this are refused before parsing.
PAYMENTS_BANK_FILE_MAX_BYTES = _int(
    "PAYMENTS_BANK_FILE_MAX_BYTES", default=200 * 1024 * 1024, minimum=1024
)

# Backups (docs/operations/backup-restore.md): pg_dump's custom format and the media
# files, encrypted with GnuPG to BACKUP_GPG_RECIPIENTS (fingerprints of public keys in
# BACKUP_GNUPGHOME); with none, a backup fails (never a plaintext backup). The key
# material (`manage.py backup_keys`) goes to other recipients, BACKUP_KEYS_GPG_RECIPIENTS.
BACKUP_DIR = Path(env.str("BACKUP_DIR", default=str(VAR_DIR / "backups")))
BACKUP_GNUPGHOME = Path(env.str("BACKUP_GNUPGHOME", default=str(VAR_DIR / "backup-gnupg")))
BACKUP_GPG_RECIPIENTS = [
    f.replace(" ", "").upper() for f in env.list("BACKUP_GPG_RECIPIENTS", default=[])
]
BACKUP_KEYS_GPG_RECIPIENTS = [
    f.replace(" ", "").upper() for f in env.list("BACKUP_KEYS_GPG_RECIPIENTS", default=[])
]
for _name, _fingerprints in (
    ("BACKUP_GPG_RECIPIENTS", BACKUP_GPG_RECIPIENTS),
    ("BACKUP_KEYS_GPG_RECIPIENTS", BACKUP_KEYS_GPG_RECIPIENTS),
):
    for _fingerprint in _fingerprints:
        if len(_fingerprint) != 40 or any(c not in "0123456789ABCDEF" for c in _fingerprint):
            raise ImproperlyConfigured(
                f"{_name} must list OpenPGP fingerprints (40 hex characters), not {_fingerprint!r}"
            )
if set(BACKUP_GPG_RECIPIENTS) & set(BACKUP_KEYS_GPG_RECIPIENTS):
    raise ImproperlyConfigured(
        "BACKUP_KEYS_GPG_RECIPIENTS must not share a key with BACKUP_GPG_RECIPIENTS: whoever"
        " holds the data backup must not also hold the keys that open it (docs/decisions.md 54)"
    )
# The passphrase of the backup recipient's secret key, needed only where backups are
# restored (the restore test's machine); never on a command line.
BACKUP_GPG_PASSPHRASE = _secret("BACKUP_GPG_PASSPHRASE", default="") or ""
# Where pg_dump, pg_restore live (empty: the PATH); their major version must not be
# older than the server's.
BACKUP_PG_BIN_DIR = env.str("BACKUP_PG_BIN_DIR", default="")
BACKUP_SCHEDULE_MINUTES = _int("BACKUP_SCHEDULE_MINUTES", default=24 * 60, minimum=5)
BACKUP_RESTORE_TEST_MINUTES = _int("BACKUP_RESTORE_TEST_MINUTES", default=24 * 60, minimum=5)
# Retention: the newest backup of each of the last N days, ISO weeks and months is kept;
# the newest good backup is kept whatever the policy says.
BACKUP_KEEP_DAILY = _int("BACKUP_KEEP_DAILY", default=7, minimum=1)
BACKUP_KEEP_WEEKLY = _int("BACKUP_KEEP_WEEKLY", default=4, minimum=0)
BACKUP_KEEP_MONTHLY = _int("BACKUP_KEEP_MONTHLY", default=12, minimum=0)
# The scratch database the restore test restores into (on the same server), dropped and
# created again at every test; never the live database.
BACKUP_RESTORE_TEST_DATABASE = env.str(
    "BACKUP_RESTORE_TEST_DATABASE", default=f"{DATABASES['default']['NAME']}_restore_test"
)
if DATABASES["default"]["NAME"] == BACKUP_RESTORE_TEST_DATABASE:
    raise ImproperlyConfigured("BACKUP_RESTORE_TEST_DATABASE must not be the live database")

# Privacy (docs/privacy.md, the retention table). Saved cards unused this many months
# are deleted (crypto-shredded); portal accounts not signed into for this many months
# are deactivated; invoices and their documents are kept this many years (Swedish
# bookkeeping law: 7) and then deleted; audit events at least AUDIT_RETENTION_MONTHS.
PRIVACY_CARD_UNUSED_MONTHS = _int("PRIVACY_CARD_UNUSED_MONTHS", default=18, minimum=1)
PRIVACY_PORTAL_INACTIVE_MONTHS = _int("PRIVACY_PORTAL_INACTIVE_MONTHS", default=24, minimum=1)
PRIVACY_INVOICE_RETENTION_YEARS = _int("PRIVACY_INVOICE_RETENTION_YEARS", default=7, minimum=7)
AUDIT_RETENTION_MONTHS = _int("AUDIT_RETENTION_MONTHS", default=12, minimum=12)
# A data export's download link works once, for this many hours.
PRIVACY_EXPORT_LINK_HOURS = _int("PRIVACY_EXPORT_LINK_HOURS", default=24, minimum=1)
# The key of the pseudonym (a keyed hash) an erased customer keeps for linking; by
# default derived from SECRET_KEY, so set it on its own before rotating SECRET_KEY.
PRIVACY_PSEUDONYM_KEY = _secret("PRIVACY_PSEUDONYM_KEY", default="") or ""


# The API (docs/api.md): /api/v1/ with Django REST framework, bearer tokens from
# django-oauth-toolkit only (no session authentication, hence no CSRF question), JSON in
# and out, every error in one shape (security.api.errors), cursor pagination, throttles
# per client and per user, scopes declared per view and method (security.api.permissions).
API_MAX_BODY_BYTES = _int("API_MAX_BODY_BYTES", default=1024 * 1024, minimum=1024)
API_PAGE_SIZE = _int("API_PAGE_SIZE", default=50, minimum=1)
API_MAX_PAGE_SIZE = _int("API_MAX_PAGE_SIZE", default=200, minimum=1)
# Requests per client application and per user; DRF's "N/second|minute|hour|day".
API_THROTTLE_CLIENT_RATE = env.str("API_THROTTLE_CLIENT_RATE", default="1200/minute")
API_THROTTLE_USER_RATE = env.str("API_THROTTLE_USER_RATE", default="300/minute")
for _name in ("API_THROTTLE_CLIENT_RATE", "API_THROTTLE_USER_RATE"):
    _rate = globals()[_name]
    _count, _, _period = _rate.partition("/")
    if (
        not _count.isdigit()
        or int(_count) < 1
        or _period not in {"second", "minute", "hour", "day"}
    ):
        raise ImproperlyConfigured(f"{_name} must look like 300/minute, not {_rate!r}")
# An Idempotency-Key's first answer is replayed for at least this many hours.
API_IDEMPOTENCY_HOURS = _int("API_IDEMPOTENCY_HOURS", default=24, minimum=24)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["security.api.authentication.BearerAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["security.api.permissions.Scopes"],
    "DEFAULT_PARSER_CLASSES": ["security.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "security.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "security.api.pagination.CursorPagination",
    "PAGE_SIZE": API_PAGE_SIZE,
    # Counted in the database, shared by every worker (security.api.throttling).
    "DEFAULT_THROTTLE_CLASSES": ["security.api.throttling.ApiRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}


def _oidc_key_file() -> Path | None:
    """Where the ID-token signing key is kept: OIDC_RSA_PRIVATE_KEY_FILE, or outside
    production var/keys/oidc_rsa.pem; None when the key is given inline or not at all."""
    named = env.str("OIDC_RSA_PRIVATE_KEY_FILE", default="")
    if named:
        return Path(named)
    if PRODUCTION or env.str("OIDC_RSA_PRIVATE_KEY", default=""):
        return None
    return VAR_DIR / "keys" / "oidc_rsa.pem"


# The OpenID Connect ID-token signing key and the keys it replaced (docs/api.md, "OpenID
# Connect"; security/services/oidc_keys.py): `manage.py rotate_oidc_key` puts a new key in
# OIDC_KEY_FILE and retires the old one to OIDC_RETIRED_KEYS_DIR, whose keys the JWKS
# publishes for OIDC_RETIRED_KEY_HOURS (an ID token lives 15 minutes) before they are
# deleted. The key's age is shown against OIDC_KEY_CRYPTOPERIOD_DAYS.
OIDC_KEY_FILE = _oidc_key_file()
_retired_dir = env.str("OIDC_RETIRED_KEYS_DIR", default="")
OIDC_RETIRED_KEYS_DIR = (
    Path(_retired_dir)
    if _retired_dir
    else (OIDC_KEY_FILE.parent / "oidc-retired" if OIDC_KEY_FILE is not None else None)
)
OIDC_RETIRED_KEY_HOURS = _int("OIDC_RETIRED_KEY_HOURS", default=24, minimum=1)
OIDC_KEY_CRYPTOPERIOD_DAYS = _int("OIDC_KEY_CRYPTOPERIOD_DAYS", default=365, minimum=1)


def _oidc_private_key() -> str:
    """The RSA key that signs ID tokens (RS256): from OIDC_RSA_PRIVATE_KEY_FILE (or given
    inline in OIDC_RSA_PRIVATE_KEY), or, outside production, a 3072-bit key created once
    under var/keys/ as the other demo keys are. Production without one, or whose key file
    `manage.py rotate_oidc_key` has not made yet, serves OAuth 2.0 without OpenID Connect
    (docs/api.md)."""
    if OIDC_KEY_FILE is None:
        return env.str("OIDC_RSA_PRIVATE_KEY", default="")
    if not OIDC_KEY_FILE.exists():
        if PRODUCTION:
            return ""
        from security.oidc_key_files import create_key_file

        create_key_file(OIDC_KEY_FILE)
    try:
        return OIDC_KEY_FILE.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ImproperlyConfigured(f"OIDC_RSA_PRIVATE_KEY_FILE cannot be read: {exc}") from exc


_OIDC_KEY = _oidc_private_key()


def _retired_oidc_keys() -> list[str]:
    """The retired ID-token keys still inside their overlap (security.oidc_key_files)."""
    if OIDC_RETIRED_KEYS_DIR is None or not _OIDC_KEY:
        return []
    from security.oidc_key_files import published_retired_keys

    return published_retired_keys(
        OIDC_RETIRED_KEYS_DIR, overlap=timedelta(hours=OIDC_RETIRED_KEY_HOURS), current=_OIDC_KEY
    )


_OIDC_RETIRED_KEYS = _retired_oidc_keys()
# django-oauth-toolkit's own models (named so that security.ApiClient may point at them).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"  # noqa: S105 (a model)
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
# OAuth 2.0 / OpenID Connect (django-oauth-toolkit; docs/api.md, "Tokens"). Authorization
# code with PKCE (S256 only) for apps acting for a customer, client credentials for server
# integrations; no implicit or password grant. Access tokens live 15 minutes; a refresh
# token is used once (rotated) and presenting a used one revokes its whole family. Tokens
# are stored as SHA-256 checksums only (RFC 9700's token storage).
OAUTH2_PROVIDER: dict[str, object] = {
    "PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": _int("API_ACCESS_TOKEN_SECONDS", default=15 * 60, minimum=60),
    "REFRESH_TOKEN_EXPIRE_SECONDS": _int(
        "API_REFRESH_TOKEN_SECONDS", default=30 * 24 * 60 * 60, minimum=15 * 60
    ),
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,
    "ID_TOKEN_EXPIRE_SECONDS": 15 * 60,
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "REQUEST_APPROVAL_PROMPT": "force",
    "CLIENT_SECRET_HASHER": "default",
    "OIDC_ENABLED": bool(_OIDC_KEY),
    "OIDC_RSA_PRIVATE_KEY": _OIDC_KEY,
    "OIDC_RSA_PRIVATE_KEYS_INACTIVE": _OIDC_RETIRED_KEYS,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code"],
    "OAUTH2_GRANT_TYPES_SUPPORTED": ["authorization_code", "client_credentials", "refresh_token"],
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if PRODUCTION else ["http", "https"],
    # One scope per resource and action (security/api/scopes.py explains each).
    "SCOPES": {
        "openid": "Sign you in (OpenID Connect)",
        "profile": "Read your name",
        "email": "Read your e-mail address",
        "customers:read": "Read customer details",
        "customers:write": "Create and change customers (server integrations)",
        "invoices:read": "Read invoices and their documents",
        "invoices:write": "Create, finalize, void and credit invoices",
        "payments:read": "Read payments and refunds",
        "payments:write": "Pay invoices with saved cards and refund payments",
        "payment_methods:read": "Read saved cards (brand, last four digits, expiry)",
        "payment_methods:write": "Save and delete cards",
        "events:read": "Read the events of your account",
    },
    "DEFAULT_SCOPES": [],
    # Each client only the scopes its security officer allowed (security.api.scopes).
    "SCOPES_BACKEND_CLASS": "security.api.scopes.ClientScopes",
    # Audits token issue, refresh, reuse and revocation; OIDC claims (security.api.oauth).
    "OAUTH2_VALIDATOR_CLASS": "security.api.oauth.TillitOAuth2Validator",
    # RFC 9700 (OAuth 2.0 Security Best Current Practice), enforced now rather than at
    # django-oauth-toolkit 4.0: no implicit or password grant, S256 PKCE only, bearer
    # tokens never in a query string, the issuer in authorization responses, tokens
    # stored as checksums.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
}

# OpenAPI 3 (drf-spectacular): /api/schema/ and its page /api/docs/ (docs/api.md).
SPECTACULAR_SETTINGS = {
    "TITLE": "Tillit API",
    "DESCRIPTION": "Invoices and payments for integrations (docs/api.md).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Choice sets that share a field name get names of their own (import paths: nothing
    # is imported here).
    "ENUM_NAME_OVERRIDES": {
        "CustomerKindEnum": "billing.models.Customer.Kind",
        "InvoiceKindEnum": "billing.models.InvoiceKind",
        "InvoiceStatusEnum": "billing.models.Invoice.Status",
        "PaymentStatusEnum": "payments.models.Payment.Status",
        "RefundStatusEnum": "payments.models.Refund.Status",
    },
    # The one error shape on every operation, Idempotency-Key on every POST.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "security.api.schema.add_error_responses",
    ],
}
