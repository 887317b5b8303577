"""A real ``bugnet serve`` process per database backend, reached over real HTTP.

SQLite always; PostgreSQL when ``BUGNET_TEST_DATABASE_URL`` is set (``.ci/run`` sets it): the
tests then also run against a fresh database created on that server and dropped afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "envelopes"
BACKENDS = ["sqlite", "postgresql"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    dsn: str
    public_key: str
    project_id: int
    data_dir: Path
    database_url: str
    process: subprocess.Popen[str]
    output: list[str]
    extra_env: dict[str, str] = field(default_factory=dict)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the server's database directly (tests check what was committed)."""
        if self.database_url.startswith("sqlite"):
            path = self.database_url.removeprefix("sqlite:///")
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
                return db.execute(sql.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(self.database_url, autocommit=True) as db:
            return db.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def bugnet(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "bugnet_server.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        return server_env(self.data_dir, self.database_url, self.url) | self.extra_env


def server_env(data_dir: Path, database_url: str, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BUGNET_", "SENTRY_"))}
    env.update(BUGNET_DATA_DIR=str(data_dir), DATABASE_URL=database_url, BUGNET_BASE_URL=base_url)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bugnet serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/_health/", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("bugnet serve did not become healthy")


@contextmanager
def fresh_postgres_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database on the test server, dropped afterwards (skips the test
    when ``BUGNET_TEST_DATABASE_URL`` is not set)."""
    base = os.environ.get("BUGNET_TEST_DATABASE_URL")
    if not base:
        pytest.skip("BUGNET_TEST_DATABASE_URL is not set (PostgreSQL tests need a server)")
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(base)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(base, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def undigested_server(data_dir: Path, database_url: str) -> Iterator[tuple[Server, dict[str, str]]]:
    """``bugnet serve --no-digest``: events stay queued until the test runs ``bugnet digest``
    (with the environment given beside the server). Stopped with SIGTERM at the end."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(data_dir, database_url, url)
    web = subprocess.Popen([sys.executable, "-m", "bugnet_server.cli", "serve", "--bind",
                            f"127.0.0.1:{port}", "--no-digest"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        assert web.stdout is not None
        dsn = ""
        for line in web.stdout:
            if "DSN:" in line:
                dsn = line.split("DSN:", 1)[1].strip()
            if line.startswith("serving on"):
                break
        threading.Thread(target=lambda: [None for _ in web.stdout], daemon=True).start()  # type: ignore[union-attr]
        wait_healthy(url, web)
        yield Server(url, dsn, dsn.split("//")[1].split("@")[0], int(dsn.rsplit("/", 1)[1]),
                     data_dir, database_url, web, []), env  # fmt: skip
    finally:
        terminate(web)
        if web.stdout is not None:
            web.stdout.close()


def terminate(process: subprocess.Popen[str], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database("bugnet_test") as url:
        yield url


def start_server(data_dir: Path, database_url: str, **extra_env: str) -> Server:
    """``bugnet serve`` on a free port, its first run; ``extra_env``: more BUGNET_* settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = server_env(data_dir, database_url, url) | extra_env
    process = subprocess.Popen(
        [sys.executable, "-m", "bugnet_server.cli", "serve", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "8"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    output: list[str] = []
    assert process.stdout is not None
    dsn = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line)
        if "DSN:" in line:
            dsn = line.split("DSN:", 1)[1].strip()
        if line.startswith("serving on"):
            break
    if not dsn:
        process.kill()
        raise RuntimeError("no DSN printed on the first run:\n" + "".join(output))
    # Keep reading what the server prints, so a full pipe can never block it.
    threading.Thread(target=lambda: output.extend(process.stdout), daemon=True).start()  # type: ignore[arg-type]
    wait_healthy(url, process)
    key = dsn.split("//", 1)[1].split("@", 1)[0]
    return Server(
        url,
        dsn,
        key,
        int(dsn.rsplit("/", 1)[1]),
        data_dir,
        database_url,
        process,
        output,
        extra_env,
    )


def stop_server(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(60)
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
        if server.process.stdout is not None:
            server.process.stdout.close()


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp(f"bugnet-{request.param}")
    if request.param == "sqlite":
        database_url = f"sqlite:///{data_dir / 'bugnet.sqlite3'}"
    else:
        database_url = request.getfixturevalue("postgres_url")
    running = start_server(data_dir, database_url)
    yield running
    assert stop_server(running) == 0, "bugnet serve did not exit cleanly on SIGTERM"


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.skip(f"the shared envelope fixtures are not at {FIXTURES}")
    return FIXTURES


def fixture_event(name: str) -> dict[str, Any]:
    """The event item of a captured envelope (line 1 header, then item header/payload pairs)."""
    path = FIXTURES / f"{name}.envelope"
    if not path.exists():
        pytest.skip(f"the shared envelope fixtures are not at {FIXTURES}")
    lines = path.read_bytes().split(b"\n")
    for header, payload in zip(lines[1::2], lines[2::2]):
        if json.loads(header).get("type") == "event":
            event: dict[str, Any] = json.loads(payload)
            return event
    raise AssertionError(f"{name} has no event item")
