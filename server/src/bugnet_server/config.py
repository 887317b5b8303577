"""The server's configuration, read from the environment once (design.md §4.1).

Problems are not raised here: they are collected in ``Config.problems`` and reported at start-up
by a Django system check (see ``checks.py``) that names the variable and the fix.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class Config:
    data_dir: Path
    database: dict[str, object]
    database_url: str
    base_url: str
    secret_key: str
    email: dict[str, object] | None
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (id, message, hint)


def load(env: dict[str, str] | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    problems: list[tuple[str, str, str]] = []
    data_dir = Path(env.get("BUGNET_DATA_DIR") or Path.home() / ".local" / "share" / "bugnet")
    data_dir = data_dir.expanduser()
    database_url = env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'bugnet.sqlite3'}"
    database = parse_database_url(database_url, problems)
    base_url = (env.get("BUGNET_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https") or not urlsplit(base_url).netloc:
        problems.append(
            ("bugnet.E002", f"BUGNET_BASE_URL={base_url!r} is not an http(s) URL",
             "Set BUGNET_BASE_URL to the URL users and SDKs reach, e.g. https://bugs.example.com")
        )  # fmt: skip
    secret_key = env.get("BUGNET_SECRET_KEY") or _stored_secret(data_dir, problems)
    email = parse_email_url(env.get("BUGNET_EMAIL_URL"), problems)
    return Config(data_dir, database, database_url, base_url, secret_key, email, problems)


def parse_database_url(url: str, problems: list[tuple[str, str, str]]) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:  # sqlite://relative/path is not what anyone means
            path = parts.netloc + path
        return {
            "ENGINE": "bugnet_server.sqlite",  # Django's, with writers queued on a file lock
            "NAME": path,
            # Kept open: opening a SQLite connection (and its PRAGMAs) per request cost ~10%.
            "CONN_MAX_AGE": None,
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": {
                # IMMEDIATE: a writer takes the lock up front instead of failing mid-transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                    "PRAGMA busy_timeout=30000; PRAGMA foreign_keys=ON;"
                ),
            },
        }
    if parts.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    problems.append(
        ("bugnet.E001", f"DATABASE_URL={url!r} is neither sqlite:/// nor postgresql://",
         "Use sqlite:////absolute/path.sqlite3 or postgresql://user:password@host:5432/dbname")
    )  # fmt: skip
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}


def parse_email_url(
    url: str | None, problems: list[tuple[str, str, str]]
) -> dict[str, object] | None:
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtp+tls", "smtp+ssl") or not parts.hostname:
        problems.append(
            ("bugnet.E003", f"BUGNET_EMAIL_URL={url!r} is not an smtp URL",
             "Use smtp://user:password@host:port, smtp+tls://... (STARTTLS) or smtp+ssl://...")
        )  # fmt: skip
        return None
    return {
        "host": parts.hostname,
        "port": parts.port or (465 if parts.scheme == "smtp+ssl" else 25),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "use_tls": parts.scheme == "smtp+tls",
        "use_ssl": parts.scheme == "smtp+ssl",
    }


def _stored_secret(data_dir: Path, problems: list[tuple[str, str, str]]) -> str:
    """The secret key generated into the data dir on first use."""
    path = data_dir / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    except OSError as exc:
        problems.append(("bugnet.E004", f"cannot read {path}: {exc}",
                         "Make the data dir readable, or set BUGNET_SECRET_KEY"))  # fmt: skip
        return secrets.token_urlsafe(50)
    key = secrets.token_urlsafe(50)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
    except FileExistsError:
        return path.read_text().strip()  # another process made it meanwhile
    except OSError as exc:
        problems.append(("bugnet.E004", f"cannot write {path}: {exc}",
                         "Make BUGNET_DATA_DIR writable, or set BUGNET_SECRET_KEY"))  # fmt: skip
    return key
