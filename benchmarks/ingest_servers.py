"""``ingest.py --servers``: HTTP servers for Bugnet's ingest under the same load.

Each candidate serves ``bugnet_server.wsgi:application`` (``DJANGO_SETTINGS_MODULE=
bugnet_server.settings``) with the digest off, on its own copy of one SQLite data dir that
``bugnet serve --no-digest`` migrated and bootstrapped once. Before the load, each gets one
envelope as a chunked POST without Content-Length (what the Node SDK sends); it passes when
the answer is 200 and the event is in the queue. Candidates:

- gunicorn asgi: what ``bugnet serve`` runs (its default workers; ingest on the event loop),
  serving ``bugnet_server.asgi:application`` and the null app's ASGI twin;
- gunicorn gthread: what ``bugnet serve`` ran before, 8 threads per worker;
- gunicorn sync: ``2 x cores + 1`` workers, gunicorn's own advice; no keep-alive, so every
  request opens a connection;
- waitress: one process, 8 threads;
- granian (WSGI interface): the same workers as gthread, 8 blocking threads each (only when it
  installed).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import ingest_targets as targets
from ingest_load import chunked_post

WSGI_APP = "bugnet_server.wsgi:application"
NULL_APP = "ingest_null_app:application"
ASGI_TWIN = {WSGI_APP: "bugnet_server.asgi:application", NULL_APP: "ingest_null_app:asgi_app"}
THREADS = 8


def candidates(port: int, app: str = WSGI_APP) -> dict[str, tuple[str, list[str]]]:
    """name → (configuration shown in the report, command serving ``app``)."""
    workers = max(2, os.cpu_count() or 1)  # what `bugnet serve` starts
    sync_workers = 2 * (os.cpu_count() or 1) + 1
    bind = f"127.0.0.1:{port}"
    gunicorn = [sys.executable, "-m", "gunicorn", "--bind", bind, "--no-control-socket",
                "--error-logfile", "-", "--log-level", "warning"]  # fmt: skip
    found = {
        "gunicorn asgi": (
            f"{workers} workers, event loop (uvloop), keep-alive 5 s",
            [*gunicorn, "--worker-class", "asgi", "--workers", str(workers), "--keep-alive", "5",
             "--asgi-lifespan", "on", ASGI_TWIN[app]],
        ),
        "gunicorn gthread": (
            f"{workers} workers x {THREADS} threads, keep-alive 5 s",
            [*gunicorn, "--worker-class", "gthread", "--workers", str(workers),
             "--threads", str(THREADS), "--keep-alive", "5", app],
        ),
        "gunicorn sync": (
            f"{sync_workers} workers, no keep-alive",
            [*gunicorn, "--worker-class", "sync", "--workers", str(sync_workers), app],
        ),
        "waitress": (
            f"1 process x {THREADS} threads",
            [sys.executable, "-m", "waitress", f"--listen={bind}", f"--threads={THREADS}", app],
        ),
        "granian": (
            f"{workers} workers x {THREADS} blocking threads (WSGI)",
            [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers), "--blocking-threads", str(THREADS),
             "--no-ws", "--log-level", "warning", app],
        ),
    }  # fmt: skip
    if importlib.util.find_spec("granian") is None:
        del found["granian"]
    return found


def version_of(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name.split()[0])
    except PackageNotFoundError:
        return "?"


class Candidate(targets.Target):
    """One server on a copy of the template data dir, serving Bugnet (digest off) or the null
    app; it checks a chunked POST once it is up."""

    warm_path = "/_health/"

    def __init__(self, scratch: Path, name: str, app: str, template: targets.Bugnet,
                 chunked_body: bytes) -> None:  # fmt: skip
        self.name = name
        self.app = app
        self.repeat = 3 if app == NULL_APP else 1
        super().__init__(scratch / ("null-app" if app == NULL_APP else "bugnet"))
        self.template = template.scratch / "data"
        self.project, self.key = template.project, template.key
        self.chunked_body = chunked_body
        self.configuration = ""
        self.chunked: dict[str, Any] = {}

    def start(self) -> None:
        data = self.scratch / "data"
        shutil.copytree(self.template, data)
        self.port = targets.free_port()
        self.configuration, argv = candidates(self.port, self.app)[self.name]
        env = targets.bugnet_env(data, self.port)
        env["PYTHONPATH"] = str(targets.HERE)
        self._spawn(argv, env, "server.log")
        self._wait_ready("/_health/", "server.log")
        self.check_chunked()

    def check_chunked(self) -> None:
        """One envelope as a chunked POST: a 200 (and, for Bugnet, one more queued event)?"""
        before = self.queued()
        status, answer = chunked_post(self.port, self.project, self.key, self.chunked_body)
        stored = self.queued() - before
        wanted = 0 if self.app == NULL_APP else 1
        self.chunked = {"status": status, "stored": stored, "answer": answer[:120],
                        "ok": status == 200 and stored == wanted}  # fmt: skip

    def queued(self) -> int:
        path = self.scratch / "data" / "bugnet.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
            return int(db.execute("SELECT count(*) FROM ingest_queuedevent").fetchone()[0])

    def progress(self) -> tuple[int, int]:
        return 0, -1


def compare_servers(scratch: Path, bodies: Path, chunked_body: bytes, threads: int,
                    runs: int) -> dict:  # fmt: skip
    """Every candidate with Bugnet, then with the null app, ``runs`` times each (the median
    by accepted/s is kept); rows keyed "name|app"."""
    from ingest_measure import measure, median_run

    print("bootstrapping a data dir with `bugnet serve --no-digest` ...", flush=True)
    template = targets.Bugnet(scratch / "template", "sqlite", digest=False)
    template.start()
    template.stop()
    rows: dict[str, Any] = {}
    for app in (WSGI_APP, NULL_APP):
        for name in candidates(0):
            key, results = f"{name}|{app}", []
            for attempt in range(runs):
                print(f"{name} serving {app}, run {attempt + 1}: ...", flush=True)
                candidate = Candidate(scratch / name.replace(" ", "-"), name, app, template,
                                      chunked_body)  # fmt: skip
                try:
                    result = measure(candidate, bodies, threads)
                except targets.TargetError as exc:
                    rows[key] = {"skipped": str(exc).splitlines()[0], "log": str(exc)[-1500:]}
                    break
                result.update(chunked=candidate.chunked, configuration=candidate.configuration,
                              version=version_of(name), server=name, app=app)  # fmt: skip
                results.append(result)
                print(f"  accepted {result['accepted_per_s']:,.0f}/s, p99 "
                      f"{result['p99_ms']:.1f} ms, chunked "
                      f"{'ok' if candidate.chunked['ok'] else 'FAILED'}", flush=True)  # fmt: skip
            if results:
                rows[key] = median_run(results)
                rows[key]["chunked_all_ok"] = all(r["chunked"]["ok"] for r in results)
    return rows


def servers_report(run: dict[str, Any]) -> list[str]:
    from ingest_report import fmt

    shape = run["events"]
    lines = [
        f"## HTTP servers for Bugnet's ingest: {shape['events']:,} events of "
        f"{shape['event_bytes_mean']:,} bytes, {run['config']['threads']} threads, "
        f"{run['machine']['cores']} cores",
        "",
        "Each server serves Bugnet (`bugnet_server.wsgi`, SQLite, digest off) and then the null "
        "app (`ingest_null_app.py`: read the body, answer 200), which shows the server's own cost; "
        f"median of {run['config']['runs']} run(s) by accepted/s.",
        "",
        "| server | configuration | app | accepted/s | p50 ms | p99 ms | errors | chunked POST "
        "| idle RSS MB (PSS) |",
        "|---|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for key, r in run["servers"].items():
        name, app = key.split("|")
        shown_app = "Bugnet" if app == WSGI_APP else "null app"
        if "skipped" in r:
            lines.append(f"| {name} |  | {shown_app} | skipped: {r['skipped']} |  |  |  |  |  |")
            continue
        chunked = r["chunked"]
        shown = (
            "ok" if r["chunked_all_ok"] else f"FAILED ({chunked['status']}, {chunked['answer']!r})"
        )
        lines.append(
            f"| {name} {r['version']} | {r['configuration']} | {shown_app} "
            f"| {fmt(r['accepted_per_s'])} | {fmt(r['p50_ms'], 1)} | {fmt(r['p99_ms'], 1)} "
            f"| {r['errors']} | {shown} | {fmt(r['idle']['rss_mb'])} ({fmt(r['idle']['pss_mb'])}) |"
        )
    return lines
