"""Sampling profiles of a server under the benchmark's load, with py-spy.

One ``py-spy record --nonblocking --format raw`` per process (gunicorn workers, the digest
process...), stopped with SIGINT after the run; only samples of threads that were running are
kept (py-spy leaves idle ones out), so a role's sample count over ``rate x seconds`` is the
share of a core it used. ``summarize()`` folds the stacks by function (line numbers dropped):
*self* is where the CPU was when sampled, *inclusive* counts a function once per sample that
has it anywhere on the stack (for Bugnet's own functions: what each step of ingest or digest
costs, callees included).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

RATE = 100  # samples per second and process (py-spy competes for the same 2 cores)
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
OWN = "bugnet_server/"
GIL_ROLE = ", GIL held"
# A process's entry chain (``bugnet serve`` → gunicorn's loop, ``bugnet digest`` → join):
# on every stack of its main thread, so it says nothing about what costs what.
ENTRY = ("bugnet_server.cli:", "bugnet_server.runtime.management.commands.")


def py_spy() -> str:
    return str(Path(sys.executable).with_name("py-spy"))


class Profiler:
    """py-spy on every pid of every role; a role whose name ends in ``GIL_ROLE`` samples only
    the thread holding the GIL (``--gil``): where the Python-level CPU goes, without the
    threads that merely wait to run."""

    def __init__(self, pids_by_role: dict[str, list[int]], out_dir: Path, rate: int = RATE):
        self.pids_by_role = pids_by_role
        self.rate = rate
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._procs: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        self._started = 0.0
        self.seconds = 0.0

    def start(self) -> None:
        for role, pids in self.pids_by_role.items():
            for pid in pids:
                out = self.out_dir / f"{role.replace(' ', '-')}-{pid}.txt"
                argv = [py_spy(), "record", "--pid", str(pid), "--rate", str(self.rate),
                        "--format", "raw", "--output", str(out), "--nonblocking"]  # fmt: skip
                if role.endswith(GIL_ROLE):
                    argv.append("--gil")
                proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                        stderr=(self.out_dir / "py-spy.log").open("ab"))  # fmt: skip
                self._procs.append((role, out, proc))
        time.sleep(0.3)  # py-spy attaches
        self._started = time.monotonic()

    def stop(self) -> None:
        self.seconds = time.monotonic() - self._started
        for _role, _out, proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for _role, _out, proc in self._procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def summarize(self, top: int = 12) -> dict[str, Any]:
        """Per role: cores used, and the costliest functions (share of the role's samples)."""
        roles: dict[str, Any] = {}
        for role in self.pids_by_role:
            files = [out for r, out, _ in self._procs if r == role and out.exists()]
            stacks = [stack for path in files for stack in read_raw(path)]
            total = sum(count for _, count in stacks)
            if not total:
                continue
            own, leaves = fold(stacks)
            roles[role] = {
                "processes": len(files),
                "samples": total,
                "cores_used": total / (self.rate * self.seconds) if self.seconds else 0.0,
                "bugnet_inclusive": _shares(own, total, top),
                "self": _shares(leaves, total, top),
            }
        log = self.out_dir / "py-spy.log"
        errors = log.read_text(errors="replace")[-600:] if log.exists() else ""
        return {"seconds": self.seconds, "rate": self.rate, "roles": roles, "py_spy_log": errors}


def read_raw(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) format: ``frame;frame;... count`` per line, root first."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks.append((frames.split(";")[1:], int(count)))  # [0] is the thread
    return stacks


def function_name(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in (OWN, "site-packages/", "lib/python3"):
        if marker in path:
            path = path[path.index(marker) + (0 if marker == OWN else len(marker)) :]
            break
    return f"{path.removesuffix('.py').replace('/', '.')}:{match['function']}"


def fold(stacks: list[tuple[list[str], int]]) -> tuple[Counter[str], Counter[str]]:
    """(inclusive samples of Bugnet's functions, self samples of every function)."""
    own: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    for frames, count in stacks:
        names = [function_name(f) for f in frames]
        if names:
            leaves[names[-1]] += count
        for name in set(names):
            if name.startswith("bugnet_server.") and not name.startswith(ENTRY):
                own[name] += count
    return own, leaves


def _shares(counter: Counter[str], total: int, top: int) -> list[tuple[str, float]]:
    return [(name, round(100.0 * n / total, 1)) for name, n in counter.most_common(top)]


def render(summary: dict[str, Any]) -> list[str]:
    """Markdown lines for the report."""
    if not summary["roles"]:
        return [f"py-spy recorded nothing: {summary.get('py_spy_log') or 'no output'}", ""]
    lines = []
    for role, data in summary["roles"].items():
        busy = f"{data['cores_used']:.2f} cores busy"
        if role.endswith(GIL_ROLE):
            busy = f"GIL held {data['cores_used'] / max(1, data['processes']):.0%} of the time"
        lines.append(
            f"**{role}** ({data['processes']} process(es), {busy} over {summary['seconds']:.1f} s, "
            f"{data['samples']} samples)"
        )
        lines.append("")
        lines.append("| Bugnet function (inclusive) | % | hottest leaf (self) | % |")
        lines.append("|---|---:|---|---:|")
        own, leaves = data["bugnet_inclusive"], data["self"]
        for i in range(max(len(own), len(leaves))):
            left = f"`{own[i][0]}` | {own[i][1]}" if i < len(own) else " | "
            right = f"`{leaves[i][0]}` | {leaves[i][1]}" if i < len(leaves) else " | "
            lines.append(f"| {left} | {right} |")
        lines.append("")
        if role.endswith(GIL_ROLE):
            lines += ["(only samples of the thread holding the GIL: Python-level CPU)", ""]
    return lines
