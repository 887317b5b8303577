"""Django settings for the Bugsink 2.6.1 the ingest benchmark runs (its singleserver set-up,
without prompts): SQLite for both databases in ``BENCH_BUGSINK_DIR``, every event quota raised
so a burst of a few thousand events is all accepted, no phone-home, no email.

Loaded by Bugsink's own commands (``bugsink-manage``, ``bugsink-runsnappea``, gunicorn serving
``bugsink.wsgi``) with ``DJANGO_SETTINGS_MODULE=ingest_bugsink_settings`` and this folder on
``PYTHONPATH``; ``BENCH_BUGSINK_URL`` is the base URL it is served under.
"""

import os

from bugsink.settings.default import *  # noqa: F403
from bugsink.settings.default import DATABASES

_DIR = os.environ["BENCH_BUGSINK_DIR"]
_NO_LIMIT = 10**9

SECRET_KEY = "ingest-benchmark-not-secret-" + "x" * 40
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
TIME_ZONE = "UTC"
DATABASES["default"]["NAME"] = os.path.join(_DIR, "db.sqlite3")
DATABASES["snappea"]["NAME"] = os.path.join(_DIR, "snappea.sqlite3")
EMAIL_BACKEND = "bugsink.email_backends.QuietConsoleEmailBackend"
SENTRY_DSN = None

BUGSINK = {
    "BASE_URL": os.environ["BENCH_BUGSINK_URL"],
    "PHONEHOME": False,
    "SINGLE_USER": True,
    "INGEST_STORE_BASE_DIR": os.path.join(_DIR, "ingestion"),
    "MAX_EVENTS_PER_PROJECT_PER_5_MINUTES": _NO_LIMIT,
    "MAX_EVENTS_PER_PROJECT_PER_HOUR": _NO_LIMIT,
    "MAX_EVENTS_PER_PROJECT_PER_MONTH": _NO_LIMIT,
    "MAX_EVENTS_PER_5_MINUTES": _NO_LIMIT,
    "MAX_EVENTS_PER_HOUR": _NO_LIMIT,
    "MAX_EVENTS_PER_MONTH": _NO_LIMIT,
}

SNAPPEA = {
    "TASK_ALWAYS_EAGER": False,
    "NUM_WORKERS": 4,  # its default and its singleserver template's
    "PID_FILE": None,
    "WAKEUP_CALLS_DIR": os.path.join(_DIR, "snappea-wakeup"),
}
