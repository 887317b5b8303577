"""Interop: SDKs nobody here wrote report to a running server, and what they send is kept.

The official ``sentry-sdk`` (Python) and ``@sentry/node`` (installed from npm, run with
``node``) each report errors, a message and a transaction to a fresh project; the errors must
be stored under the ids the SDK returned, and the other data categories counted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import Server

PYTHON_SCRIPT = """
import json, logging, sys
import sentry_sdk

sentry_sdk.init(dsn=sys.argv[1], release="interop@1.0.0", environment="interop",
                traces_sample_rate=1.0)
ids = {}
sentry_sdk.start_session()
try:
    {}["missing"]
except KeyError:
    ids["exception"] = sentry_sdk.capture_exception()
ids["message"] = sentry_sdk.capture_message("interop message", level="warning")
logging.getLogger("interop.billing").error("payment %s failed", "A-1")
ids["logging"] = sentry_sdk.last_event_id()
with sentry_sdk.start_transaction(op="task", name="interop-transaction"):
    with sentry_sdk.start_span(op="step", name="inner step"):
        pass
sentry_sdk.end_session()
sentry_sdk.flush(timeout=15)
print(json.dumps(ids))
"""

NODE_SCRIPT = """
const Sentry = require("@sentry/node");
Sentry.init({ dsn: process.argv[2], release: "interop-node@1.0.0", environment: "interop",
              tracesSampleRate: 1.0 });
(async () => {
  const ids = {};
  try {
    null.explode();
  } catch (error) {
    ids.exception = Sentry.captureException(error);
  }
  ids.message = Sentry.captureMessage("node interop message", "warning");
  Sentry.startSpan({ name: "node-interop-transaction", op: "task" }, () => {
    Sentry.startSpan({ name: "inner step", op: "step" }, () => {});
  });
  ids.flushed = await Sentry.flush(15000);
  console.log(JSON.stringify(ids));
})();
"""


# -- Helpers. -----------------------------------------------------------------------------------


def fresh_project(server: Server, name: str) -> tuple[str, int]:
    """A new project (so the counts below are this test's alone): (DSN, project id)."""
    created = server.bugnet("project", "create", f"{name} {os.urandom(4).hex()}")
    assert created.returncode == 0, created.stderr
    dsn = created.stdout.strip().splitlines()[-1]
    return dsn, int(dsn.rsplit("/", 1)[1])


def stored_in_project(server: Server, event_id: str, project_id: int) -> int:
    """1 if the event is queued or digested in that project (whether the digest ran or not);
    one statement, so one snapshot (the digest moves events from one table to the other)."""
    rows = server.query(
        "SELECT (SELECT COUNT(*) FROM ingest_queuedevent WHERE event_id = %s AND project_id = %s)"
        " + (SELECT COUNT(*) FROM issues_event WHERE event_id = %s AND project_id = %s)",
        (event_id, project_id, event_id, project_id),
    )
    return int(rows[0][0])


def accepted(server: Server, project_id: int) -> dict[str, int]:
    """category → quantity accepted for the project (summed over days)."""
    rows = server.query(
        "SELECT category, SUM(quantity) FROM projects_outcome "
        "WHERE project_id = %s AND outcome = %s GROUP BY category",
        (project_id, "accepted"),
    )
    return {category: int(quantity) for category, quantity in rows}


def wait_until(check: Any, timeout: float = 15) -> Any:
    """``check()`` once it is truthy (SDKs may still be delivering after flush returns)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def run(command: list[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "BUGNET_"))}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          **kwargs)  # fmt: skip


def ids_from(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"exit {result.returncode}:\n{result.stdout}\n{result.stderr}"
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output:\n{result.stderr}"
    return dict(json.loads(lines[-1]))


def assert_events_stored(server: Server, ids: dict[str, Any], names: list[str], project: int,
                         output: str) -> None:  # fmt: skip
    for name in names:
        event_id = ids.get(name)
        assert isinstance(event_id, str), (name, ids, output)
        assert len(event_id) == 32, (name, ids, output)
        stored = wait_until(lambda e=event_id: stored_in_project(server, e, project))
        assert stored == 1, f"the {name} event {event_id} was not stored:\n{output}"


# -- Python: the official sentry-sdk. -----------------------------------------------------------


def test_official_python_sdk_events_are_stored_and_other_data_counted(server, tmp_path):
    pytest.importorskip("sentry_sdk", reason="the server's test extra installs sentry-sdk")
    dsn, project = fresh_project(server, "Interop Python")
    script = tmp_path / "interop.py"
    script.write_text(textwrap.dedent(PYTHON_SCRIPT))
    result = run([sys.executable, str(script), dsn], timeout=60)
    ids = ids_from(result)
    output = result.stdout + result.stderr
    assert_events_stored(server, ids, ["exception", "message", "logging"], project, output)
    assert len({ids["exception"], ids["message"], ids["logging"]}) == 3
    counts = wait_until(lambda: (c := accepted(server, project)).get("session") and c, 15)
    assert counts, f"nothing counted for the project: {accepted(server, project)}\n{output}"
    assert counts.get("error", 0) == 3, counts
    assert counts.get("transaction", 0) >= 1, counts
    assert counts.get("session", 0) >= 1, counts


# -- Node: @sentry/node from npm. ---------------------------------------------------------------


def npm_latest(npm: str) -> tuple[str, str]:
    """The newest @sentry/node version on the registry, or ("", why) if npm cannot tell."""
    try:
        result = run([npm, "view", "@sentry/node", "version"], timeout=60)
    except subprocess.TimeoutExpired:
        return "", "npm view timed out"
    version = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if result.returncode != 0 or not version[:1].isdigit():
        return "", (result.stderr.strip().splitlines() or ["no answer"])[-1]
    return version, ""


def cached_versions(cache: Path) -> list[str]:
    """Versions installed in the cache, oldest first (staging directories are not versions)."""
    found = [
        path.name
        for path in cache.iterdir()
        if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", path.name)
        and (path / "node_modules" / "@sentry" / "node" / "package.json").is_file()
    ]
    return sorted(found, key=lambda v: [int(x) for x in v.split(".")])


@pytest.fixture(scope="session")
def sentry_node() -> tuple[str, Path]:
    """(node, a directory whose node_modules holds @sentry/node), cached in the temp dir."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the @sentry/node interop test")
    cache = Path(tempfile.gettempdir()) / "bugnet-interop-sentry-node"
    cache.mkdir(exist_ok=True)
    version, why = npm_latest(npm)
    if not version:
        cached = cached_versions(cache)
        if not cached:
            pytest.skip(f"npm cannot reach its registry to install @sentry/node: {why}")
        version = cached[-1]
    major = int(version.split(".")[0])
    assert major >= 11, f"the newest @sentry/node is {version}; expected 11 or later"
    target = cache / version
    if not (target / "node_modules" / "@sentry" / "node" / "package.json").is_file():
        staging = Path(tempfile.mkdtemp(prefix=f"{version}-", dir=cache))
        (staging / "package.json").write_text('{"private": true}\n')
        result = run([npm, "install", "--no-audit", "--no-fund", "--no-save",
                      f"@sentry/node@{version}"], timeout=300, cwd=staging)  # fmt: skip
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            pytest.fail(f"npm install @sentry/node@{version} failed:\n{result.stderr[-3000:]}")
        try:
            staging.rename(target)  # atomic: a half-installed cache is never used
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another run got there first
    return node, target


def test_official_node_sdk_events_are_stored(server, sentry_node):
    node, package_dir = sentry_node
    dsn, project = fresh_project(server, "Interop Node")
    script = package_dir / f"interop-{os.getpid()}-{os.urandom(3).hex()}.cjs"
    script.write_text(NODE_SCRIPT)
    try:
        result = run([node, str(script), dsn], timeout=60, cwd=package_dir)
    finally:
        script.unlink()
    ids = ids_from(result)
    output = result.stdout + result.stderr
    assert ids.get("flushed") is True, output
    assert_events_stored(server, ids, ["exception", "message"], project, output)
    # @sentry/node 11 streams spans (one "span" item of item_count 2) instead of a transaction.
    counts = wait_until(lambda: (c := accepted(server, project)).get("session") and c, 15)
    assert counts, f"nothing counted for the project: {accepted(server, project)}\n{output}"
    assert counts.get("error", 0) == 2, counts
    assert counts.get("transaction", 0) >= 1 or counts.get("span", 0) >= 2, counts
