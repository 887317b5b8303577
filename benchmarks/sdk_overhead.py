#!/usr/bin/env python3
"""Bugnet SDK overhead against sentry-sdk 2.75.0, in one run, as one Markdown table.

Run from the repository root on a machine with only Python 3.11:

    python3 benchmarks/sdk_overhead.py                # the full report, about 5 minutes on 2 cores
    python3 benchmarks/sdk_overhead.py --quick        # small counts, to check the harness (30 s)
    python3 benchmarks/sdk_overhead.py --only sentry  # one side only

The first run creates ``benchmarks/.venv-sdk`` with sentry-sdk 2.75.0 and the local SDK (editable),
makes sure ``brotli`` is not importable there (sentry-sdk would pick it over gzip; both SDKs must
compress with gzip), installs Flask, Django and FastAPI each in a directory of its own beside
it (see ``FRAMEWORK_PINS``), and re-executes itself inside it. Every measurement runs in fresh
subprocesses (``sdk_overhead_worker.py`` beside this file, answering one JSON line), so the two
SDKs never share a process, and the runs of both sides are interleaved. Both SDKs send to the
null sink in ``null_sink.py``, an HTTP server in this process on 127.0.0.1 that answers
``200 {"id": ...}`` to every POST. Bugnet always gets ``spool_dir`` in a temporary directory.
The table is printed; the raw numbers go to ``benchmarks/results/sdk_overhead.json``. Nothing
is asserted: this is a report.

Metrics (ratio = bugnet / sentry-sdk; the targets are the issue's):

1. import + init: ``time.perf_counter()`` around ``import sdk; sdk.init(dsn=...)`` in a fresh
   interpreter; median over the processes. Target <= 15 %. The wall time of a bare
   ``python -c pass`` is shown for scale.
2. capture_exception: time on the caller's thread of ``capture_exception()`` inside the
   ``except``, for a new exception raised 20 frames deep (each frame holds an int, a 50-character
   str, a small dict, a 10-item list and an object with a ``__repr__``); median and p90 over the
   timed calls of every process, after warm-up calls. Default integrations; no tracing. The
   median carries the target, <= 20 %. For information: how many envelopes reached the sink,
   how many Bugnet left in its spool, and the shape of one sent event (frames, frames with
   locals, size), so both sides are seen to send the same thing.
3. logger.info: per-call cost of ``log.info("order %s charged %d", "A-1", 42)`` on a module-level
   ``logging.getLogger("bench")`` with no handlers, propagating to a root with no handlers set to
   INFO; median of rounds of 100,000 calls, with no SDK and with each SDK's default logging
   integration. The target, <= 20 %, applies to the overhead above the no-SDK baseline.
4. memory, server down: the DSN names a port that refuses connections. RSS (VmRSS) is read after
   warm-up captures and a flush (so each SDK has met the dead server once and loaded what it
   loads for that) and again after 10,000 more captures (new exception, 10 frames with locals)
   and ``flush(timeout=5)``. tracemalloc stays off because it would distort RSS; the growth of
   ``sys.getallocatedblocks()`` is shown alongside, RSS is sampled every 1,000 captures (a leak
   climbs, a one-off step does not), and Bugnet's spool size on disk is information. A side whose
   captures take longer than 90 s stops early, and the notes under the table say so.
   Target <= 20 %.
5. per request, Flask, Django and FastAPI: the same one-route app in each (``GET /items/42``
   with a query string, browser headers and a cookie; it logs one ``logger.info`` line and
   answers a small JSON object; no error, no database: ``sdk_overhead_apps.py``), called
   in-process the way its server calls it (WSGI callable, or ASGI callable on one event loop),
   with no SDK (the bare app), with Bugnet and with sentry-sdk; default options, so no tracing
   and no profiling. Before timing, each worker checks that its SDK's framework integration is
   on and took a request (its own isolation scope, the log line kept as a breadcrumb), and
   fails the run if not. The three sides run as three processes started together, which then
   time rounds of 400 requests in turn (one process works, the others wait), for 20 cycles,
   with 4 such sets of fresh processes. Time is the process's CPU time: with no I/O in the
   loop it equals the wall time on an idle core, and on a busy machine it leaves out the time
   other processes held the core (the wall-clock medians are in the notes). A side's figure is
   the median of its rounds; its overhead is the median of its round minus the bare app's
   round of the same cycle, so a change of load on the machine mostly cancels. The 95 %
   interval of an overhead is Student's t over the 4 sets' medians of those differences
   (processes, not rounds, are what differ from run to run). Target: Bugnet's
   overhead <= 20 % of sentry-sdk's, per framework; when Bugnet's interval reaches zero, the
   ratio judged is its upper end over sentry-sdk's overhead. An SDK without an integration for
   a framework shows "n/a (integration missing)".
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import venv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Union

from null_sink import NullSink, start_sink
from sdk_overhead_worker import (
    FRAMEWORKS,
    MODULES,
    QUICK_PLAN,
    READY_MARK,
    RESULT_MARK,
    ROUND_MARK,
    Plan,
)

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "benchmarks" / ".venv-sdk"
RESULTS = ROOT / "benchmarks" / "results" / "sdk_overhead.json"
SENTRY_PIN = "sentry-sdk==2.75.0"
INSTALL_ARGS = [SENTRY_PIN, "-e", str(ROOT / "sdk")]
# Each framework, with the libraries its request path runs through, in a directory of its own
# (pip --target), on PYTHONPATH only for that framework's web workers: sentry-sdk switches on
# (and imports) every framework it can import at init(), so with all of them in the venv the
# other metrics would measure Django and FastAPI imports, and a Flask app would run with
# sentry-sdk's Django and Starlette patches in place, which no Flask deployment has.
FRAMEWORK_PINS = {
    "flask": ["Flask==3.1.3", "Werkzeug==3.1.9"],
    "django": ["Django==5.2.19", "asgiref==3.13.0"],
    "fastapi": ["fastapi==0.165.0", "starlette==1.10.0", "pydantic==2.14.3"],
}
FRAMEWORK_TITLES = {"flask": "Flask", "django": "Django", "fastapi": "FastAPI"}
SIDES = ("bugnet", "sentry")
WORKER = Path(__file__).resolve().with_name("sdk_overhead_worker.py")
MIB = 1024 * 1024


# --------------------------------------------------------------------------- bootstrap


def venv_python() -> Path:
    return VENV / "bin" / "python"


def in_bench_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def framework_dir(framework: str) -> Path:
    return VENV / "frameworks" / framework


def install_digest() -> str:
    """What the environment is built from: a change to any of it reinstalls."""
    digest = hashlib.sha256((ROOT / "sdk" / "pyproject.toml").read_bytes())
    digest.update(" ".join(INSTALL_ARGS).encode())
    digest.update(json.dumps(FRAMEWORK_PINS, sort_keys=True).encode())
    return digest.hexdigest()


def ensure_venv() -> Path:
    """Create ``benchmarks/.venv-sdk`` with both SDKs and without brotli, and each framework in
    its own directory beside them, unless up to date."""
    python = venv_python()
    stamp = VENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == install_digest():
        return python
    if not python.exists():
        print(f"creating virtual environment in {VENV.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", *INSTALL_ARGS], check=True)
    subprocess.run([*pip, "uninstall", "-y", "brotli", "brotlicffi"], capture_output=True)
    for framework, pins in FRAMEWORK_PINS.items():
        target = framework_dir(framework)
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([*pip, "install", "--target", str(target), *pins], check=True)
    stamp.write_text(install_digest())
    return python


def reexec_in_venv() -> None:
    python = ensure_venv()
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


def brotli_importable() -> bool:
    """sentry-sdk compresses with brotli whenever this is true; we want gzip on both sides."""
    return importlib.util.find_spec("brotli") is not None


# --------------------------------------------------------------------------- the parent


def refused_dsn() -> tuple[str, socket.socket]:
    """A DSN whose port refuses connections: bound, never listening, so no one else takes it."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    return f"http://public@127.0.0.1:{holder.getsockname()[1]}/1", holder


IMPORT_PROBE = """\
import sys, time
start = time.perf_counter()
import {module} as sdk
sdk.init(**{options!r})
elapsed = time.perf_counter() - start
print({mark!r} + repr(elapsed), flush=True)
"""


def child_env() -> dict[str, str]:
    """The parent's environment without SDK settings, with bytecode caching on for every module.

    The editable SDK has no pip-compiled bytecode, so with PYTHONDONTWRITEBYTECODE set it would
    be compiled in every process; one cache inside the venv serves both sides alike.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "BUGNET_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(VENV / "pycache")
    return env


def spawn(argv: list[str], cwd: str, timeout: float) -> str:
    """Run one child to completion and return the payload of its result line."""
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return line[len(RESULT_MARK) :]
    raise RuntimeError(f"{' '.join(argv[:5])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


class Runner:
    """Spawns the workers: a fresh process per run, a scratch directory per run."""

    def __init__(self, sink: NullSink, quick: bool, scratch: str) -> None:
        self.sink = sink
        self.quick = quick
        self.scratch = scratch
        self._runs = 0

    def _workdir(self) -> str:
        self._runs += 1
        path = Path(self.scratch) / f"run-{self._runs}"
        (path / "spool").mkdir(parents=True)
        return str(path)

    def import_init(self, side: str) -> float:
        workdir = self._workdir()
        dsn, _ = self.sink.new_dsn()
        options: dict[str, Any] = {"dsn": dsn}
        if side == "bugnet":
            options["spool_dir"] = str(Path(workdir) / "spool")
        code = IMPORT_PROBE.format(module=MODULES[side], options=options, mark=RESULT_MARK)
        return float(spawn(["-c", code], workdir, timeout=60))

    def bare_interpreter(self) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=child_env(), check=True)
        return time.perf_counter() - start

    def worker(self, kind: str, side: str, dsn: Optional[str] = None) -> dict[str, Any]:
        """Run one worker for one side; with no DSN given it reports to the null sink."""
        workdir = self._workdir()
        project = None
        if dsn is None:
            dsn, project = self.sink.new_dsn()
        spool = str(Path(workdir) / "spool")
        argv = [str(WORKER), kind, "--sdk", side, "--dsn", dsn]
        argv += ["--spool-dir", spool] + (["--quick"] if self.quick else [])
        result: dict[str, Any] = json.loads(spawn(argv, workdir, timeout=300))
        if project is not None:
            result["delivered"] = self.sink.received[project]
            result["wire_bytes"] = self.sink.wire_bytes[project]
            result["event_shape"] = self.sink.event_shape.get(project)
        return result

    def web_worker(self, side: str, framework: str) -> WebWorker:
        workdir = self._workdir()
        dsn, _ = self.sink.new_dsn()
        argv = [str(WORKER), "web", "--sdk", side, "--framework", framework, "--dsn", dsn]
        argv += ["--spool-dir", str(Path(workdir) / "spool")]
        return WebWorker(argv + (["--quick"] if self.quick else []), workdir, framework)


class WebWorker:
    """One web worker kept alive to time rounds when asked (``work_web`` in the worker), with
    its framework's directory on its path; killed if it is not done within ``timeout``."""

    def __init__(self, argv: list[str], workdir: str, framework: str, timeout: float = 300) -> None:
        env = child_env()
        env["PYTHONPATH"] = str(framework_dir(framework))
        self.argv = argv
        self.stderr_path = Path(workdir) / "stderr.txt"
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
            )
        self.watchdog = threading.Timer(timeout, self.proc.kill)
        self.watchdog.daemon = True
        self.watchdog.start()

    def _expect(self, mark: str) -> str:
        """The rest of the next line of the worker's that starts with ``mark``."""
        for line in self.proc.stdout or ():
            if line.startswith(mark):
                return line[len(mark) :].strip()
        self.proc.wait()
        stderr = self.stderr_path.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(self.argv[:6])} failed ({self.proc.returncode}):\n{stderr}")

    def _say(self, line: str) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()

    def ready(self) -> None:
        self._expect(READY_MARK)

    def round(self) -> None:
        """Have it time one round (it reports all of them at the end)."""
        self._say("run")
        self._expect(ROUND_MARK)

    def finish(self) -> dict[str, Any]:
        self._say("end")
        result: dict[str, Any] = json.loads(self._expect(RESULT_MARK))
        self.proc.wait(timeout=60)
        return result

    def stop(self) -> None:
        """Kill it unless it has ended; release its pipes and its watchdog."""
        self.watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def interleaved(sides: tuple[str, ...], repeats: int, measure: Callable[[str], Any]) -> dict:
    """Alternate the sides ``repeats`` times so drift on the machine hits both alike."""
    out: dict[str, list[Any]] = {side: [] for side in sides}
    for _ in range(repeats):
        for side in sides:
            out[side].append(measure(side))
    return out


def measure_import(runner: Runner, sides: tuple[str, ...], plan: Plan) -> dict[str, Any]:
    interleaved(sides, 1, runner.import_init)  # warm the bytecode caches
    runs = interleaved(sides, plan.import_runs, runner.import_init)
    bare = [runner.bare_interpreter() for _ in range(plan.import_runs + 1)][1:]
    result: dict[str, Any] = {side: summary(runs[side]) for side in sides}
    result["bare_interpreter"] = summary(bare)
    return result


def measure_capture(runner: Runner, sides: tuple[str, ...], plan: Plan) -> dict[str, Any]:
    runs = interleaved(sides, plan.capture_processes, lambda s: runner.worker("capture", s))
    result = {}
    for side, procs in runs.items():
        samples = [s for proc in procs for s in proc["samples_s"]]
        result[side] = {
            **summary(samples),
            "processes": len(procs),
            "delivered": sum(p["delivered"] for p in procs),
            "wire_bytes_per_envelope": sum(p["wire_bytes"] for p in procs)
            / max(1, sum(p["delivered"] for p in procs)),
            "event_shape": procs[0]["event_shape"] or {},
            "spooled_files": sum(p["spool"]["files"] for p in procs),
            "flush_s": [p["flush_s"] for p in procs],
            "sdk": procs[0].get("sdk"),
        }
    return result


def measure_logging(runner: Runner, sides: tuple[str, ...], plan: Plan) -> dict[str, Any]:
    configs = ("none", *sides)
    runs = interleaved(configs, plan.logging_processes, lambda s: runner.worker("logging", s))
    per_call = {c: [r for proc in runs[c] for r in proc["per_call_s"]] for c in configs}
    result: dict[str, Any] = {c: summary(per_call[c]) for c in configs}
    for side in sides:
        result[side]["overhead_s"] = result[side]["median"] - result["none"]["median"]
    return result


def measure_memory(runner: Runner, sides: tuple[str, ...]) -> dict[str, Any]:
    dsn, holder = refused_dsn()
    try:
        runs = interleaved(sides, 1, lambda s: runner.worker("memory", s, dsn=dsn))
    finally:
        holder.close()
    result = {}
    for side in sides:
        run = runs[side][0]
        before, after = run["before"], run["after"]
        run["rss_growth_bytes"] = after["rss_bytes"] - before["rss_bytes"]
        run["blocks_growth"] = after["allocated_blocks"] - before["allocated_blocks"]
        result[side] = run
    return result


def web_set(runner: Runner, configs: tuple[str, ...], framework: str, plan: Plan) -> dict:
    """One process per config, started together and warmed up, then timed in turns: every
    cycle asks each for one round, the order rotating from cycle to cycle, so no side always
    follows the same one. Only one of them works at a time; the others wait on a read."""
    workers = {config: runner.web_worker(config, framework) for config in configs}
    try:
        for worker in workers.values():
            worker.ready()
        for cycle in range(plan.web_rounds):
            shift = cycle % len(configs)
            for config in configs[shift:] + configs[:shift]:
                workers[config].round()
        return {config: workers[config].finish() for config in configs}
    finally:
        for worker in workers.values():
            worker.stop()


def measure_web(runner: Runner, sides: tuple[str, ...], plan: Plan) -> dict[str, Any]:
    """Per framework: ``web_processes`` sets of the bare app and each SDK's (see ``web_set``).

    Figures are CPU time per request (see ``work_web`` in the worker); the wall time is kept
    beside them. A side's overhead is the median, over all cycles, of its round minus the bare
    app's round of the same cycle: rounds within a second of each other, so a change of load
    on the machine mostly cancels. Its 95 % interval is Student's t over the per-set medians of
    those differences: processes, not rounds, are what vary from run to run (memory layout,
    hash seed, what else the machine does)."""
    configs = ("none", *sides)
    result: dict[str, Any] = {}
    for framework in FRAMEWORKS:
        sets = [web_set(runner, configs, framework, plan) for _ in range(plan.web_processes)]
        section: dict[str, Any] = {"version": sets[0]["none"]["framework_version"]}
        for config in configs:
            rounds = [one[config]["cpu_per_request_s"] for one in sets]
            wall = [one[config]["wall_per_request_s"] for one in sets]
            first = sets[0][config]
            section[config] = {
                **summary([r for proc in rounds for r in proc]),
                "rounds": rounds,
                "wall": summary([r for proc in wall for r in proc]),
                "wall_rounds": wall,
                "integration_missing": first["integration_missing"],
                "integrations": first.get("integrations"),
                "transaction_during_request": first.get("transaction_during_request"),
            }
        bare = section["none"]["rounds"]
        for side in sides:
            diffs = [
                [mine - base for mine, base in zip(proc, bare_proc)]
                for proc, bare_proc in zip(section[side]["rounds"], bare)
            ]
            section[side]["overhead_s"] = statistics.median(d for proc in diffs for d in proc)
            section[side]["overhead_ci_s"] = t_interval([statistics.median(d) for d in diffs])
            section[side]["paired_differences_s"] = diffs
        result[framework] = section
    return result


# Two-sided 95 % quantiles of Student's t for 1..30 degrees of freedom.
T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_interval(values: list[float]) -> Optional[list[float]]:
    """95 % confidence interval of the mean of ``values`` (Student's t); None for fewer than
    two values."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    df = len(values) - 1
    half = (T95[df - 1] if df <= len(T95) else 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return [mean - half, mean + half]


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))],
        "min": ordered[0],
        "n": len(ordered),
    }


# --------------------------------------------------------------------------- the report


Cell = Optional[Union[float, str]]  # a number, a text shown as it is, or not measured


@dataclass
class Row:
    metric: str
    bugnet: Cell
    sentry: Cell
    unit: str
    target: Optional[float] = None  # highest allowed bugnet/sentry ratio; None: information
    shared: bool = False  # one value that belongs to neither side, shown in both columns

    def ratio(self) -> Optional[float]:
        bugnet, sentry = self.bugnet, self.sentry
        if self.shared or isinstance(bugnet, (str, type(None))):
            return None
        if isinstance(sentry, (str, type(None))) or sentry <= 0:
            return None
        return bugnet / sentry

    def ratio_cell(self) -> str:
        ratio = self.ratio()
        return "—" if ratio is None else f"{ratio:.1%}"

    def verdict(self) -> str:
        ratio = self.ratio()
        if self.target is None or ratio is None:
            return "—"
        return "pass" if ratio <= self.target else "FAIL"

    def cells(self) -> list[str]:
        return [
            f"{self.metric} ({self.unit})",
            fmt(self.bugnet),
            fmt(self.sentry),
            self.ratio_cell(),
            "—" if self.target is None else f"≤ {self.target:.0%}",
            self.verdict(),
        ]


@dataclass
class OverheadRow(Row):
    """An overhead above a baseline, with the 95 % confidence interval of Bugnet's. When that
    interval reaches zero, Bugnet's overhead is not told apart from noise: the ratio shown (and
    judged) is then the interval's upper end over sentry-sdk's overhead, an upper bound."""

    bugnet_ci: Optional[list[float]] = None

    def within_noise(self) -> bool:
        return self.bugnet_ci is not None and self.bugnet_ci[0] <= 0

    def ratio(self) -> Optional[float]:
        ratio = super().ratio()
        sentry = self.sentry
        if ratio is None or self.bugnet_ci is None or not self.within_noise():
            return ratio
        return self.bugnet_ci[1] / sentry if isinstance(sentry, (int, float)) else None

    def ratio_cell(self) -> str:
        ratio = self.ratio()
        if ratio is not None and self.within_noise():
            return f"≈ 0, ≤ {max(ratio, 0.0):.1%}"
        return super().ratio_cell()


def fmt(value: Cell) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def lookup(section: dict[str, Any], side: str, *keys: str) -> Any:
    """``section[side][key]...``, or None when that side was not measured."""
    node: Any = section.get(side)
    for key in keys:
        if node is None:
            return None
        node = node[key]
    return node


def pair(section: dict[str, Any], *keys: str, scale: float = 1.0) -> list[Optional[float]]:
    """The (bugnet, sentry) values at ``section[side][keys...]``, scaled; None if not measured."""
    values = [lookup(section, side, *keys) for side in SIDES]
    return [None if v is None else v * scale for v in values]


def import_rows(imp: dict[str, Any]) -> list[Row]:
    bare_ms = imp["bare_interpreter"]["median"] * 1e3
    return [
        Row("import + init, median", *pair(imp, "median", scale=1e3), "ms", 0.15),
        Row("bare interpreter start-up, wall, median", bare_ms, bare_ms, "ms", shared=True),
    ]


def capture_rows(cap: dict[str, Any], plan: Plan) -> list[Row]:
    captured = plan.capture_processes * (plan.capture_warmup + plan.capture_calls)
    kib = 1 / 1024
    return [
        Row(f"capture_exception, {plan.capture_depth} frames, median",
            *pair(cap, "median", scale=1e3), "ms", 0.20),
        Row("capture_exception, p90", *pair(cap, "p90", scale=1e3), "ms"),
        Row(f"envelopes the sink received, of {captured:,} captured",
            *pair(cap, "delivered"), "count"),
        Row("left in the disk spool, undelivered", *pair(cap, "spooled_files"), "count"),
        Row("frames in a sent event", *pair(cap, "event_shape", "frames"), "count"),
        Row("… of them with locals", *pair(cap, "event_shape", "frames_with_vars"), "count"),
        Row("sent event, uncompressed", *pair(cap, "event_shape", "event_bytes", scale=kib),
            "KiB"),
        Row("envelope on the wire, mean", *pair(cap, "wire_bytes_per_envelope", scale=kib),
            "KiB"),
    ]  # fmt: skip


def logging_rows(log: dict[str, Any]) -> list[Row]:
    base_us = log["none"]["median"] * 1e6
    return [
        Row("logger.info, no SDK (baseline)", base_us, base_us, "µs/call", shared=True),
        Row("logger.info with the SDK", *pair(log, "median", scale=1e6), "µs/call"),
        Row("logger.info overhead above baseline", *pair(log, "overhead_s", scale=1e6),
            "µs/call", 0.20),
    ]  # fmt: skip


def memory_rows(mem: dict[str, Any], plan: Plan) -> list[Row]:
    mib = 1 / MIB
    return [
        Row(f"RSS growth, {plan.memory_captures:,} captures, server down",
            *pair(mem, "rss_growth_bytes", scale=mib), "MiB", 0.20),
        Row("RSS after warm-up and flush", *pair(mem, "before", "rss_bytes", scale=mib), "MiB"),
        Row("RSS at the end", *pair(mem, "after", "rss_bytes", scale=mib), "MiB"),
        Row("allocated blocks growth, same run", *pair(mem, "blocks_growth", scale=1e-3), "k"),
        Row("capture_exception median, same run", *pair(mem, "capture_median_s", scale=1e3),
            "ms"),
        Row("capture_exception p90, same run", *pair(mem, "capture_p90_s", scale=1e3), "ms"),
        Row("flush(timeout=5), same run", *pair(mem, "flush_s"), "s"),
        Row("disk spool after the run", *pair(mem, "spool", "bytes", scale=mib), "MiB"),
    ]  # fmt: skip


MISSING = "n/a (integration missing)"


def web_rows(web: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for framework, section in web.items():
        title = f"{FRAMEWORK_TITLES[framework]} {section['version']}"
        base_us = section["none"]["median"] * 1e6
        with_sdk = pair(section, "median", scale=1e6)
        overhead = pair(section, "overhead_s", scale=1e6)
        cis = [lookup(section, side, "overhead_ci_s") for side in SIDES]
        ci_cells: list[Cell] = [
            None if ci is None else f"{ci[0] * 1e6:.2f} … {ci[1] * 1e6:.2f}" for ci in cis
        ]
        bugnet_ci = None if cis[0] is None else [x * 1e6 for x in cis[0]]
        cells: list[list[Cell]] = [list(with_sdk), list(overhead), ci_cells]
        if lookup(section, "bugnet", "integration_missing"):
            for row_cells in cells:
                row_cells[0] = MISSING
        rows += [
            Row(f"{title}: request, bare app (baseline)", base_us, base_us, "µs/request",
                shared=True),
            Row(f"{title}: request with the SDK", *cells[0], "µs/request"),
            OverheadRow(f"{title}: overhead above bare", *cells[1], "µs/request", 0.20,
                        bugnet_ci=bugnet_ci),
            Row("… 95% CI of that overhead", *cells[2], "µs/request"),
        ]  # fmt: skip
    return rows


def build_rows(m: dict[str, Any], plan: Plan) -> list[Row]:
    return [
        *import_rows(m["import"]),
        *capture_rows(m["capture"], plan),
        *logging_rows(m["logging"]),
        *memory_rows(m["memory"], plan),
        *web_rows(m["web"]),
    ]


def markdown(rows: list[Row]) -> str:
    header = ["metric", "bugnet", "sentry-sdk", "ratio (bugnet/sentry)", "target", "pass/fail"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def notes(m: dict[str, Any], plan: Plan) -> list[str]:
    out = [f"- brotli importable in the benchmark venv: {m['env']['brotli_importable']}"]
    for side in SIDES:
        facts = lookup(m["capture"], side, "sdk")
        if facts:
            out.append(f"- {side}: {json.dumps(facts)}")
        captures = lookup(m["memory"], side, "captures")
        if captures is not None and captures < plan.memory_captures:
            out.append(f"- {side} hit the memory run's time budget after {captures:,} captures")
        trace = lookup(m["memory"], side, "rss_trace_bytes")
        if trace:
            mib = " ".join(f"{value / MIB:.1f}" for value in trace)
            out.append(f"- {side} RSS every 1,000 captures, server down (MiB): {mib}")
    for framework, section in m["web"].items():
        present = [c for c in ("none", *SIDES) if c in section]
        wall = {c: section[c]["wall"]["median"] * 1e6 for c in present}
        fastest = {c: section[c]["min"] * 1e6 for c in present}
        for label, values in (("wall-clock medians", wall), ("fastest CPU rounds", fastest)):
            extra = ", ".join(f"{c} +{values[c] - values['none']:.1f}" for c in present[1:])
            out.append(f"- {framework}, {label}: bare {values['none']:.1f} µs/request, {extra}")
        for side in SIDES:
            measured = section.get(side)
            if measured is None:
                continue
            if measured["integration_missing"]:
                out.append(
                    f"- {side} has no {framework} integration yet: its figures are the "
                    "request without it, in the JSON only"
                )
            out.append(
                f"- {framework}, {side}: integrations {measured['integrations']}; "
                f"transaction name during the request: "
                f"{measured['transaction_during_request']!r}"
            )
    load = " → ".join(" ".join(f"{x:.1f}" for x in m[key]) for key in ("load_start", "load_end"))
    out.append(f"- load average (1, 5, 15 min), start → end: {load}")
    out.append(f"- elapsed {m['elapsed_s']:.0f} s; raw numbers in {RESULTS.relative_to(ROOT)}")
    return out


# --------------------------------------------------------------------------- main


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "brotli_importable": brotli_importable(),
        "install": INSTALL_ARGS,
    }


def run_benchmark(sides: tuple[str, ...], quick: bool) -> None:
    plan = QUICK_PLAN if quick else Plan()
    started = time.perf_counter()
    metrics: dict[str, Any] = {"env": environment(), "plan": asdict(plan), "sides": sides}
    metrics["load_start"] = os.getloadavg()
    if metrics["env"]["brotli_importable"]:
        print("WARNING: brotli is importable here; sentry-sdk will not use gzip", flush=True)
    sink = start_sink()
    with tempfile.TemporaryDirectory(prefix="bugnet-bench-") as scratch:
        runner = Runner(sink, quick, scratch)
        for name, measure in (
            ("import", lambda: measure_import(runner, sides, plan)),
            ("capture", lambda: measure_capture(runner, sides, plan)),
            ("logging", lambda: measure_logging(runner, sides, plan)),
            ("memory", lambda: measure_memory(runner, sides)),
            ("web", lambda: measure_web(runner, sides, plan)),
        ):
            print(f"measuring {name} ...", flush=True)
            metrics[name] = measure()
    sink.shutdown()
    metrics["elapsed_s"] = time.perf_counter() - started
    metrics["load_end"] = os.getloadavg()
    rows = build_rows(metrics, plan)
    metrics["table"] = [
        dict(zip(("metric", *SIDES, "ratio", "target", "verdict"), r.cells())) for r in rows
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(metrics, indent=2, default=str) + "\n")
    print()
    print(markdown(rows))
    print()
    print("\n".join(notes(metrics, plan)))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=SIDES, help="measure one SDK only")
    parser.add_argument("--quick", action="store_true", help="small counts, to check the harness")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if not in_bench_venv():
        reexec_in_venv()
    run_benchmark((args.only,) if args.only else SIDES, args.quick)


if __name__ == "__main__":
    main()
