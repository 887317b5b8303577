"""The Markdown report of ``ingest.py``: figures per target, ratios, the issue's goals with
pass/fail, and (when Bugnet was diagnosed) where its time goes."""

from __future__ import annotations

from typing import Any, Optional

from ingest_profile import render

SQLITE, POSTGRES, BUGSINK, SINK = "Bugnet SQLite", "Bugnet PostgreSQL", "Bugsink 2.6.1", "null sink"


def fmt(value: Any, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{suffix}"
    return f"{value}{suffix}"


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def _cpu(row: dict[str, Any]) -> str:
    return ", ".join(f"{role} {ms:.1f}" for role, ms in row.get("cpu_ms_per_event", {}).items())


def results_table(rows: dict[str, dict]) -> list[str]:
    lines = [
        "| target | accepted/s | p50 ms | p99 ms | end-to-end events/s | errors "
        "| idle RSS MB (PSS) | RSS after MB (PSS) | CPU ms per event |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in rows.items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped: {r['skipped']} |  |  |  |  |  |  |  |")
            continue
        idle, after = r["idle"], r["after"]
        lines.append(
            f"| {name} | {fmt(r['accepted_per_s'])} | {fmt(r['p50_ms'], 1)} "
            f"| {fmt(r['p99_ms'], 1)} | {fmt(r.get('e2e_per_s'))} | {r['errors']} "
            f"| {fmt(idle['rss_mb'])} ({fmt(idle['pss_mb'])}) "
            f"| {fmt(after['rss_mb'])} ({fmt(after['pss_mb'])}) | {_cpu(r)} |"
        )
    return lines


def ratios_of(rows: dict[str, dict]) -> dict[str, Optional[float]]:
    def get(name: str, key: str) -> Optional[float]:
        value = rows.get(name, {}).get(key)
        return float(value) if value is not None else None

    return {
        "Bugnet SQLite / Bugsink, end-to-end": ratio(get(SQLITE, "e2e_per_s"), get(BUGSINK, "e2e_per_s")),
        "Bugnet PostgreSQL / Bugsink, end-to-end": ratio(get(POSTGRES, "e2e_per_s"), get(BUGSINK, "e2e_per_s")),
        "Bugnet SQLite / null sink, accepted/s": ratio(get(SQLITE, "accepted_per_s"), get(SINK, "accepted_per_s")),
        "Bugnet PostgreSQL / null sink, accepted/s": ratio(get(POSTGRES, "accepted_per_s"), get(SINK, "accepted_per_s")),
        "Bugnet SQLite / Bugsink, accepted/s": ratio(get(SQLITE, "accepted_per_s"), get(BUGSINK, "accepted_per_s")),
    }  # fmt: skip


def goals(rows: dict[str, dict], cores: int) -> list[dict[str, Any]]:
    """The issue's goals for Bugnet on SQLite: measured value and pass/fail (n/a: not run)."""
    bugnet, ratios = rows.get(SQLITE, {}), ratios_of(rows)
    vs_bugsink = ratios["Bugnet SQLite / Bugsink, end-to-end"]
    vs_sink = ratios["Bugnet SQLite / null sink, accepted/s"]
    e2e, p99 = bugnet.get("e2e_per_s"), bugnet.get("p99_ms")
    idle = (bugnet.get("idle") or {}).get("rss_mb")
    rows_out = [
        ("end-to-end vs Bugsink", ">= 25x", vs_bugsink, fmt(vs_bugsink, 1, "x"),
         lambda v: v >= 25),
        (f"end-to-end events/s ({cores} cores)", ">= 1,000", e2e, fmt(e2e), lambda v: v >= 1000),
        ("accepted/s vs null sink", ">= 50%", vs_sink, fmt(vs_sink and 100 * vs_sink, 0, "%"),
         lambda v: v >= 0.5),
        ("ingest p99 while digesting", "< 50 ms", p99, fmt(p99, 1, " ms"), lambda v: v < 50),
        ("idle RSS (process tree)", "< 150 MB", idle, fmt(idle, 0, " MB"), lambda v: v < 150),
    ]  # fmt: skip
    return [
        {"goal": goal, "target": target, "measured": value, "shown": shown,
         "result": "n/a" if value is None else ("pass" if ok(value) else "FAIL")}
        for goal, target, value, shown, ok in rows_out
    ]  # fmt: skip


def report(run: dict[str, Any]) -> list[str]:
    rows, cores = run["targets"], run["machine"]["cores"]
    run["ratios"], run["goals"] = ratios_of(rows), goals(rows, cores)
    shape, config = run["events"], run["config"]
    # The same ratios within each round (every target measured once, one after the other).
    per_round = [ratios_of(r) for r in run.get("rounds", [])]
    by_round = {name: ", ".join(fmt(r[name], 2) for r in per_round) for name in run["ratios"]}
    lines = [
        f"## Ingest: {shape['events']:,} events of {shape['event_bytes_mean']:,} bytes "
        f"({shape['wire_bytes_mean']:,} gzipped, {shape['exception_kinds']} exception kinds), "
        f"{config['threads']} threads, {cores} cores; median of {config['runs']} run(s)",
        "",
        *results_table(rows),
        "",
        "| ratio | value | by round |",
        "|---|---:|---|",
        *(
            f"| {name} | {fmt(value, 2)} | {by_round[name]} |"
            for name, value in run["ratios"].items()
        ),
        "",
        "| goal (Bugnet on SQLite) | target | measured | result |",
        "|---|---|---:|---|",
        *(f"| {g['goal']} | {g['target']} | {g['shown']} | {g['result']} |" for g in run["goals"]),
        "",
    ]
    for name, r in rows.items():
        notes = []
        if len(r.get("runs", [])) > 1:
            notes.append("runs " + "; ".join(r["runs"]))
        if r.get("server_counts"):
            notes.append(f"server counts {r['server_counts']}")
        if r.get("first_error"):
            notes.append(f"first error: {r['first_error']}")
        if r.get("digest_note"):
            notes.append(r["digest_note"])
        if notes:
            lines.append(f"- {name}: " + "; ".join(notes))
    lines += [f"- {note}" for note in run["notes"]]
    if run.get("diagnosis"):
        lines += ["", *diagnosis_lines(run["diagnosis"])]
    return lines


def diagnosis_lines(diagnosis: dict[str, Any]) -> list[str]:
    ingest, digest = diagnosis["ingest_alone"], diagnosis["digest_alone"]
    return [
        "### Where Bugnet on SQLite spends its time (py-spy, each half alone)",
        "",
        f"Ingest alone (`bugnet serve --no-digest`, web workers profiled): accepted "
        f"{fmt(ingest['accepted_per_s'])}/s, p50 {fmt(ingest['p50_ms'], 1)} ms, p99 "
        f"{fmt(ingest['p99_ms'], 1)} ms, {fmt(ingest['cpu_ms_per_event'], 2)} ms of worker CPU "
        "per event.",
        "",
        *render(ingest["profile"]),
        f"Digest alone (`bugnet digest` draining those events, profiled): "
        f"{fmt(digest.get('per_s'))} events/s, {fmt(digest.get('cpu_ms_per_event'), 2)} ms of "
        "CPU per event.",
        "",
        *render(digest["profile"]),
    ]
