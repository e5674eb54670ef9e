"""Totem settings: one module, driven by environment variables (django-environ).

Defaults give the zero-setup machine: a SQLite file and the in-memory channel layer.
`DATABASE_URL` and `REDIS_URL` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="" if not DEBUG else "dev-only-insecure-key")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
# Keys that encrypt secrets stored in the database (tenants/crypto.py); the first encrypts.
# Empty: derived from SECRET_KEY, so set these before ever rotating SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# Content-Security-Policy: scripts only from our own static files (or with the request's
# nonce); nothing framed, posted or fetched elsewhere. Styles may be inline: the SVG charts
# and status colours use style attributes, and htmx adds its indicator style.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:"],
    "media-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Behind TLS (production: the reverse proxy terminates it and says so in X-Forwarded-Proto),
# cookies are secure-only, plain HTTP is redirected, and browsers are told to stay on HTTPS.
HTTPS = env.bool("HTTPS", default=not DEBUG)
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    # Totem gets a host of its own (totem.example.com.br); set these false if it shares a
    # domain whose other subdomains still speak plain HTTP.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
# The operator's session and CSRF cookie never reach scripts (pages hand the CSRF token to
# htmx in hx-headers; no script reads the cookie).
SESSION_COOKIE_HTTPONLY = CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# A refused form: the pt-BR "page expired" page (templates/403_csrf.html), the kiosk's own
# error screen at the kiosk (config/errors.py).
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "channels",
    "django_htmx",
    "simple_history",
    "tenants",
    "customers",
    "tickets",
    "payments",
    "equipment",
    "totem",
    "panel",
    "fiscal",
    "ops",
    # Its Swagger UI's files come from static, not a CDN (the CSP allows only 'self').
    "ninja",
    "api",
    "messaging",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.DatabaseUnavailableMiddleware",
    "config.malformed.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "api.middleware.ApiRequestLogMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "django.template.context_processors.csp",
                "tenants.context_processors.staff_nav",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite serialises writers; a busy timeout and IMMEDIATE transactions make parallel
    # writers wait instead of failing with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A process holds at most DATABASE_POOL_SIZE connections, whatever its concurrency. Daphne
    # runs each request in a thread of its own; with persistent connections each kept one (one
    # Daphne under 32 clients reached max_connections=100). A request borrows a pooled
    # connection for its whole duration and waits when all are out. Throughput of one Daphne
    # was the same with 2 to 10 (it is bound by Python's CPU); 10 leaves room for requests that
    # hold one while they wait elsewhere (a PIX sale waits on MercadoPago for up to 10 s).
    # With the pool off (0), CONN_MAX_AGE applies: 0 opens a connection per request.
    DATABASE_POOL_SIZE = env.int("DATABASE_POOL_SIZE", default=10)
    CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=0)
    if DATABASE_POOL_SIZE < 0:
        raise environ.ImproperlyConfigured("DATABASE_POOL_SIZE must be 0 (no pool) or more")
    if DATABASE_POOL_SIZE and CONN_MAX_AGE:
        raise environ.ImproperlyConfigured(
            "CONN_MAX_AGE applies only without the pool: unset it or set DATABASE_POOL_SIZE=0"
        )
    DATABASES["default"]["CONN_MAX_AGE"] = CONN_MAX_AGE
    # A transaction left idle (a crashed worker, a debugger) is ended by the server rather
    # than holding its locks on tickets and counters.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        "-c idle_in_transaction_session_timeout=30000"
    )
    # A host that drops packets (not one that refuses) must not hold a request for minutes.
    DATABASES["default"]["OPTIONS"]["connect_timeout"] = 3
    # Parameters bound by the server, so psycopg prepares a statement it has run 5 times on
    # a connection and PostgreSQL stops planning it again: planning the ticket tables (many
    # partial indexes) took ~2 ms per query against ~0.2 ms to run it (bench/README.md).
    # Not for PgBouncer in transaction mode (prepared statements are per connection).
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=5)
    if DATABASE_POOL_SIZE:
        # One connection opened at start (a cron command needs no more); those opened under
        # load stay until idle for max_idle (psycopg's 10 minutes), so prepared statements
        # survive from request to request. A request that finds none free for `timeout`
        # seconds fails with OperationalError, answered 503 by DatabaseUnavailableMiddleware.
        # The pool never fails fast when PostgreSQL is down (it waits for a reconnection), so
        # `timeout` is also how long the first request of an outage waits before its 503.
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": 1,
            "max_size": DATABASE_POOL_SIZE,
            "timeout": 5,
        }

REDIS_URL = env.str("REDIS_URL", default="")
# Names this installation's keys and pub/sub channels in Redis. Pub/sub knows no databases:
# two installations (or two parallel test workers) sharing one Redis need a prefix each.
REDIS_PREFIX = env.str("REDIS_PREFIX", default="totem")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # The pub/sub layer: the default RedisChannelLayer drops group messages silently
            # past its capacity; pub/sub delivers every event at display fan-out rates.
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # Fail fast when Redis is unreachable (a broadcast never hangs a request); redis-py's
            # async pool refuses connections past 100 unless max_connections is raised; the
            # health check finds a silently dropped subscriber connection.
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": 1,
                        "socket_timeout": 2,
                        "socket_keepalive": True,
                        "health_check_interval": 15,
                        "max_connections": 1000,
                    }
                ],
                "prefix": f"{REDIS_PREFIX}.asgi",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# Daphne runs the printer spooler and the worker (ops/worker.py) in threads of its own
# process (config/background.py). The default without Redis: the in-memory layer reaches only
# the sockets of the process that sends an event, so a spooler or worker process of its own
# would move tickets that no screen sees move. With Redis they are services of their own.
RUN_WORKERS_IN_WEB = env.bool("RUN_WORKERS_IN_WEB", default=not REDIS_URL)

# Shared by every Daphne process when Redis is there: login throttling and rate limits count
# across processes. While Redis does not answer they count in each process, and Redis is
# asked again only every REDIS_RETRY_SECONDS (tenants/redis_outage.py): an outage never fails
# nor slows a sale, a call, a login or a pairing.
REDIS_RETRY_SECONDS = env.float("REDIS_RETRY_SECONDS", default=5.0)
if REDIS_RETRY_SECONDS <= 0:
    raise environ.ImproperlyConfigured("REDIS_RETRY_SECONDS must be a positive number of seconds")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "tenants.redis_outage.FallbackRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": REDIS_PREFIX,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "pt-br"
LANGUAGES = [("pt-br", _("Portuguese (Brazil)")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "America/Sao_Paulo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "panel_home"
LOGOUT_REDIRECT_URL = "login"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # A Redis outage is one warning per process, not a traceback per second from the channel
    # layer's receive loop nor one per WebSocket Daphne could not open without Redis.
    "filters": {"redis_outage": {"()": "tenants.redis_outage.UnreachableRedisFilter"}},
    "loggers": {
        "channels_redis.pubsub": {"filters": ["redis_outage"]},
        "daphne.server": {"filters": ["redis_outage"]},
        # The connection pool logs every borrow at INFO and every failed reconnection at
        # WARNING; an outage is logged once by config.middleware.DatabaseUnavailableMiddleware.
        "psycopg.pool": {"level": "ERROR"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# MercadoPago: the API root the SDK talks to. Tests and demo mode point it at the fake server
# (`manage.py run_fake_mercadopago`); production leaves the default.
MERCADOPAGO_BASE_URL = env.str("MERCADOPAGO_BASE_URL", default="https://api.mercadopago.com")
MERCADOPAGO_TIMEOUT = env.float("MERCADOPAGO_TIMEOUT", default=10.0)
# Seconds a webhook signature's timestamp may drift from our clock before it counts as replayed.
MERCADOPAGO_WEBHOOK_TOLERANCE = env.int("MERCADOPAGO_WEBHOOK_TOLERANCE", default=300)

# WhatsApp Cloud API: the Graph API root every tenant's messages go to. The platform's, never a
# tenant's (a tenant types only its ids and tokens); tests point it at messaging/fake_graph.py.
WHATSAPP_GRAPH_URL = env.str("WHATSAPP_GRAPH_URL", default="https://graph.facebook.com").rstrip("/")
WHATSAPP_TIMEOUT = env.float("WHATSAPP_TIMEOUT", default=10.0)
# Focus NFe (NFS-e): by default each tenant's environment picks the sandbox or production
# host; tests and the demo point every tenant at the fake server (fiscal/fake_focusnfe.py).
FOCUSNFE_BASE_URL = env.str("FOCUSNFE_BASE_URL", default="")
FOCUSNFE_TIMEOUT = env.float("FOCUSNFE_TIMEOUT", default=15.0)

# Where customers reach this installation: the QR code on a printed ticket points here
# (`<PUBLIC_BASE_URL>/t/<slug>/senha/<token>/`), so it must be the address phones can open.
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# A PIX through MercadoPago needs the payer's e-mail, which kiosk customers do not give, and it
# may not be the MercadoPago account's own (the payer can't be the collector). Unless a studio
# typed a payer e-mail of its own, a sale's payer is `senha-<ticket id>@<this domain>`: a
# domain the platform controls, so MercadoPago's receipts to the payer reach nobody else.
# Defaults to PUBLIC_BASE_URL's host when that is a DNS name; empty leaves PIX through
# MercadoPago to the studios that typed one.
_public_host = urlsplit(PUBLIC_BASE_URL).hostname or ""
try:
    ipaddress.ip_address(_public_host)
    _public_host = ""
except ValueError:
    _public_host = _public_host if "." in _public_host else ""
PIX_PAYER_EMAIL_DOMAIN = env.str("PIX_PAYER_EMAIL_DOMAIN", default=_public_host).lower()
if PIX_PAYER_EMAIL_DOMAIN and not re.fullmatch(
    r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", PIX_PAYER_EMAIL_DOMAIN
):
    raise environ.ImproperlyConfigured(
        f"PIX_PAYER_EMAIL_DOMAIN must be a DNS domain name, not {PIX_PAYER_EMAIL_DOMAIN!r}"
    )

# Where a tenant's settings may make this server connect (tenants/netguard.py). Outgoing
# webhooks go only to public addresses unless this is on (integrations on the platform's own
# network); it then lets a tenant reach that network, so leave it off on a shared installation.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)

# Printer destinations a tenant may choose (equipment/destinations.py); a platform superuser
# may set any. Network printers: addresses on these networks (default: the private ranges LAN
# printers live on), these ports (raw ESC/POS, what the network transport speaks), never the
# ports of DATABASE_URL and REDIS_URL. File printers: files inside PRINTER_FILE_ROOT/<tenant
# slug>/, or device files matching PRINTER_DEVICE_FILES (also the serial devices). Not
# /dev/ttyS*: on a server the first serial port is often its console.
PRINTER_ALLOWED_NETWORKS = env.list(
    "PRINTER_ALLOWED_NETWORKS",
    default=["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"],
)
PRINTER_ALLOWED_PORTS = env.list("PRINTER_ALLOWED_PORTS", cast=int, default=[9100, 9101, 9102])
PRINTER_FILE_ROOT = env.path("PRINTER_FILE_ROOT", default=VAR_DIR / "printers")
PRINTER_DEVICE_FILES = env.list(
    "PRINTER_DEVICE_FILES", default=["/dev/usb/lp[0-9]", "/dev/ttyUSB[0-9]", "/dev/ttyACM[0-9]"]
)
# Never the server itself nor a cloud's metadata service (169.254.169.254), whatever the list.
_NEVER_PRINTERS = ["127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3"]
_NEVER_PRINTERS += ["::1/128", "::/128", "fe80::/10", "ff00::/8", "::ffff:0:0/96"]
for _allowed in PRINTER_ALLOWED_NETWORKS:
    try:
        _network = ipaddress.ip_network(_allowed)
    except ValueError as _error:
        raise environ.ImproperlyConfigured(f"PRINTER_ALLOWED_NETWORKS: {_error}") from None
    for _never in map(ipaddress.ip_network, _NEVER_PRINTERS):
        if _never.version == _network.version and _network.overlaps(_never):
            raise environ.ImproperlyConfigured(
                f"PRINTER_ALLOWED_NETWORKS: {_allowed} includes {_never}, never a printer's"
            )

# Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>`; empty turns it off.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")

# The largest request body accepted, in bytes (the biggest upload is a tenant's logo); a larger
# one is refused with 413 while it streams in, before it is stored (config/body_limit.py).
MAX_REQUEST_BODY_BYTES = env.int("MAX_REQUEST_BODY_BYTES", default=10 * 1024 * 1024)
if MAX_REQUEST_BODY_BYTES < 1:
    raise environ.ImproperlyConfigured("MAX_REQUEST_BODY_BYTES must be a positive number of bytes")

# How often an open display socket re-checks its pairing, in seconds: the bound on how long a
# revoked display keeps its socket when the revoke's message is lost (Redis down). One small
# query per socket each time; revoking normally closes it at once (totem/consumers.py).
DEVICE_RECHECK_SECONDS = env.float("DEVICE_RECHECK_SECONDS", default=15.0)
if DEVICE_RECHECK_SECONDS <= 0:
    raise environ.ImproperlyConfigured("DEVICE_RECHECK_SECONDS must be a positive number")

# Kiosk timing, in seconds: idle before going back to welcome (with a warning shown for the
# last KIOSK_IDLE_WARNING_SECONDS), while a PIX or card payment waits, on the ticket screen,
# and on the error screen.
KIOSK_IDLE_SECONDS = env.int("KIOSK_IDLE_SECONDS", default=120)
KIOSK_IDLE_WARNING_SECONDS = env.int("KIOSK_IDLE_WARNING_SECONDS", default=30)
KIOSK_PAYMENT_IDLE_SECONDS = env.int("KIOSK_PAYMENT_IDLE_SECONDS", default=300)
# A screen showing the customer's name, CPF or phone (the identification form once typed in,
# the summary) is cleared this many seconds after the last touch, warning included (the last
# KIOSK_PERSONAL_WARNING_SECONDS): personal data must not wait on the wall for the next person.
KIOSK_PERSONAL_IDLE_SECONDS = env.int("KIOSK_PERSONAL_IDLE_SECONDS", default=30)
KIOSK_PERSONAL_WARNING_SECONDS = env.int("KIOSK_PERSONAL_WARNING_SECONDS", default=10)
if not 0 <= KIOSK_PERSONAL_WARNING_SECONDS < KIOSK_PERSONAL_IDLE_SECONDS:
    raise environ.ImproperlyConfigured(
        "KIOSK_PERSONAL_WARNING_SECONDS must be below KIOSK_PERSONAL_IDLE_SECONDS"
    )
KIOSK_DONE_SECONDS = env.int("KIOSK_DONE_SECONDS", default=40)
KIOSK_ERROR_SECONDS = env.int("KIOSK_ERROR_SECONDS", default=15)
KIOSK_REQUESTS_PER_MINUTE = env.int("KIOSK_REQUESTS_PER_MINUTE", default=300)
# Requests per minute per API key (api/auth.py); past it, 429 with Retry-After.
API_REQUESTS_PER_MINUTE = env.int("API_REQUESTS_PER_MINUTE", default=120)
# How often a PIX or card screen re-reads its payment on its own: the fallback while its
# ticket's socket is down (an event makes it re-read at once).
KIOSK_PAYMENT_POLL_SECONDS = env.int("KIOSK_PAYMENT_POLL_SECONDS", default=15)
if KIOSK_PAYMENT_POLL_SECONDS <= 0:
    raise environ.ImproperlyConfigured("KIOSK_PAYMENT_POLL_SECONDS must be a positive number")

# Outgoing e-mail (alerts to managers): SMTP from EMAIL_URL, e.g.
# smtp+tls://user:password@smtp.example.com:587; without it, mail is printed to the console.
# A tenant may set its own SMTP server in its notification settings: a host whose addresses
# are all public, on one of ALERT_SMTP_PORTS (ops/notifications.py; a platform superuser may
# set any). 465 is TLS from the first byte, the others plain or STARTTLS.
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="totem@localhost")
_email = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
_smtp_options = {  # django-environ's EMAIL_* names → the SMTP backend's options
    "EMAIL_HOST": "host",
    "EMAIL_PORT": "port",
    "EMAIL_HOST_USER": "username",
    "EMAIL_HOST_PASSWORD": "password",
    "EMAIL_USE_TLS": "use_tls",
    "EMAIL_USE_SSL": "use_ssl",
}
MAILERS = {
    "default": {
        "BACKEND": _email["EMAIL_BACKEND"],
        "OPTIONS": {
            option: _email[key] for key, option in _smtp_options.items() if _email.get(key)
        },
    }
}
ALERT_SMTP_PORTS = env.list("ALERT_SMTP_PORTS", cast=int, default=[25, 465, 587, 2525])
