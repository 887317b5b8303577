"""The servers the ingest benchmark sends to: each one started from scratch in its own
directory, ready to take envelopes, measurable (memory of its process tree, digest progress)
and stopped again.

- ``NullSink``: ``ingest_sink.py`` in its own process, the ceiling of the harness.
- ``Bugnet``: ``bugnet serve`` (gunicorn gthread, and its digest process) on SQLite in a fresh
  data dir, or on a fresh PostgreSQL database that ``stop()`` drops; or, for the HTTP server
  comparison, ``bugnet_server.wsgi:application`` under another server with no digest.
- ``Bugsink``: Bugsink 2.6.1 from its own environment (``ingest_bugsink_settings.py``):
  gunicorn serving ``bugsink.wsgi`` with its Docker image's worker count, plus
  ``bugsink-runsnappea``, its digest process.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUGSINK_VENV = HERE / ".venv-bugsink"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
START_TIMEOUT = 120.0


class TargetError(RuntimeError):
    """A target could not be started; the message says why (and where its log is)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(port: int, path: str, headers: Optional[dict[str, str]] = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


# --------------------------------------------------------------------------- processes


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(roots: list[int]) -> list[int]:
    """``roots`` and all their descendants that are alive."""
    children, found, todo = _children(), [], list(roots)
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(roots: list[int]) -> dict[str, Any]:
    """RSS summed over the process tree (shared pages count once per process, as ``ps``
    shows them) and PSS (shared pages split between their processes: the honest total)."""
    each = [
        {"pid": pid, "command": process_role(pid)[:120],
         "rss_mb": _kib(f"/proc/{pid}/status", "VmRSS:") / 1024,
         "pss_mb": _kib(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024}
        for pid in process_tree(roots)
    ]  # fmt: skip
    return {
        "rss_mb": sum(p["rss_mb"] for p in each),
        "pss_mb": sum(p["pss_mb"] for p in each),
        "processes": len(each),
        "by_process": each,
    }


def process_role(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    return cmdline.strip()


def stop_processes(processes: list[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """SIGTERM each process we started, wait, then SIGKILL what is left of their trees."""
    roots = [p.pid for p in processes if p.poll() is None]
    tree = process_tree(roots)
    for proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for pid in process_tree(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for proc in processes:
        if proc.poll() is None:
            proc.wait(10)


# --------------------------------------------------------------------------- targets


class Target(ABC):
    """A started server. Subclasses set ``port``, ``project``, ``key`` in ``start()``."""

    name = "target"
    warm_path = "/"
    digests = False
    repeat = 1  # times the load sends the bodies (only where nothing is stored)
    poll_interval = 0.05  # seconds between progress polls while it digests

    def __init__(self, scratch: Path) -> None:
        # a fresh directory per run: nothing (database, log) carries over from the last one
        scratch.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=scratch))
        self.processes: list[subprocess.Popen[bytes]] = []
        self.port = 0
        self.project = ""
        self.key = ""
        self.notes: list[str] = []

    @abstractmethod
    def start(self) -> None:
        """Start the target's processes and wait until it accepts events."""

    @abstractmethod
    def progress(self) -> tuple[int, int]:
        """(events digested, events still queued; -1 when the target does not say)."""

    def stop(self) -> None:
        stop_processes(self.processes)

    def memory(self) -> dict[str, Any]:
        return tree_memory([p.pid for p in self.processes])

    def pids_by_role(self) -> dict[str, list[int]]:
        """The tree's processes that do the work, by role (for the profiler)."""
        return {"server": process_tree([p.pid for p in self.processes])}

    def _spawn(self, argv: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        handle = (self.scratch / log).open("ab")
        proc = subprocess.Popen(argv, env=env, cwd=self.scratch, stdout=handle,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # fmt: skip
        self.processes.append(proc)
        return proc

    def _wait_ready(self, path: str, log: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.processes):
                break
            if http_get(self.port, path)[0] == 200:
                return
            time.sleep(0.2)
        tail = (self.scratch / log).read_text(errors="replace")[-2500:]
        self.stop()
        raise TargetError(f"{self.name} did not become ready ({self.scratch / log}):\n{tail}")


class NullSink(Target):
    name = "null sink"
    repeat = 3  # a run of N alone lasts well under a second here

    def start(self) -> None:
        proc = subprocess.Popen([sys.executable, str(HERE / "ingest_sink.py")],
                                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)  # fmt: skip
        self.processes.append(proc)
        assert proc.stdout is not None
        self.port = int(proc.stdout.readline().split()[1])
        self.project, self.key = "1", "0" * 32

    def progress(self) -> tuple[int, int]:
        return 0, -1


def bugnet_env(data_dir: Path, port: int, database_url: str = "") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGNET_", "SENTRY_"))}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(BUGNET_DATA_DIR=str(data_dir), BUGNET_BASE_URL=f"http://127.0.0.1:{port}",
               DJANGO_SETTINGS_MODULE="bugnet_server.settings")  # fmt: skip
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def bugnet_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bugnet_server.cli", *args]


DSN = re.compile(rb"DSN:\s+http://([0-9a-f]+)@127\.0\.0\.1:\d+/(\d+)")


class Bugnet(Target):
    """``bugnet serve`` as a user runs it: migrate, bootstrap, gunicorn + digest."""

    warm_path = "/_health/"
    digests = True

    def __init__(self, scratch: Path, database: str = "sqlite", digest: bool = True) -> None:
        self.name = f"Bugnet {'SQLite' if database == 'sqlite' else 'PostgreSQL'}"
        self.name += "" if digest else " (no digest)"
        super().__init__(scratch)
        self.database = database
        self.digests = digest
        self.pg_name = f"bugnet_bench_{os.getpid()}_{int(time.time())}"
        self._db: Any = None
        self.token = ""
        self.env: dict[str, str] = {}

    @property
    def database_url(self) -> str:
        if self.database == "sqlite":
            return ""
        return f"postgresql://postgres@127.0.0.1:5432/{self.pg_name}"

    def start(self) -> None:
        if self.database == "postgresql":
            _pg_admin(f'CREATE DATABASE "{self.pg_name}"')
        self.port = free_port()
        self.env = env = bugnet_env(self.scratch / "data", self.port, self.database_url)
        argv = bugnet_command("serve", "--bind", f"127.0.0.1:{self.port}")
        if not self.digests:
            argv.append("--no-digest")
        self._spawn(argv, env, "serve.log")
        self._wait_ready("/_health/", "serve.log")
        found = DSN.search((self.scratch / "serve.log").read_bytes())
        if found is None:
            self.stop()
            raise TargetError(f"{self.name}: no DSN in {self.scratch / 'serve.log'}")
        self.key, self.project = found.group(1).decode(), found.group(2).decode()
        token = subprocess.run(bugnet_command("token", "create", "admin@bugnet.local"), env=env,
                               capture_output=True, text=True, check=True)  # fmt: skip
        self.token = token.stdout.strip().splitlines()[-1]

    def _connect(self) -> Any:
        if self.database == "sqlite":
            path = self.scratch / "data" / "bugnet.sqlite3"
            return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        import psycopg

        return psycopg.connect(self.database_url, autocommit=True)

    def progress(self) -> tuple[int, int]:
        if self._db is None:
            self._db = self._connect()
        row = self._db.execute(
            "SELECT (SELECT count(*) FROM issues_event), (SELECT count(*) FROM ingest_queuedevent)"
        ).fetchone()
        return int(row[0]), int(row[1])

    def counts(self) -> dict[str, int]:
        """What the API says it received (GET .../stats/), and how many issues it made."""
        status, body = http_get(self.port, "/api/0/projects/default/default/stats/",
                                {"Authorization": f"Bearer {self.token}"})  # fmt: skip
        out: dict[str, int] = {}
        if status == 200:
            for row in json.loads(body):
                out[f"{row['category']}/{row['outcome']}"] = row["quantity"]
        if self._db is None:
            self._db = self._connect()
        out["issues"] = int(self._db.execute("SELECT count(*) FROM issues_issue").fetchone()[0])
        return out

    def pids_by_role(self) -> dict[str, list[int]]:
        roles: dict[str, list[int]] = {"web worker": [], "digest": []}
        root = self.processes[0].pid
        for pid in process_tree([root]):
            command = process_role(pid)
            if " digest" in command:
                roles["digest"].append(pid)
            elif pid != root:  # gunicorn's workers
                roles["web worker"].append(pid)
        return {role: pids for role, pids in roles.items() if pids}

    def stop(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        super().stop()
        if self.database == "postgresql":
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def postgres_unreachable() -> str:
    """Why the PostgreSQL row cannot run ('' when it can)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        reason = " ".join(str(exc).split())
        return f"PostgreSQL at 127.0.0.1:5432 (user postgres) is unreachable: {reason}"
    return ""


BUGSINK_SETUP = """
from django.contrib.auth import get_user_model
from projects.models import Project, ProjectMembership, ProjectRole
from teams.models import Team, TeamMembership, TeamRole
user = get_user_model().objects.create_superuser(
    username="bench@example.com", email="bench@example.com", password="bench-password")
team = Team.objects.create(name="bench")
TeamMembership.objects.create(team=team, user=user, role=TeamRole.ADMIN, accepted=True)
project = Project.objects.create(team=team, name="bench", slug="bench")
ProjectMembership.objects.create(project=project, user=user, role=ProjectRole.ADMIN, accepted=True)
print("PROJECT", project.id, project.sentry_key.hex)
"""


class Bugsink(Target):
    """Bugsink 2.6.1: gunicorn (sync workers, ``min(cores, 4)`` of them, as its Docker image
    configures) serving ``bugsink.wsgi``, and ``bugsink-runsnappea`` digesting."""

    name = "Bugsink 2.6.1"
    warm_path = "/health/ready"
    digests = True
    poll_interval = 0.5  # each poll is a request its few sync workers must also serve

    def __init__(self, scratch: Path, workers: int = 0) -> None:
        super().__init__(scratch)
        self.workers = workers or min(os.cpu_count() or 1, 4)
        self.token = ""

    def _env(self) -> dict[str, str]:
        # The settings module is copied into a folder of its own: with this folder on the path,
        # ingest.py would shadow Bugsink's app of the same name.
        settings_dir = self.scratch / "settings"
        if not settings_dir.exists():
            settings_dir.mkdir()
            shutil.copy(HERE / "ingest_bugsink_settings.py", settings_dir)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "BUGNET_"))}
        env.pop("PYTHONPATH", None)
        env.update(PYTHONPATH=str(settings_dir), DJANGO_SETTINGS_MODULE="ingest_bugsink_settings",
                   BENCH_BUGSINK_DIR=str(self.scratch),
                   BENCH_BUGSINK_URL=f"http://127.0.0.1:{self.port}")  # fmt: skip
        return env

    def _manage(self, *args: str) -> str:
        done = subprocess.run([str(BUGSINK_VENV / "bin" / "bugsink-manage"), *args],
                              env=self._env(), cwd=self.scratch, capture_output=True,
                              text=True)  # fmt: skip
        if done.returncode:
            raise TargetError(f"bugsink-manage {' '.join(args)} failed:\n{done.stderr[-2500:]}")
        return done.stdout

    def start(self) -> None:
        self.port = free_port()
        self._manage("migrate", "-v0")
        self._manage("migrate", "snappea", "--database=snappea", "-v0")
        out = self._manage("shell", "-c", BUGSINK_SETUP)
        _, project, key = next(ln for ln in out.splitlines() if ln.startswith("PROJECT")).split()
        self.project, self.key = project, key
        self.token = self._manage("create_auth_token").strip().splitlines()[-1]
        bin_dir = BUGSINK_VENV / "bin"
        self._spawn([str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(self.workers), "--no-control-socket",
                     "--error-logfile", "-", "bugsink.wsgi"], self._env(), "gunicorn.log")  # fmt: skip
        self._spawn([str(bin_dir / "bugsink-runsnappea")], self._env(), "snappea.log")
        self._wait_ready("/health/ready", "gunicorn.log")

    def progress(self) -> tuple[int, int]:
        status, body = http_get(self.port, f"/api/canonical/0/projects/{self.project}/",
                                {"Authorization": f"Bearer {self.token}"})  # fmt: skip
        if status != 200:
            return -1, -1
        return int(json.loads(body)["digested_event_count"]), -1

    def pids_by_role(self) -> dict[str, list[int]]:
        return {
            "web": process_tree([self.processes[0].pid]),
            "snappea": process_tree([self.processes[1].pid]),
        }


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
