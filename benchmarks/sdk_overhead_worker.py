#!/usr/bin/env python3
"""One measurement of one SDK in a fresh process, for ``sdk_overhead.py``; not run by hand.

    python sdk_overhead_worker.py {capture,logging,memory,web} --sdk {none,bugnet,sentry} --dsn DSN
        [--framework {flask,django,fastapi}] [--spool-dir DIR] [--quick]

It prints one line, ``RESULT_MARK`` followed by JSON. Only the standard library is imported
before the SDK, so nothing here is shared between the two sides. The ``web`` worker first times
rounds when asked on stdin (see ``work_web``); it imports its framework (through
``sdk_overhead_apps.py``) after the SDK's ``init()``, and needs that framework on
``PYTHONPATH``: the harness installs each framework in a directory of its own.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import json
import logging
import sys
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

MODULES = {"bugnet": "bugnet", "sentry": "sentry_sdk"}
FRAMEWORKS = ("flask", "django", "fastapi")  # the same names in sdk_overhead_apps.py
RESULT_MARK = "BENCH-RESULT "
READY_MARK = "BENCH-READY"
ROUND_MARK = "BENCH-ROUND "


@dataclass(frozen=True)
class Plan:
    """How much of each measurement to do."""

    import_runs: int = 15
    capture_processes: int = 3
    capture_warmup: int = 50
    capture_calls: int = 500
    capture_depth: int = 20
    logging_processes: int = 3
    logging_rounds: int = 5
    logging_calls: int = 100_000
    memory_warmup: int = 100
    memory_captures: int = 10_000
    memory_depth: int = 10
    # A runaway SDK stops early rather than blow the run's time budget; the report says so.
    memory_budget_s: float = 90.0
    # Per framework: ``web_processes`` sets of one process per side, each set timing
    # ``web_rounds`` rounds per side, the sides taking turns round by round.
    web_processes: int = 4
    web_warmup: int = 500
    web_rounds: int = 20
    web_round_warmup: int = 30
    web_requests: int = 400


QUICK_PLAN = Plan(
    import_runs=3,
    capture_processes=1,
    capture_warmup=10,
    capture_calls=50,
    logging_processes=1,
    logging_rounds=2,
    logging_calls=20_000,
    memory_warmup=20,
    memory_captures=500,
    web_processes=1,
    web_warmup=200,
    web_rounds=3,
    web_round_warmup=20,
    web_requests=300,
)


# --------------------------------------------------------------------------- the workload


class Widget:
    """A custom object in every frame, so both SDKs call a user ``__repr__``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.name = f"widget-{n}"

    def __repr__(self) -> str:
        return f"<Widget {self.name} n={self.n}>"


def descend(depth: int, seq: int) -> int:
    """Recurse ``depth`` frames, each with typical locals, and raise a new exception at the end."""
    count = depth * 7 + seq
    label = f"order {seq:08d} at depth {depth:02d} failed validation".ljust(50, ".")
    meta = {"depth": depth, "seq": seq, "tag": "bench", "ok": True}
    items = list(range(depth, depth + 10))
    widget = Widget(depth)
    if depth <= 1:
        raise ValueError(f"benchmark failure #{seq}")
    return descend(depth - 1, seq) + count + len(label) + len(meta) + len(items) + widget.n


def timed_capture(sdk: Any, seq: int, depth: int) -> float:
    """Raise through ``depth`` frames, then time ``capture_exception()`` alone."""
    try:
        descend(depth, seq)
    except ValueError:
        start = time.perf_counter()
        sdk.capture_exception()
        return time.perf_counter() - start
    raise AssertionError("descend() always raises")


def init_sdk(side: str, dsn: str, spool_dir: Optional[str]) -> Any:
    """Import and initialise one SDK with its defaults; Bugnet also gets its spool directory."""
    if side == "none":
        return None
    sdk = importlib.import_module(MODULES[side])
    options: dict[str, Any] = {"dsn": dsn}
    if side == "bugnet":
        options["spool_dir"] = spool_dir
    sdk.init(**options)
    return sdk


def sdk_facts(sdk: Any) -> dict[str, Any]:
    facts: dict[str, Any] = {"version": getattr(sdk, "__version__", None) or sdk_version(sdk)}
    if sdk.__name__ == "sentry_sdk":
        transport = importlib.import_module("sentry_sdk.transport")
        facts["compression"] = "gzip" if transport.brotli is None else "brotli"
    return facts


def sdk_version(sdk: Any) -> Optional[str]:
    consts = sys.modules.get(f"{sdk.__name__}.consts")
    return getattr(consts, "VERSION", None)


# --------------------------------------------------------------------------- workers


def work_capture(sdk: Any, plan: Plan, spool_dir: Optional[str]) -> dict[str, Any]:
    for seq in range(plan.capture_warmup):
        timed_capture(sdk, seq, plan.capture_depth)
    samples = [
        timed_capture(sdk, plan.capture_warmup + seq, plan.capture_depth)
        for seq in range(plan.capture_calls)
    ]
    flush_s = timed(lambda: sdk.flush(timeout=5))
    return {"samples_s": samples, "flush_s": flush_s, "spool": dir_usage(spool_dir)}


def work_logging(sdk: Any, plan: Plan) -> dict[str, Any]:
    logging.getLogger().setLevel(logging.INFO)
    log = logging.getLogger("bench")
    rounds = []
    for _ in range(plan.logging_rounds + 1):  # the first round warms up and is dropped
        start = time.perf_counter()
        for _ in range(plan.logging_calls):
            log.info("order %s charged %d", "A-1", 42)
        rounds.append((time.perf_counter() - start) / plan.logging_calls)
    if sdk is not None:
        sdk.flush(timeout=5)
    return {"per_call_s": rounds[1:]}


def work_memory(sdk: Any, plan: Plan, spool_dir: Optional[str]) -> dict[str, Any]:
    for seq in range(plan.memory_warmup):
        timed_capture(sdk, seq, plan.memory_depth)
    # Let the background thread meet the dead server once (and load what it loads for that),
    # so the growth measured below is what the captures add, not one-off start-up.
    sdk.flush(timeout=5)
    # Allocated up front, as raw doubles: the harness's own bookkeeping must not grow the heap.
    samples = array("d", bytes(8 * plan.memory_captures))
    rss_trace = array("q", bytes(8 * (plan.memory_captures // 1000)))
    before = memory_now()
    start = time.perf_counter()
    done = 0
    while done < plan.memory_captures and time.perf_counter() - start < plan.memory_budget_s:
        samples[done] = timed_capture(sdk, plan.memory_warmup + done, plan.memory_depth)
        done += 1
        if done % 1000 == 0:  # a leak climbs, a one-off step does not
            rss_trace[done // 1000 - 1] = rss_bytes()
    loop_s = time.perf_counter() - start
    flush_s = timed(lambda: sdk.flush(timeout=5))
    after = memory_now()
    timings = sorted(samples[:done])
    return {
        "captures": done,
        "loop_s": loop_s,
        "capture_median_s": timings[done // 2],
        "capture_p90_s": timings[int(done * 0.9)],
        "flush_s": flush_s,
        "before": before,
        "after": after,
        "rss_trace_bytes": list(rss_trace[: done // 1000]),
        "spool": dir_usage(spool_dir),
    }


def work_web(sdk: Any, side: str, framework: str, plan: Plan) -> dict[str, Any]:
    """Per-request time of the framework's app, one round at a time, when the harness asks.

    After the check and the warm-up requests it prints ``READY_MARK`` and waits; each ``run``
    line on stdin serves ``web_round_warmup`` untimed requests (this process was idle while
    another ran), then times ``web_requests`` in a row and prints, after ``ROUND_MARK``, the
    CPU time and the wall time per request, as JSON. Any other line (or the end of stdin) ends
    it. The harness keeps one such process per side alive and asks them in turn, so the sides'
    rounds alternate within a second and a change of load on the machine falls on all alike.

    CPU time is ``time.process_time()``: every thread of the process, the SDK's background
    threads included. The loop does no I/O, so on an idle core it equals the wall time; on a
    busy machine it leaves out the time other processes held the core, which the wall time
    does not."""
    missing = integration_missing(side, framework)
    apps = importlib.import_module("sdk_overhead_apps")
    if sdk is not None:
        apps.inspect_scope = scope_inspector(sdk)
    driver = apps.build(framework)
    facts = check_sdk_in_request(sdk, driver, framework, missing, apps.CHECK_PATH)
    driver.run(plan.web_warmup)
    print(READY_MARK, flush=True)
    cpu_rounds, wall_rounds = [], []
    for line in sys.stdin:
        if line.strip() != "run":
            break
        driver.run(plan.web_round_warmup)
        cpu_start = time.process_time()
        wall = driver.run(plan.web_requests)
        cpu_rounds.append((time.process_time() - cpu_start) / plan.web_requests)
        wall_rounds.append(wall / plan.web_requests)
        print(ROUND_MARK + json.dumps([cpu_rounds[-1], wall_rounds[-1]]), flush=True)
    if sdk is not None:
        sdk.flush(timeout=5)
    return {
        "cpu_per_request_s": cpu_rounds,
        "wall_per_request_s": wall_rounds,
        "framework_version": importlib.import_module("importlib.metadata").version(framework),
        "integration_missing": missing,
        **facts,
    }


def integration_missing(side: str, framework: str) -> bool:
    """Whether the SDK has no integration for ``framework`` at all (not: has one, but it is off;
    that is checked after the app is built, and fails the run)."""
    if side != "bugnet":
        return False
    return importlib.util.find_spec(f"bugnet.integrations.{framework}") is None


def scope_inspector(sdk: Any) -> Callable[[], dict[str, Any]]:
    """What the app's check route records, before and after its log line: which isolation
    scope is active, how many breadcrumbs it holds, and the transaction name set on it (or on
    the current scope). Both SDKs keep these in the same private attributes."""

    def inspect() -> dict[str, Any]:
        isolation, current = sdk.get_isolation_scope(), sdk.get_current_scope()
        return {
            "scope": id(isolation),
            "breadcrumbs": len(isolation._breadcrumbs),
            "transaction": current._transaction or isolation._transaction,
        }

    return inspect


def check_sdk_in_request(
    sdk: Any, driver: Any, framework: str, missing: bool, path: str
) -> dict[str, Any]:
    """Fail loudly unless the SDK's integration for ``framework`` is on and at work: listed in
    the client's integrations, a request in an isolation scope of its own, its ``logger.info``
    line kept as a breadcrumb. The transaction name is information: sentry-sdk sets it as the
    request starts, Bugnet may name it only when an event is sent."""
    if sdk is None:
        return {}
    integrations = sorted(sdk.get_client().integrations)
    facts: dict[str, Any] = {"integrations": integrations}
    if missing:
        return facts
    if framework not in integrations:
        raise RuntimeError(f"{sdk.__name__}: no {framework} integration in {integrations}")
    status, body = driver.probe(path)
    seen = body.get("check", {}) if isinstance(body, dict) else {}
    before, after = seen.get("before", {}), seen.get("after", {})
    problems = []
    if status != 200 or not before:
        problems.append(f"the check route answered {status} {body!r}")
    elif before["scope"] == id(sdk.get_isolation_scope()):
        problems.append("the request ran in the process's isolation scope, not one of its own")
    elif after["breadcrumbs"] != before["breadcrumbs"] + 1:
        problems.append(f"the log line was not kept as a breadcrumb ({before} -> {after})")
    if problems:
        raise RuntimeError(f"{sdk.__name__} with {framework}: {problems[0]}")
    facts["transaction_during_request"] = before["transaction"]
    return facts


def memory_now() -> dict[str, int]:
    gc.collect()
    return {"rss_bytes": rss_bytes(), "allocated_blocks": sys.getallocatedblocks()}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this benchmark needs Linux)")


def dir_usage(path: Optional[str]) -> dict[str, int]:
    """Files and bytes under ``path``; files the SDK removes meanwhile are skipped."""
    sizes = []
    for file in Path(path).rglob("*") if path else []:
        try:
            if file.is_file():
                sizes.append(file.stat().st_size)
        except FileNotFoundError:
            pass
    return {"files": len(sizes), "bytes": sum(sizes)}


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    """Measure one thing for one SDK and print it as one JSON line after ``RESULT_MARK``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("worker", choices=("capture", "logging", "memory", "web"))
    parser.add_argument("--sdk", choices=("none", *MODULES), required=True)
    parser.add_argument("--framework", choices=FRAMEWORKS, default=FRAMEWORKS[0])
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--spool-dir")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plan = QUICK_PLAN if args.quick else Plan()
    sdk = init_sdk(args.sdk, args.dsn, args.spool_dir)
    if args.worker == "capture":
        result = work_capture(sdk, plan, args.spool_dir)
    elif args.worker == "logging":
        result = work_logging(sdk, plan)
    elif args.worker == "web":
        result = work_web(sdk, args.sdk, args.framework, plan)
    else:
        result = work_memory(sdk, plan, args.spool_dir)
    if sdk is not None:
        result["sdk"] = sdk_facts(sdk)
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
