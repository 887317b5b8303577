#!/usr/bin/env python3
"""Bugnet's ingest against Bugsink 2.6.1 and a null HTTP sink, in one run, as Markdown tables.

Run from the repository root on a machine with only Python 3.11 (and, for the PostgreSQL row,
the PostgreSQL server at 127.0.0.1:5432, trust auth, user postgres; the row is skipped with
the reason when it is unreachable):

    python3 benchmarks/ingest.py                # the report, about 5 minutes on 2 cores
    python3 benchmarks/ingest.py --quick        # 300 events, one run each: checks the harness
    python3 benchmarks/ingest.py --servers      # HTTP servers for Bugnet's ingest, about 4 min
    python3 benchmarks/ingest.py --only sqlite,bugsink --events 5000 --runs 1

The first run creates two environments and re-executes itself in the first:
``benchmarks/.venv-ingest`` (the local SDK and server, editable, plus py-spy, waitress and
granian) and ``benchmarks/.venv-bugsink`` (``bugsink==2.6.1`` with its gunicorn); a change to
either pyproject.toml reinstalls. Nothing is asserted: this is a report, with pass/fail per goal.

The load (``ingest_load.py``, a process of its own): N envelopes (``ingest_events.py``: about
12 KiB Python-shaped error events built from the Flask fixture, each with its own event_id,
eight exception kinds, gzip level 9 and ``X-Sentry-Auth`` as sentry-sdk sends them) from 16
threads, each on one keep-alive connection (http.client, TCP_NODELAY). Every target gets the
same bodies. Per target:

- accepted/s: 200 answers over the seconds from the first send to the last answer;
- p50/p99: per request, from writing the request to reading the whole answer;
- end-to-end events/s: accepted events over the seconds from the first send until the last is
  digested. Bugnet: ``ingest_queuedevent`` empty and ``issues_event`` holding every event (read
  from its database every 50 ms); Bugsink: its API's ``digested_event_count`` (every 0.5 s);
- errors: requests without a 200 (other statuses or connection errors);
- RSS: summed over the server's process tree (as ``ps`` shows it; forked workers share pages,
  so PSS, which splits shared pages, is shown too) once it answers its health check and has
  settled for 2 s, and again after the run;
- CPU ms per event: user + system time of each role's processes (web workers, digest...)
  from before the load until the last event is digested, over the events sent.

Each target, Bugsink included, runs ``--runs`` times (3), each time from scratch, in rounds:
every target once, then every target again, so that a drift in the machine's speed (20 to 40%
within minutes on the 2-core VMs we measure on) reaches every target alike. The table shows
each target's run with the median end-to-end rate (the sink: accepted/s), the notes list every
run, and the ratios are also given within each round. (Bugsink's end-to-end rate has varied
most of all the targets', 34 to 66 events/s in the full runs so far, and it sets the headline
ratio: one run of it is not enough.)

Targets (each started fresh in its own scratch directory):

- null sink: ``ingest_sink.py``, a ``ThreadingHTTPServer`` process that reads the body and
  answers 200: the ceiling of this harness on this machine;
- Bugnet SQLite / PostgreSQL: ``bugnet serve`` (migrate, bootstrap, gunicorn's ASGI worker
  with its default workers and threads, and the ``bugnet digest`` process it supervises, whose
  CPU is shown apart), on a fresh data dir; for PostgreSQL on a fresh database that is dropped
  afterwards;
- Bugsink 2.6.1: ``ingest_bugsink_settings.py`` (quotas raised, no phone-home), migrated and
  set up without prompts, gunicorn with its Docker image's workers (sync, ``min(cores, 4)``)
  and ``bugsink-runsnappea`` digesting.

When Bugnet on SQLite misses a goal (or with ``--profile always``), a diagnosis follows: a
fresh ``bugnet serve --no-digest`` takes the load with py-spy on its web workers (once
sampling every running thread, once only the thread holding the GIL), then ``bugnet digest``
drains what it queued with py-spy on it (``ingest_profile.py``); the costliest functions of
each half are printed. ``--servers`` (``ingest_servers.py``) runs the same load against
``bugnet_server.wsgi:application`` (digest off) and against a null WSGI app under gunicorn
gthread, gunicorn sync, waitress and granian, and checks that each takes a chunked POST
without Content-Length.
Results go to ``benchmarks/results/ingest.json`` (``ingest_servers.json`` for ``--servers``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv-ingest"
BUGSINK_VENV = HERE / ".venv-bugsink"
RESULTS = HERE / "results"
BENCH_INSTALL = ["-e", str(ROOT / "sdk"), "-e", str(ROOT / "server"), "py-spy", "waitress"]
OPTIONAL_INSTALL = ["granian"]  # the comparison goes on without it if it does not install
BUGSINK_INSTALL = ["bugsink==2.6.1", "gunicorn"]
TARGETS = ("sink", "sqlite", "postgres", "bugsink")

# --------------------------------------------------------------------------- bootstrap


def _pip(python: Path, *args: str, check: bool = True) -> bool:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
    )
    if done.returncode and check:
        sys.exit(f"pip {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return done.returncode == 0


def _ensure(path: Path, install: list[str], stamp_from: list[Path], optional: list[str]) -> Path:
    """A virtual environment at ``path`` with ``install``, unless its stamp is up to date."""
    python = path / "bin" / "python"
    digest = hashlib.sha256(" ".join(install + optional).encode())
    for source in stamp_from:
        digest.update(source.read_bytes())
    stamp = path / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == digest.hexdigest():
        return python
    if not python.exists():
        print(f"creating virtual environment in {path.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    _pip(python, "install", *install)
    for name in optional:
        if not _pip(python, "install", name, check=False):
            print(f"note: {name} did not install; it is left out", flush=True)
    stamp.write_text(digest.hexdigest())
    return python


def ensure_environments(need_bugsink: bool) -> Path:
    pyprojects = [ROOT / "sdk" / "pyproject.toml", ROOT / "server" / "pyproject.toml"]
    python = _ensure(VENV, BENCH_INSTALL, pyprojects, OPTIONAL_INSTALL)
    if need_bugsink:
        _ensure(BUGSINK_VENV, BUGSINK_INSTALL, [], [])
    return python


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


# --------------------------------------------------------------------------- the runs


def digest_importable() -> str:
    """'' if Bugnet's digest imports; else the error (the Bugnet rows then run without it)."""
    code = "import django; django.setup(); import bugnet_server.digest.batch"
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bugnet_server.settings",
               "BUGNET_DATA_DIR": data_dir, "BUGNET_SECRET_KEY": "import-check"}  # fmt: skip
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return "" if done.returncode == 0 else done.stderr.strip().splitlines()[-1]


def plan(args: argparse.Namespace, scratch: Path, digest: bool) -> list[tuple[str, Callable]]:
    import ingest_targets as targets

    makers = {
        "sink": ("null sink", lambda: targets.NullSink(scratch)),
        "sqlite": ("Bugnet SQLite", lambda: targets.Bugnet(scratch, "sqlite", digest)),
        "postgres": ("Bugnet PostgreSQL", lambda: targets.Bugnet(scratch, "postgresql", digest)),
        "bugsink": ("Bugsink 2.6.1", lambda: targets.Bugsink(scratch)),
    }
    return [makers[name] for name in TARGETS if name in args.only]


def run_targets(args: argparse.Namespace, scratch: Path, bodies: Path, run: dict) -> None:
    import ingest_targets as targets
    from ingest_measure import diagnose, measure, median_run
    from ingest_report import fmt, goals

    rows: dict[str, dict] = run["targets"]
    missing_digest = digest_importable()
    if missing_digest:
        run["notes"].append(f"Bugnet's digest does not import ({missing_digest}): the Bugnet "
                            "rows ran with --no-digest, so they have no end-to-end figure")  # fmt: skip
    # In rounds, so that a drift in the machine's speed reaches every target alike (see above).
    planned = []
    for name, make in plan(args, scratch, not missing_digest):
        if name == "Bugnet PostgreSQL" and (why := targets.postgres_unreachable()):
            rows[name] = {"skipped": why}
            print(f"{name}: skipped ({why})", flush=True)
            continue
        planned.append((name, make))
    runs: dict[str, list[dict]] = {name: [] for name, _ in planned}
    failed: set[str] = set()
    for attempt in range(args.runs):
        for name, make in planned:
            if name in failed:
                continue
            print(f"{name}, round {attempt + 1}: {args.events:,} events ...", flush=True)
            try:
                r = measure(make(), bodies, args.threads)
            except targets.TargetError as exc:
                run["notes"].append(str(exc))
                failed.add(name)
                continue
            print(f"  accepted {r['accepted_per_s']:,.0f}/s, p99 {r['p99_ms']:.1f} ms, "
                  f"end-to-end {fmt(r.get('e2e_per_s'))}/s, errors {r['errors']}", flush=True)  # fmt: skip
            runs[name].append(r)
    # A target's n-th run is round n's (one that failed to start has no later runs).
    run["rounds"] = [
        {name: {k: rs[i].get(k) for k in ("accepted_per_s", "e2e_per_s")}
         for name, rs in runs.items() if i < len(rs)}
        for i in range(args.runs)
    ]  # fmt: skip
    for name, _ in planned:
        rows[name] = (
            median_run(runs[name]) if runs[name] else {"skipped": "did not start (see the notes)"}
        )
    missed = [g["goal"] for g in goals(rows, run["machine"]["cores"]) if g["result"] == "FAIL"]
    wanted = args.profile == "always" or (args.profile == "auto" and missed)
    if wanted and "sqlite" in args.only and not missing_digest:
        print("diagnosis: Bugnet SQLite ingest alone, then digest alone, under py-spy "
              f"(missed: {', '.join(missed) or 'none'}) ...", flush=True)  # fmt: skip
        run["diagnosis"] = diagnose(scratch / "diagnosis", bodies, args.threads)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 events, one run per target")
    parser.add_argument("--events", type=int, default=0, help="events per run (default 2000)")
    parser.add_argument("--runs", type=int, default=0,
                        help="runs per target, the median is shown (default 3)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=16, help="sending threads (default 16)")
    parser.add_argument("--only", default=",".join(TARGETS),
                        help="comma-separated targets: " + ", ".join(TARGETS))  # fmt: skip
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="diagnose Bugnet SQLite under py-spy: when it misses a goal (auto)")  # fmt: skip
    parser.add_argument("--servers", action="store_true",
                        help="compare HTTP servers for Bugnet's ingest instead")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    args.events = args.events or (300 if args.quick else 2000)
    args.runs = args.runs or (1 if args.quick else 3)
    args.only = [t.strip() for t in args.only.split(",") if t.strip()]
    if unknown := set(args.only) - set(TARGETS):
        parser.error(f"unknown target(s) {sorted(unknown)}; choose from {TARGETS}")
    return args


def main() -> None:
    args = parse_args()
    if not in_bench_venv():
        python = ensure_environments(need_bugsink="bugsink" in args.only and not args.servers)
        os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.path.insert(0, str(HERE))
    import ingest_targets
    from ingest_events import build_bodies, write_bodies

    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="bugnet-ingest-bench-"))
    bodies_path = scratch / "bodies.bin"
    bodies, shape = build_bodies(args.events)
    write_bodies(bodies, bodies_path)
    run: dict[str, Any] = {
        "machine": {"cores": os.cpu_count() or 1, "python": platform.python_version(),
                    "platform": platform.platform()},
        "config": {"events": args.events, "threads": args.threads, "runs": args.runs,
                   "quick": args.quick},
        "events": shape, "targets": {}, "notes": [],
    }  # fmt: skip
    try:
        if args.servers:
            from ingest_servers import compare_servers, servers_report

            run["servers"] = compare_servers(
                scratch, bodies_path, bodies[0], args.threads, args.runs
            )
            lines, out = servers_report(run), RESULTS / "ingest_servers.json"
        else:
            from ingest_report import report

            run_targets(args, scratch, bodies_path, run)
            lines, out = report(run), RESULTS / "ingest.json"
    finally:
        if not args.keep:
            ingest_targets.remove_tree(scratch)
    run["seconds"] = round(time.monotonic() - started, 1)
    print("\n" + "\n".join(lines) + f"\n\n(run took {run['seconds']:.0f} s)")
    RESULTS.mkdir(exist_ok=True)
    out.write_text(json.dumps(run, indent=2, default=str) + "\n")
    kept = f"; scratch kept in {scratch}" if args.keep else ""
    print(f"raw numbers: {out.relative_to(ROOT)}{kept}")


if __name__ == "__main__":
    main()
