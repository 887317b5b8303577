"""Django settings, all derived from the environment through ``config.load()``."""

from __future__ import annotations

from urllib.parse import urlsplit

from bugnet_server import config

BUGNET = config.load()

SECRET_KEY = BUGNET.secret_key
DEBUG = False
ALLOWED_HOSTS = ["*"]  # SDKs reach the server under any name; nothing here trusts Host
BASE_URL = BUGNET.base_url

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "bugnet_server.accounts",
    "bugnet_server.projects",
    "bugnet_server.ingest",
    "bugnet_server.issues",
    "bugnet_server.alerts",
    "bugnet_server.api",
    "bugnet_server.runtime",
    "bugnet_server.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "bugnet_server.web.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "bugnet_server.web.security.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bugnet_server.urls"
WSGI_APPLICATION = "bugnet_server.wsgi.application"
DATABASES = {"default": BUGNET.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
# The session cookie: HttpOnly and SameSite=Lax (Django's defaults, stated), Secure when the
# server is reached over TLS (BUGNET_BASE_URL https://..., behind a proxy that says so).
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = BASE_URL.startswith("https://")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
CSRF_TRUSTED_ORIGINS = [BASE_URL]
if SESSION_COOKIE_SECURE:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
STATIC_URL = "/static/"
# Static files are served by WhiteNoise straight from the apps' static/ folders (no
# collectstatic step: setting up stays two commands).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False
# Ingest bodies are read and bounded by the ingest app itself, streaming.
DATA_UPLOAD_MAX_MEMORY_SIZE = None

if BUGNET.email:
    EMAIL_HOST = BUGNET.email["host"]
    EMAIL_PORT = BUGNET.email["port"]
    EMAIL_HOST_USER = BUGNET.email["user"]
    EMAIL_HOST_PASSWORD = BUGNET.email["password"]
    EMAIL_USE_TLS = BUGNET.email["use_tls"]
    EMAIL_USE_SSL = BUGNET.email["use_ssl"]
    EMAIL_TIMEOUT = 10
    DEFAULT_FROM_EMAIL = f"Bugnet <bugnet@{urlsplit(BASE_URL).hostname or 'localhost'}>"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"bugnet_server": {"handlers": ["console"], "level": "INFO"}},
}
