"""LuxOS settings, read from the environment.

DATABASE_URL and REDIS_URL name external services; when either is unset the
embedded PostgreSQL / Redis is used, which the entry points (manage.py, the WSGI
app, the Celery app, the test session) start or attach to before Django reads
this; importing it starts nothing. See ``luxsite.embedded``. Every variable is
listed in docs/configuration.md.
"""

import json
import os
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from luxsite import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from None


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None


DEBUG = env_bool("DJANGO_DEBUG", default=False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and env_bool("LUXOS_PRODUCTION"):
        raise ImproperlyConfigured("SECRET_KEY must be set in production (LUXOS_PRODUCTION=true)")
    # A development key: fine on one machine, refused in production above.
    SECRET_KEY = "luxos-development-key-not-for-production"


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_json(name: str, default: object) -> object:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return json.loads(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be JSON ({error})") from None


ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "guardian",
    "ninja",
    "pgtrigger",
    "luxsite",
    "chronos",
    "beings",
    "relations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "luxsite.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "chronos.middleware.ChangeContextMiddleware",
    "luxsite.errors.DomainErrorMiddleware",
]

ROOT_URLCONF = "luxsite.urls"
WSGI_APPLICATION = "luxsite.wsgi.application"

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
            ],
        },
    },
]

# Connections outlive a request or a task (closed after LUXOS_DB_CONN_MAX_AGE seconds): opening one costs more
# than most of what a request or a run does with it. No SELECT 1 before each reuse: a connection that broke
# fails its next query, is closed by close_old_connections after that request or task, and the run's claim
# (the first statement of a run's task) retries once on a new connection.
DATABASES = {
    "default": dj_database_url.parse(
        embedded.database_url(), conn_max_age=env_int("LUXOS_DB_CONN_MAX_AGE", 60), conn_health_checks=False
    )
}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"].setdefault("OPTIONS", {})
# The run path's statements are prepared on the server (luxsite.statements); off behind a pooler that cannot keep
# prepared statements (PgBouncer in transaction mode before 1.21). Django's own queries are never prepared.
LUXOS_DB_PREPARED = env_bool("LUXOS_DB_PREPARED", True)
DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 5 if LUXOS_DB_PREPARED else None)
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("LUXOS_TEST_DB_NAME") or None}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None  # no guardian anonymous user: anonymous requests see nothing

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Every user signs in through the site's own login (luxsite/urls.py); the admin's admits staff only.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Request bodies: the bulk import reads JSON Lines up to this size.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("LUXOS_MAX_REQUEST_BYTES", 32 * 1024 * 1024)

# Limits on what a being may hold (issue 2).
LUXOS_MAX_SOURCE_BYTES = 64 * 1024
LUXOS_MAX_JSON_BYTES = 256 * 1024
LUXOS_MAX_TAGS = 64
LUXOS_MAX_TAG_LENGTH = 64
LUXOS_PAGE_SIZE = 50
LUXOS_MAX_PAGE_SIZE = 500

# Souls (issue 3): lineage thresholds, environments, creation reports.
# An edit that only adds lines, at most this share of the current line count, is an evolution.
LUXOS_EVOLUTION_MAX_ADDED_RATIO = env_float("LUXOS_EVOLUTION_MAX_ADDED_RATIO", 0.5)
# Every this many versions a lineage entry keeps the full source beside its reverse diff.
LUXOS_SNAPSHOT_EVERY = env_int("LUXOS_SNAPSHOT_EVERY", 10)
# Events kept in a being's memories (the newest).
LUXOS_MEMORY_LIMIT = env_int("LUXOS_MEMORY_LIMIT", 1000)
# Environments a hash may be promoted to.
LUXOS_ENVIRONMENTS = tuple(env_list("LUXOS_ENVIRONMENTS", "production,staging"))
# What a hash must show before it is promoted, per environment (JSON; an environment not named is not gated):
# min_successes (successful runs of the hash, ever), last_runs and max_failures_in_last (at most that many of
# its last runs failed, timed out or were killed), no_open_lessons (no unresolved lesson on the hash or an
# ancestor), max_risk (the promotion's assessed risk at most low|medium|high|critical). Checked when read.
LUXOS_PROMOTION_EVIDENCE = env_json(
    "LUXOS_PROMOTION_EVIDENCE",
    {
        "production": {
            "min_successes": 3,
            "last_runs": 10,
            "max_failures_in_last": 0,
            "no_open_lessons": True,
            "max_risk": "high",
        }
    },
)
LUXOS_SOUL_LOG_DIR = Path(os.environ.get("LUXOS_SOUL_LOG_DIR") or embedded.var_dir() / "souls")

# The sandbox being code runs in (issue 4): limits per run, and whether a missing layer refuses to run.
LUXOS_SANDBOX_CPU_SECONDS = env_int("LUXOS_SANDBOX_CPU_SECONDS", 5)
LUXOS_SANDBOX_WALL_SECONDS = env_float("LUXOS_SANDBOX_WALL_SECONDS", 10.0)
LUXOS_SANDBOX_MEMORY_BYTES = env_int("LUXOS_SANDBOX_MEMORY_BYTES", 256 * 1024 * 1024)
LUXOS_SANDBOX_OUTPUT_BYTES = env_int("LUXOS_SANDBOX_OUTPUT_BYTES", 64 * 1024)
LUXOS_SANDBOX_RESULT_BYTES = env_int("LUXOS_SANDBOX_RESULT_BYTES", 1024 * 1024)
LUXOS_SANDBOX_DEPTH = env_int("LUXOS_SANDBOX_DEPTH", 5)
LUXOS_SANDBOX_CALLS = env_int("LUXOS_SANDBOX_CALLS", 50)
LUXOS_SANDBOX_SUMMONS = env_int("LUXOS_SANDBOX_SUMMONS", 10)
LUXOS_SANDBOX_STRICT = env_bool("LUXOS_SANDBOX_STRICT", False)
# A run still "running" this long after its wall-clock limit lost its worker: the reaper retries it once, then kills it.
LUXOS_EXECUTION_REAP_GRACE_SECONDS = env_float("LUXOS_EXECUTION_REAP_GRACE_SECONDS", 30.0)
# A top-level run still queued this long after its message was sent is sent again by the reaper.
LUXOS_EXECUTION_RESEND_SECONDS = env_float("LUXOS_EXECUTION_RESEND_SECONDS", 10.0)

# Chronos (seed 002): time travel on the change log.
# Off: no capture (each writing transaction is recorded as a gap no restore or switch crosses), no chronos doors.
ENABLE_CHRONOS = env_bool("ENABLE_CHRONOS", True)
# Where checkpoint exports are written.
CHRONOS_TIMELINES_DIR = Path(os.environ.get("CHRONOS_TIMELINES_DIR") or embedded.var_dir() / "chronos")
# Retention (`chronos gc`, daily on beat): unpinned checkpoints beyond either limit go, and the log only they needed.
CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE = env_int("CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE", 50)
CHRONOS_CHECKPOINT_RETENTION_DAYS = env_int("CHRONOS_CHECKPOINT_RETENTION_DAYS", 30)
# Exports are .tar.gz when true, .tar otherwise.
CHRONOS_COMPRESS_SNAPSHOTS = env_bool("CHRONOS_COMPRESS_SNAPSHOTS", True)
# Before every high or critical operation (chronos.risk), a safety checkpoint named after it.
CHRONOS_AUTO_CHECKPOINT = env_bool("CHRONOS_AUTO_CHECKPOINT", True)
# Dreams: a plan run in one transaction that is rolled back, its changes kept as the timeline dream_<id>.
# The longest a dream may run (seconds); over it, it fails and leaves nothing.
CHRONOS_DREAM_SECONDS = env_int("CHRONOS_DREAM_SECONDS", 60)
# A dream whose steps succeed more often than this is kept and offered for merge; otherwise discarded.
CHRONOS_DREAM_KEEP_THRESHOLD = env_float("CHRONOS_DREAM_KEEP_THRESHOLD", 0.5)
# A kept dream is merged into the timeline it forked from at once, instead of only previewed.
CHRONOS_DREAM_AUTO_MERGE = env_bool("CHRONOS_DREAM_AUTO_MERGE", False)

# The superuser `make run` ensures, and the default actor of commands.
LUXOS_ADMIN_USER = os.environ.get("LUXOS_ADMIN_USER") or "admin"
LUXOS_ADMIN_PASSWORD = os.environ.get("LUXOS_ADMIN_PASSWORD", "")

# What `manage.py serve` (make run) starts.
LUXOS_HOST = os.environ.get("LUXOS_HOST") or "127.0.0.1"
LUXOS_PORT = env_int("LUXOS_PORT", 8000)
LUXOS_WEB_WORKERS = env_int("LUXOS_WEB_WORKERS", 2)
# Threads per web worker: a request may hold its thread for a whole `wait` (a run's outcome, up to 30 s),
# so each worker serves this many at once and a few waits never block the site.
LUXOS_WEB_THREADS = env_int("LUXOS_WEB_THREADS", 16)
LUXOS_CPU_WORKERS = env_int("LUXOS_CPU_WORKERS", os.cpu_count() or 1)
LUXOS_IO_WORKERS = env_int("LUXOS_IO_WORKERS", 8)
LUXOS_LOG_LEVEL = os.environ.get("LUXOS_LOG_LEVEL") or "INFO"

# Celery: Redis for broker and results, JSON only, two queues.
REDIS_URL = embedded.redis_url()
CELERY_BROKER_URL = REDIS_URL
# kombu's Redis transport, publishing through one client per channel instead of a new one per message.
CELERY_BROKER_TRANSPORT = "luxsite.broker:Transport"
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_QUEUES = (
    Queue("cpu", Exchange("cpu"), routing_key="cpu"),
    Queue("io", Exchange("io"), routing_key="io"),
)
CELERY_TASK_DEFAULT_QUEUE = "cpu"
# Work that waits on the database rather than computing; executions choose their queue per run.
CELERY_TASK_ROUTES = {
    "beings.tasks.being_evolve": {"queue": "io"},
    "beings.tasks.souls_validate": {"queue": "io"},
    # Finished runs written into their beings: database work, off the run path.
    "beings.tasks.being_fold": {"queue": "io"},
    "beings.tasks.beings_fold_sweep": {"queue": "io"},
    # Chronos' work is the database's: restore, switch, export, import and retention wait on I/O.
    "chronos.tasks.*": {"queue": "io"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Ten priority lists per queue (``cpu``, ``cpu:1`` … ``cpu:9``); a worker pops them in that order, so on Redis
# priority 0 is served first. Executions map their being's energy onto it (beings.executions.broker_priority).
CELERY_BROKER_TRANSPORT_OPTIONS = {"queue_order_strategy": "priority", "priority_steps": list(range(10)), "sep": ":"}
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery's Django fixup closes every connection around every task unless this is set; with it, a task's
# connection is recycled after this many tasks, and luxsite.celery closes broken or aged ones before each.
CELERY_DB_REUSE_MAX = 1000
CELERY_BEAT_SCHEDULE_FILENAME = str(embedded.var_dir() / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "health-every-minute": {"task": "luxsite.tasks.health", "schedule": 60.0, "options": {"queue": "io"}},
    # Every promoted production hash recomputed from its stored genotype and the live lineage.
    "souls-validate-daily": {
        "task": "beings.tasks.souls_validate",
        "schedule": crontab(hour=3, minute=0),
        "options": {"queue": "io"},
    },
    # Lost messages sent again (LUXOS_EXECUTION_RESEND_SECONDS); runs left "running" by a worker that died:
    # retried once, then marked killed.
    "executions-reap": {
        "task": "beings.tasks.executions_reap",
        "schedule": 10.0,
        "options": {"queue": "io"},
    },
    # Finished runs whose fold never came (the fold is scheduled by each run; this is the safety net).
    "beings-fold-sweep": {
        "task": "beings.tasks.beings_fold_sweep",
        "schedule": 10.0,
        "options": {"queue": "io"},
    },
    # Retention: checkpoints beyond CHRONOS_MAX_CHECKPOINTS_PER_TIMELINE / _RETENTION_DAYS and the log only they needed.
    "chronos-gc-daily": {
        "task": "chronos.tasks.chronos_gc",
        "schedule": crontab(hour=3, minute=30),
        "options": {"queue": "io"},
    },
    # Dreams scheduled for later (not_before, e.g. the night's idle hours) started once their time has come.
    "chronos-dreams-due": {
        "task": "chronos.tasks.dreams_due",
        "schedule": 60.0,
        "options": {"queue": "io"},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": LUXOS_LOG_LEVEL},
    # pgserver narrates every attach and exit at INFO; the MCP SDK every request of the agent door (/mcp).
    "loggers": {"pgserver": {"level": "WARNING"}, "mcp": {"level": "WARNING"}},
}
