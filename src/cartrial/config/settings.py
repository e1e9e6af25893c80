"""Django settings: one file, driven by the environment (DATABASE_URL, CARTRIAL_* variables).

Production sets DATABASE_URL to PostgreSQL, CARTRIAL_SECRET_KEY, CARTRIAL_IDENTITY_KEY,
CARTRIAL_ALLOWED_HOSTS and CARTRIAL_HTTPS=1, and refuses to start without a secret key. With
CARTRIAL_HTTPS=1 (and CARTRIAL_DEBUG unset) the settings are production's: they also refuse the
secrets that ship with the code or that the demo made (`known_secrets`), and the demo's password
cannot sign in. The demo (`cartrial demo`) makes its own keys in files of the working directory
and sets them in the environment; the test suite uses `cartrial.config.test_settings`. Every
variable is described in docs/operations.md.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from cartrial.config.known_secrets import (
    DEMO_IDENTITY_KEY_FILE,
    DEMO_PASSWORD,
    DEMO_SECRET_KEY_FILE,
    DEMO_TOTP_KEY,
    TEST_IDENTITY_KEY,
    TEST_SECRET_KEY,
)
from cartrial.config.security_headers import static_file_headers

PACKAGE_DIR = Path(__file__).resolve().parent.parent

DEBUG = os.environ.get("CARTRIAL_DEBUG", "0") == "1"
# No key ships with the code: a known key would let anyone forge sessions and signed values.
SECRET_KEY = os.environ.get("CARTRIAL_SECRET_KEY", "").strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CARTRIAL_SECRET_KEY is not set: generate one with `cartrial keygen --secret` and set it in the "
            "server's environment (the demo, `cartrial demo`, makes its own in cartrial-demo.secret)."
        )
    # Development only: a key for this process (sessions end when it restarts).
    SECRET_KEY = secrets.token_urlsafe(50)
ALLOWED_HOSTS = os.environ.get("CARTRIAL_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
# Production: served over HTTPS, not in debug mode. The laptop demo (plain HTTP on 127.0.0.1) is not.
CARTRIAL_PRODUCTION = not DEBUG and os.environ.get("CARTRIAL_HTTPS", "0") == "1"


def _demo_file(name: str) -> str:
    """The content of a key file `cartrial demo` made in the working directory, or ""."""
    path = Path.cwd() / name
    return path.read_text().strip() if path.is_file() else ""


def _refuse_known_secrets() -> None:
    """Production refuses keys anyone could know: shipped with the code, made by the demo, or weak."""
    refusals = {
        TEST_SECRET_KEY: "is the test suite's key, published with the code",
        _demo_file(DEMO_SECRET_KEY_FILE): f"is the demo's key ({DEMO_SECRET_KEY_FILE} in this directory)",
    }
    reason = refusals.get(SECRET_KEY, "")
    if not reason and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure")):
        reason = "is too weak (at least 50 characters of 5 or more different ones)"
    if reason:
        raise ImproperlyConfigured(
            f"CARTRIAL_SECRET_KEY {reason}: production needs a key of its own "
            "(`cartrial keygen --secret`, kept in the server's environment)."
        )
    identity_keys = {key.strip() for key in os.environ.get("CARTRIAL_IDENTITY_KEY", "").split(",")}
    known = {TEST_IDENTITY_KEY: "the test suite's key", _demo_file(DEMO_IDENTITY_KEY_FILE): "the demo's key"}
    for key, whose in known.items():
        if key and key in identity_keys:
            raise ImproperlyConfigured(
                f"CARTRIAL_IDENTITY_KEY holds {whose}: production encrypts identities with a key of its own "
                "(`cartrial keygen`)."
            )


if CARTRIAL_PRODUCTION:
    _refuse_known_secrets()

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",  # recovery codes
    "ninja",  # serves the Swagger UI from its own static files (no CDN)
    "django_tasks",
    "django_tasks_db",  # the queue of long jobs in the database (ADR 0005)
    "cartrial.apps.audit",
    "cartrial.apps.trial",
    "cartrial.apps.accounts",
    "cartrial.apps.subjects",
    "cartrial.apps.clinical",
    "cartrial.apps.jobs",
    "cartrial.apps.alerts",
    "cartrial.apps.logistics",
    "cartrial.apps.biology",
    "cartrial.apps.casebook",
    "cartrial.apps.pathway",
    "cartrial.apps.dashboards",
    "cartrial.apps.safety",
    "cartrial.apps.toxicity",
    "cartrial.apps.calendars",
    "cartrial.apps.simulation",
    "cartrial.apps.planning",
    "cartrial.apps.exports",
    "cartrial.apps.administration",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After whitenoise (static files keep their caching), before everything that renders.
    "cartrial.config.security_headers.SecurityHeadersMiddleware",
    # Before anything reads a body (the CSRF check reads a form): a body too large for its
    # endpoint is refused from its declared length (config/uploads.py).
    "cartrial.config.uploads.UploadLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Before any page: a person signed in with the password alone gives a code (or enrols) first.
    "cartrial.apps.accounts.middleware.TwoFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    "cartrial.config.errors.DomainErrorMiddleware",
]

ROOT_URLCONF = "cartrial.config.urls"

# Uploads: each endpoint's maximum is declared once in config/uploads.py and checked from the
# declared length before the body is read. Django's own limit on a body read whole is the
# backstop at the largest of them (10 MB: a 5 MB logger file sent as JSON text); files above
# 2.5 MB stream to a temporary file instead of memory.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000_000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
WSGI_APPLICATION = "cartrial.config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "cartrial.apps.accounts.context.memberships",
                "cartrial.apps.accounts.context.session_expiry",
                "cartrial.apps.alerts.context.open_alerts",
                "cartrial.config.security_headers.csp_nonce",
            ],
        },
    }
]

DEFAULT_DATABASE_URL = "sqlite:///" + str(Path.cwd() / "cartrial.sqlite3")
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock when a transaction starts, so concurrent writers queue
    # instead of failing half-way (subject codes and the audit chain are read-then-write).
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["TEST"] = (
    {"NAME": os.environ.get("CARTRIAL_TEST_DB_NAME")} if os.environ.get("CARTRIAL_TEST_DB_NAME") else {}
)

# Long jobs (ADR 0005, docs/jobs.md): a queue in the database itself, on SQLite and PostgreSQL
# alike, run by `cartrial jobs worker` (started beside the server by `cartrial serve` on SQLite).
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

# Where the exports requested from the pages and the API are kept for download (docs/exports.md):
# files hold trial data (identity for a center's own staff), so the folder is the server's alone.
CARTRIAL_EXPORT_DIR = Path(os.environ.get("CARTRIAL_EXPORT_DIR", str(Path.cwd() / "exports")))

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "cartrial.apps.accounts.backends.PasswordBackend",
]
# Passwords that sign no one in and that no one may choose: in production, the demo's.
CARTRIAL_REFUSED_PASSWORDS = [DEMO_PASSWORD] if CARTRIAL_PRODUCTION else []
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "cartrial.apps.accounts.backends.RefusedPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "subjects:list"
LOGOUT_REDIRECT_URL = "login"

# Two-factor sign-in (docs/adr/0007-two-factor-sign-in.md): the roles of `domain.roles.TWO_FACTOR_ROLES`
# enrol an authenticator app and give a code at each sign-in and electronic signature. On unless
# CARTRIAL_TWO_FACTOR_REQUIRED=0, which only a demo or development server may set: production
# forces it on. The test suite turns it off (test_settings) except in the tests of two-factor.
CARTRIAL_TWO_FACTOR_REQUIRED = CARTRIAL_PRODUCTION or os.environ.get("CARTRIAL_TWO_FACTOR_REQUIRED", "1") != "0"
# The demo enrols its logins with a key published with the code: production refuses it.
CARTRIAL_REFUSED_TOTP_KEYS = [DEMO_TOTP_KEY] if CARTRIAL_PRODUCTION else []
OTP_TOTP_ISSUER = "cartrial"
# Wrong codes: django-otp waits 1, 2, 4, 8 ... seconds (times this factor) after each failure in a row.
OTP_TOTP_THROTTLE_FACTOR = 1
OTP_STATIC_THROTTLE_FACTOR = 1

# Sessions end after 30 minutes without activity and when the browser closes; the pages warn a
# minute before (static/cartrial/idle.js) and offer to stay signed in.
# Sessions end after 30 minutes without activity and when the browser closes. Django's database
# store, except that a database out of reach while saving one answers 503, not 400.
SESSION_ENGINE = "cartrial.config.sessions"
SESSION_COOKIE_AGE = int(os.environ.get("CARTRIAL_SESSION_SECONDS", "1800"))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if not DEBUG and os.environ.get("CARTRIAL_HTTPS", "0") == "1":
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # Browsers refuse plain HTTP to this host (and its subdomains) for a year once seen over HTTPS.
    SECURE_HSTS_SECONDS = 365 * 24 * 3600
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# Behind a reverse proxy that ends TLS (docs/operations.md), requests reach gunicorn over plain
# HTTP: the proxy says the original scheme in X-Forwarded-Proto, trusted only when this is set
# (the proxy must overwrite the header that clients send).
if os.environ.get("CARTRIAL_PROXY_SSL_HEADER", "0") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("CARTRIAL_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]
# Joining the browsers' HSTS preload list commits a whole registered domain (the hospital's):
# its owner decides that (hstspreload.org), not this application, so `check --deploy` does not ask.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# django-axes: five failed logins for one username from one address lock it for 30 minutes.
AXES_FAILURE_LIMIT = int(os.environ.get("CARTRIAL_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.5
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
# Usernames are accepted in any case at login, so failures are counted in one case too.
AXES_USERNAME_CALLABLE = "cartrial.apps.accounts.lockout.username_for_lockout"

LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", "Français"), ("en", "English")]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("CARTRIAL_STATIC_ROOT", Path.cwd() / "staticfiles"))
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
# `cartrial serve` collects the static files into STATIC_ROOT at start (the Dockerfile, at build),
# compressed (gzip) beside the originals; whitenoise indexes them once at start and serves them
# from the app itself, no other web server needed. Serving from the source folders (the finders)
# and re-reading the disk on every request are for development (CARTRIAL_DEBUG=1) and the tests.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_ADD_HEADERS_FUNCTION = static_file_headers

# The protocol in force; validated at start-up (cartrial.apps.trial.apps.TrialConfig.ready).
CARTRIAL_PROTOCOL_FILE = os.environ.get("CARTRIAL_PROTOCOL_FILE", "")
# Fernet key(s) for identity data at rest, comma-separated, newest first (rotation).
CARTRIAL_IDENTITY_KEY = os.environ.get("CARTRIAL_IDENTITY_KEY", "")

# Alert e-mails (docs/alerts.md), through Django's mail backend. Production: SMTP from
# CARTRIAL_EMAIL_HOST/PORT/USER/PASSWORD (+ CARTRIAL_EMAIL_TLS=1); the demo and development
# (CARTRIAL_DEBUG=1) print them on the console; CARTRIAL_EMAIL_BACKEND overrides either.
# CARTRIAL_BASE_URL is the address links in e-mails start with (the site as users reach it).
EMAIL_BACKEND = os.environ.get(
    "CARTRIAL_EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("CARTRIAL_EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("CARTRIAL_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("CARTRIAL_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("CARTRIAL_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("CARTRIAL_EMAIL_TLS", "0") == "1"
EMAIL_TIMEOUT = int(os.environ.get("CARTRIAL_EMAIL_TIMEOUT_SECONDS", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("CARTRIAL_EMAIL_FROM", "cartrial@localhost")
CARTRIAL_BASE_URL = os.environ.get("CARTRIAL_BASE_URL", "http://127.0.0.1:8000")

# Everything goes to stderr (gunicorn's log). Django's default sends request errors only to
# ADMINS by e-mail when DEBUG is off, so a 500 left no traceback anywhere: `django.request`
# errors now reach the console with their traceback (the formatter appends exc_info). 4xx
# answers are the access log's business; security warnings (CSRF, bad Host) are kept.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "cartrial": {"level": os.environ.get("CARTRIAL_LOG_LEVEL", "INFO")},
        "axes": {"level": "WARNING"},
        "django": {"handlers": [], "level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "cartrial.config.staticfinders.PlotlyFinder",
]
