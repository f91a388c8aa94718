"""Settings, read from the environment with django-environ.

With no environment variables at all this is the *embedded* stack: SQLite in WAL mode,
local-memory cache and Celery running tasks eagerly in-process. Setting ``DATABASE_URL``,
``CACHE_URL`` and ``CELERY_BROKER_URL`` switches to PostgreSQL, Redis and real workers.
"""
from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=True)
# Embedded/dev default only; the production profile (hardening issue) refuses to start without one.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-ledgerline-key-change-me")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "cqrs_core",
    "trading",
    "portfolio",
    "yield_farming",
    "market",
]

MIDDLEWARE = [
    # First, so every later middleware, view and log record has the request and correlation ids.
    "cqrs_core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Django's MessageMiddleware, with the storage made only when a view uses it.
    "cqrs_core.middleware.LazyMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# --- Database -----------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN so
    # two writers queue on `timeout` instead of failing a read->write upgrade with "locked".
    # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-transaction-behavior
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", default=60))
    DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's, with a health check that needs no round trip while the connection is quiet.
        DATABASES["default"]["ENGINE"] = "cqrs_core.backends.postgresql"
# The command bus's statements prepared once per connection (cqrs_core.command_sql). Off for a
# pooler in transaction mode without prepared-statement support (PgBouncer before 1.21).
CQRS_PREPARED_STATEMENTS = env.bool("CQRS_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://ledgerline")}
if CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
    CACHES["default"].setdefault("OPTIONS", {}).update(
        {
            # A cache outage must degrade to the database, never to an error or a long hang.
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        }
    )
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# --- Celery -------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="memory://")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=CELERY_BROKER_URL == "memory://")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Work is acknowledged after it is done and re-queued when a worker dies mid-task.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis transport: a task taken by a worker that is then SIGKILLed stays in Redis' "unacked" set;
# a worker's periodic scan puts it back once it is older than ``visibility_timeout``, counted from
# its delivery. Measured (tests/faults/test_redelivery.py, README "Failure behaviour"), seconds from
# delivery to the second run: kombu defaults (300 s, scan every 10 x 10 s) ~300-400; 10 s with the
# default scan 103 (the 100 s scan period dominates); 10 s / scan 1 s 10.9; 30 s / scan 5 s 32.9;
# 60 s / scan 5 s 62.8. A task still running after ``visibility_timeout`` is handed to a second
# worker as well: our acks_late tasks are idempotent (projection lock + checkpoint, saga lease +
# deterministic command ids) and run for well under 30 s, and the long periodic ones are acked
# early (config/celery.py), so a duplicate only wastes a little work. RabbitMQ ignores these:
# it redelivers as soon as the dead worker's connection closes.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=30),
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=5),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_DEFAULT_QUEUE = "default"
# One line for the default work: projection wake-ups (a command's and a runner's own after its time
# slice), saga steps and queued commands share cqrs_core.commands.DEFAULT_PRIORITY, so they are
# served in the order they were queued and take turns; other tasks join it too. On Redis a lower
# number is served first (kombu's steps 0/3/6/9); RabbitMQ queues here have no priorities at all.
CELERY_TASK_DEFAULT_PRIORITY = 5
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# The event table is the outbox: these sweeps turn a lost wake-up into a short delay.
CELERY_BEAT_SCHEDULE = {
    "sweep-projections": {
        "task": "cqrs_core.sweep_projections",
        "schedule": env.float("CQRS_SWEEP_SECONDS", default=5.0),
    },
    "market-tick": {
        "task": "market.tick",
        "schedule": env.float("MARKET_TICK_SECONDS", default=60.0),
    },
    # Re-drives sagas whose step is overdue, whose retry is due or whose next-step message was lost.
    "sweep-sagas": {
        "task": "cqrs_core.sweep_sagas",
        "schedule": env.float("CQRS_SAGA_SWEEP_SECONDS", default=10.0),
    },
    # Moves the yield protocols' APYs by one seeded tick (yield_farming.feed); off with YIELD_SIMULATED_FEED=false.
    "yield-apy-drift": {
        "task": "yield_farming.drift_apys",
        "schedule": env.float("YIELD_APY_DRIFT_SECONDS", default=300.0),
    },
    # Runs the reconciliation checks that are due (each has its own interval, below).
    "reconcile": {
        "task": "cqrs_core.reconcile",
        "schedule": env.float("CQRS_RECONCILE_SECONDS", default=60.0),
    },
}
# Reconciliation (cqrs_core.reconciliation): how often each built-in check runs, its allowed
# window, and which failed checks may repair themselves (rebuild the projections they name).
CQRS_RECONCILE_LAG_EVERY = env.float("CQRS_RECONCILE_LAG_EVERY", default=60.0)
CQRS_RECONCILE_LAG_SECONDS = env.float("CQRS_RECONCILE_LAG_SECONDS", default=300.0)
CQRS_RECONCILE_REPLAY_EVERY = env.float("CQRS_RECONCILE_REPLAY_EVERY", default=3600.0)
CQRS_RECONCILE_VERIFY_MAX_EVENTS = env.int("CQRS_RECONCILE_VERIFY_MAX_EVENTS", default=200_000)
CQRS_RECONCILE_SAGAS_EVERY = env.float("CQRS_RECONCILE_SAGAS_EVERY", default=300.0)
CQRS_RECONCILE_SAGA_GRACE_SECONDS = env.float("CQRS_RECONCILE_SAGA_GRACE_SECONDS", default=600.0)
CQRS_RECONCILE_REPAIR = env.list("CQRS_RECONCILE_REPAIR", default=[])
# A broker outage must not hold a committed command's response for long: the wake-up is
# only a hint (the sweep catches up), so publishing gives up quickly.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
# Celery's Django fixup closes every database connection before and after each task unless
# DB_REUSE_MAX is set (then it closes them every that many tasks): a new PostgreSQL backend per
# projection run. Workers instead keep them as a web process does, checked before and after each
# task by Django's own rules (CONN_MAX_AGE, health checks, errors; config/celery.py). 0: a new
# connection for every task again.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
# Workers log through LOGGING below (JSON with the request and correlation ids when asked for),
# not through handlers of Celery's own that would replace it.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "cqrs_core.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON numbers parse as Decimal; NaN/Infinity are a 400 (DESIGN invariant 9).
    "DEFAULT_PARSER_CLASSES": [
        "cqrs_core.api.parsers.ExactJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "cqrs_core.api.negotiation.ContentNegotiation",
    "EXCEPTION_HANDLER": "cqrs_core.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_RATES": {
        "auth": env("THROTTLE_AUTH", default="20/min"),
        "commands": env("THROTTLE_COMMANDS", default="600/min"),
    },
}
# Largest JSON body a command accepts (413 payload_too_large beyond it); commands are small.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=64 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Ledgerline API",
    "DESCRIPTION": "Event-sourced CQRS for crypto trading operations.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Assets come from drf-spectacular-sidecar, so the docs work with no internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Strategy risk profiles and yield risk tolerances are the same three levels: one enum.
    "ENUM_NAME_OVERRIDES": {"RiskLevelEnum": "yield_farming.rules.TOLERANCES"},
    # Every operation documents the errors any endpoint can give (400, 401, 404, 413, 415, 429, 503).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "cqrs_core.api.schema.add_standard_problems",
    ],
}

# --- CQRS core ----------------------------------------------------------------------------
CQRS_SNAPSHOT_EVERY = env.int("CQRS_SNAPSHOT_EVERY", default=100)
# Streams whose folded state each process keeps for its next command on them (0: always fold).
CQRS_STATE_CACHE_SIZE = env.int("CQRS_STATE_CACHE_SIZE", default=10_000)
# PostgreSQL: a command on a stream whose state this process kept is decided first and written in
# one statement that checks the stream has not moved (cqrs_core.bus; off: always lock, then read).
CQRS_ONE_STATEMENT_COMMANDS = env.bool("CQRS_ONE_STATEMENT_COMMANDS", default=True)
CQRS_CONFLICT_RETRIES = env.int("CQRS_CONFLICT_RETRIES", default=5)
# Async projections: a process looks whether its commits need a wake-up at once when it was quiet,
# then at most once per this many seconds for all its commits meanwhile (cqrs_core.wakeups; 0: each
# command looks itself, right after its commit).
CQRS_WAKEUP_INTERVAL = env.float("CQRS_WAKEUP_INTERVAL", default=0.01)
# Longest a query with ``min_position`` waits for its projections before answering stale.
CQRS_MIN_POSITION_WAIT = env.float("CQRS_MIN_POSITION_WAIT", default=2.0)
# /health/ready/ answers 503 when a projection's oldest unapplied event is older than this.
CQRS_READY_MAX_LAG_SECONDS = env.float("CQRS_READY_MAX_LAG_SECONDS", default=60.0)
# Bearer token /metrics asks for; empty: /metrics is open (keep it off the public network then).
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# --- Trading and portfolio ----------------------------------------------------------------
# How long a process trusts its kept latest prices before it asks the cache whether they moved
# (market.queries.latest_prices); 0: ask on every trade and valuation.
MARKET_PRICES_RECHECK_SECONDS = env.float("MARKET_PRICES_RECHECK_SECONDS", default=0.1)
# Decimal strings, read as Decimal by portfolio.rules (money never passes through a float).
TRADING_MIN_TRADE_USD = env.str("TRADING_MIN_TRADE_USD", default="10")
# Largest allowed distance of a trade's price from the latest market price, as a share of it.
TRADING_PRICE_BAND = env.str("TRADING_PRICE_BAND", default="0.05")
# Fee in USD on buys and sells, as a share of the notional.
TRADING_FEE_RATE = env.str("TRADING_FEE_RATE", default="0.001")
# Maximum position size (USD) of users an operator has set no limit for.
PORTFOLIO_DEFAULT_MAX_POSITION_USD = env.str("PORTFOLIO_DEFAULT_MAX_POSITION_USD", default="100000")
# A trade whose notional exceeds this share of the portfolio's value records PortfolioImpacted.
PORTFOLIO_IMPACT_THRESHOLD = env.str("PORTFOLIO_IMPACT_THRESHOLD", default="0.05")
# Performance (portfolio.analytics): days of history analysed at most, and value points returned at most.
PORTFOLIO_PERFORMANCE_MAX_DAYS = env.int("PORTFOLIO_PERFORMANCE_MAX_DAYS", default=90)
PORTFOLIO_HISTORY_MAX_POINTS = env.int("PORTFOLIO_HISTORY_MAX_POINTS", default=240)
# Optimiser (portfolio.optimization): a result is fresh this long (and while no newer event changed the
# portfolio); a computation not finished after the timeout may be claimed again.
PORTFOLIO_OPTIMIZATION_MAX_AGE_SECONDS = env.int("PORTFOLIO_OPTIMIZATION_MAX_AGE_SECONDS", default=300)
PORTFOLIO_OPTIMIZATION_TIMEOUT_SECONDS = env.int("PORTFOLIO_OPTIMIZATION_TIMEOUT_SECONDS", default=120)
# Assets considered besides those held; each asset's largest share of the portfolio (long-only).
PORTFOLIO_OPTIMIZATION_UNIVERSE = env.list("PORTFOLIO_OPTIMIZATION_UNIVERSE", default=["BTC", "ETH", "SOL", "BNB"])
PORTFOLIO_OPTIMIZATION_MAX_WEIGHT = env.str("PORTFOLIO_OPTIMIZATION_MAX_WEIGHT", default="0.5")
# Hourly closes used (lookback), the fewest common hourly returns an asset needs, covariance shrinkage.
PORTFOLIO_OPTIMIZATION_LOOKBACK_HOURS = env.int("PORTFOLIO_OPTIMIZATION_LOOKBACK_HOURS", default=720)
PORTFOLIO_OPTIMIZATION_MIN_HOURS = env.int("PORTFOLIO_OPTIMIZATION_MIN_HOURS", default=48)
PORTFOLIO_OPTIMIZATION_SHRINKAGE = env.str("PORTFOLIO_OPTIMIZATION_SHRINKAGE", default="0.2")
# Annual return of cash (the risk-free asset) in the Sharpe ratio and expected returns.
PORTFOLIO_RISK_FREE_RATE = env.str("PORTFOLIO_RISK_FREE_RATE", default="0.04")
# Rebalance plans (portfolio.rebalance): estimated slippage in basis points of a trade's notional is
# SLIPPAGE_BPS plus IMPACT_BPS per 1% of the pair's average hourly USD volume over the last 24 hours
# the trade takes, capped at MAX_SLIPPAGE_BPS (the cap also applies when the volume is unknown).
PORTFOLIO_REBALANCE_SLIPPAGE_BPS = env.str("PORTFOLIO_REBALANCE_SLIPPAGE_BPS", default="5")
PORTFOLIO_REBALANCE_IMPACT_BPS = env.str("PORTFOLIO_REBALANCE_IMPACT_BPS", default="10")
PORTFOLIO_REBALANCE_MAX_SLIPPAGE_BPS = env.str("PORTFOLIO_REBALANCE_MAX_SLIPPAGE_BPS", default="100")
# Estimated time: trades run one after another, one command each, this many seconds apiece.
PORTFOLIO_REBALANCE_SECONDS_PER_TRADE = env.str("PORTFOLIO_REBALANCE_SECONDS_PER_TRADE", default="2")
# A plan older than this may no longer be executed (its prices are too old): plan again.
PORTFOLIO_REBALANCE_PLAN_TTL_SECONDS = env.int("PORTFOLIO_REBALANCE_PLAN_TTL_SECONDS", default=900)

# --- Internationalisation, static ----------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")

# LOG_FORMAT=json: one JSON object a line; either way records carry request_id, correlation_id
# and command_id (cqrs_core.logs).
LOG_FORMAT = env("LOG_FORMAT", default="plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ValueError(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "cqrs_core.logs.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "cqrs_core.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Demo data ----------------------------------------------------------------------------
# Dotted paths to ``loader(stdout)`` functions run, in order, by ``manage.py seed_demo``.
# Each bounded context registers its (idempotent) demo loader here.
LEDGERLINE_DEMO_LOADERS: list[str] = [
    "market.demo.load",
    "portfolio.demo.load",  # after the market: trades take its latest prices
    "trading.demo.load",  # after the portfolios: strategy signals trade demo_ada's cash
    "yield_farming.demo.load",
]

# --- Market -------------------------------------------------------------------------------
# The seeded simulated feed (beat task ``market.tick``); there is no real exchange feed yet.
MARKET_SIMULATED_FEED = env.bool("MARKET_SIMULATED_FEED", default=True)
MARKET_SIMULATION_SEED = env.int("MARKET_SIMULATION_SEED", default=7)
# Most 1m candles one tick appends per pair; a longer outage is left as a gap in the series.
MARKET_TICK_MAX_CANDLES = env.int("MARKET_TICK_MAX_CANDLES", default=60)
