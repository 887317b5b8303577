"""One measured run of a target (see ``ingest.py`` for what each figure means), and the
diagnosis runs that say where Bugnet's time goes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import ingest_targets as targets
from ingest_profile import GIL_ROLE, Profiler

HERE = Path(__file__).resolve().parent
SETTLE_SECONDS = 2.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes used so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def run_load(target: targets.Target, bodies: Path, threads: int) -> dict[str, Any]:
    """Send the bodies to a started target (``ingest_load.py``, its own process); while it
    runs, poll the target's progress as ``wait_digested`` will, so polling costs the same
    during sending as after it."""
    load = subprocess.Popen(
        [sys.executable, str(HERE / "ingest_load.py"), "--port", str(target.port),
         "--project", target.project, "--key", target.key, "--bodies", str(bodies),
         "--threads", str(threads), "--warm-path", target.warm_path,
         "--repeat", str(target.repeat)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    while load.poll() is None and target.digests:
        target.progress()
        time.sleep(target.poll_interval)
    stdout, _ = load.communicate()
    if load.returncode:
        raise RuntimeError(f"ingest_load.py failed ({load.returncode})")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return result


def wait_digested(target: targets.Target, accepted: int, since: float) -> dict[str, Any]:
    """Poll until the target has digested ``accepted`` events; the rate counts from ``since``
    (wall clock). Gives up after max(120 s, accepted / 10 s)."""
    deadline = time.monotonic() + max(120.0, accepted / 10)
    digested, queued = target.progress()
    while time.monotonic() < deadline:
        digested, queued = target.progress()
        if digested >= accepted and queued <= 0:
            seconds = time.time() - since
            return {"digested": digested, "e2e_seconds": seconds, "e2e_per_s": accepted / seconds}
        time.sleep(target.poll_interval)
    return {"digested": digested, "queued": queued, "e2e_seconds": None, "e2e_per_s": None,
            "digest_note": f"gave up: {digested} of {accepted} digested"}  # fmt: skip


def measure(target: targets.Target, bodies: Path, threads: int) -> dict[str, Any]:
    """Start ``target``, load it, wait for its digest, stop it; its figures as a dict."""
    target.start()
    try:
        time.sleep(SETTLE_SECONDS)
        result: dict[str, Any] = {"idle": target.memory()}
        roles = target.pids_by_role()
        before = {role: cpu_seconds(pids) for role, pids in roles.items()}
        result.update(run_load(target, bodies, threads))
        if target.digests:
            result.update(wait_digested(target, result["accepted"], result["wall_start"]))
        used = {role: cpu_seconds(pids) - before[role] for role, pids in roles.items()}
        sent = max(1, result["sent"])
        result["cpu_ms_per_event"] = {role: 1000 * s / sent for role, s in used.items()}
        result["after"] = target.memory()
        if isinstance(target, targets.Bugnet):
            result["server_counts"] = target.counts()
    finally:
        target.stop()
    return result


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose key figure (end-to-end, else accepted/s) is the median; all runs' key
    figures are kept in its ``runs``."""
    key = "e2e_per_s" if runs[0].get("e2e_per_s") is not None else "accepted_per_s"
    ordered = sorted(runs, key=lambda r: r.get(key) or 0.0)
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["runs"] = [
        f"accepted {r['accepted_per_s']:,.0f}/s p99 {r['p99_ms']:.0f} ms"
        + (f" e2e {r['e2e_per_s']:,.0f}/s" if r.get("e2e_per_s") else "")
        for r in runs
    ]
    if len(runs) > 1:
        chosen["spread"] = {k: [r.get(k) for r in runs] for k in ("accepted_per_s", "p99_ms", key)}
    return chosen


def diagnose(scratch: Path, bodies: Path, threads: int) -> dict[str, Any]:
    """Bugnet on SQLite, each half alone under py-spy: ingest with no digest running (the web
    workers profiled), then ``bugnet digest`` draining what it queued (the digest profiled)."""
    target = targets.Bugnet(scratch / "diagnosis", "sqlite", digest=False)
    target.start()
    try:
        time.sleep(SETTLE_SECONDS)
        workers = target.pids_by_role()["web worker"]
        roles = {"web worker": workers, f"web worker{GIL_ROLE}": workers}
        profiler = Profiler(roles, scratch / "py-spy-ingest")
        profiler.start()
        cpu = cpu_seconds(workers)
        ingest = run_load(target, bodies, threads)
        ingest["cpu_ms_per_event"] = 1000 * (cpu_seconds(workers) - cpu) / ingest["sent"]
        profiler.stop()
        ingest["profile"] = profiler.summarize()
        digest = target._spawn(targets.bugnet_command("digest"), target.env, "digest.log")
        # one process for a second or two: sample it more often than the web workers
        profiler = Profiler({"digest": [digest.pid]}, scratch / "py-spy-digest", rate=500)
        # py-spy attaches once the first batch is in, so the start-up is not in the profile
        drained = drain(target, ingest["accepted"], digest.pid, on_first=profiler.start)
        profiler.stop()
        drained["profile"] = profiler.summarize()
    finally:
        target.stop()
    return {"ingest_alone": ingest, "digest_alone": drained}


def drain(target: targets.Bugnet, accepted: int, pid: int, on_first: Any) -> dict[str, Any]:
    """Wait for a digest (process ``pid``) started just now to empty the queue; call
    ``on_first()`` when its first batch is in. Rate and CPU run from there (so its start-up
    is left out) to the last batch."""
    first: tuple[float, int, float] | None = None
    deadline = time.monotonic() + max(120.0, accepted / 10)
    while time.monotonic() < deadline:
        digested, queued = target.progress()
        if digested and first is None:
            on_first()
            first = (time.time(), target.progress()[0], cpu_seconds([pid]))
        if first is not None and digested >= accepted and queued <= 0:
            seconds, count = time.time() - first[0], digested - first[1]
            return {
                "digested": digested,
                "seconds": seconds,
                "per_s": count / seconds if seconds > 0 and count else None,
                "cpu_ms_per_event": 1000 * (cpu_seconds([pid]) - first[2]) / max(1, count),
            }
        time.sleep(target.poll_interval)
    return {"digested": target.progress()[0], "seconds": None, "per_s": None}
