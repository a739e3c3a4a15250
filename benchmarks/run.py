"""fluxbot benchmark: the real bot process against the fakes on loopback; prints figures, asserts nothing.

Run: .venv/bin/python -m benchmarks.run                 (about 6 minutes on 2 cores, and 3 more for section H)
     .venv/bin/python -m benchmarks.run --quick         (about 3 minutes, and 2½ more for section H: smaller sizes,
                                                         same task durations)
     .venv/bin/python -m benchmarks.run --only A,C      (only those sections)

Sections: A polling mode against an SDK-like poller, B lost callbacks, C burst deferral, D idle,
E queue burst at the shipped cap, F memory and CPU in flight, G restart with jobs unfinished, H one process on
SQLite against two processes on PostgreSQL (burst, load, SIGKILL), side by side.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.cluster import ENGINES, LABELS, TASKS, burst, failover, load, postgres_server
from benchmarks.harness import ACK_LIMIT, ms, pct, ratio
from benchmarks.latency import LONGEST, SDK_INTERVAL, SHORTEST, callbacks, idle, polling
from benchmarks.load import deferral, in_flight, queue_burst, restart

SECTIONS = "ABCDEFGH"


@dataclass(frozen=True)
class Sizes:
    """How big each section's scenario is."""

    polling_jobs: int
    polling_spread: float
    callback_jobs: int
    #: (commands, over seconds, runs)
    bursts: tuple[tuple[int, float, int], ...]
    idle_seconds: float
    queued: int
    in_flight: int
    unfinished: int
    #: Section H: (commands, over seconds) of the burst; the load's jobs and spread; the jobs held at the kill.
    cluster_burst: tuple[int, float]
    cluster_jobs: int
    cluster_spread: float
    cluster_held: int


FULL = Sizes(200, 10.0, 100, ((1000, 5.0, 3), (200, 5.0, 1)), 30.0, 300, 1000, 1000, (1000, 5.0), 200, 10.0, 50)
QUICK = Sizes(50, 5.0, 30, ((200, 1.0, 1), (40, 1.0, 1)), 10.0, 60, 200, 200, (200, 1.0), 50, 5.0, 20)


async def section_a(tmp: Path, sizes: Sizes) -> None:
    jobs, spread = sizes.polling_jobs, sizes.polling_spread
    ours, sdk = await polling(tmp / "polling", jobs, spread)
    print(f"A. polling mode (no callback URL): {jobs} jobs whose tasks take {SHORTEST:.0f}–{LONGEST:.0f} s (uniform, "
          f"seeded), commands spread over {spread:.0f} s; the SDK-like poller runs at the same time")  # fmt: skip
    print(f"   fluxbot   completion → member  {ms(ours.latencies, worst=True)}")
    print(f"             lookups per job {ours.lookups_per_job:.3f} ({ours.lookups} calls), "
          f"delivered {ours.delivered}/{ours.jobs}")  # fmt: skip
    print(f"   SDK-like  completion → result  {ms(sdk.latencies, worst=True)}")
    print(f"             lookups per job {sdk.lookups_per_job:.3f} ({sdk.lookups} calls), one coroutine per job "
          f"polling its task every {SDK_INTERVAL:.0f} s, timed to the answer that shows the result")  # fmt: skip
    if ours.latencies and sdk.latencies:
        print(f"   fluxbot / SDK: p50 {ratio(pct(ours.latencies, 50), pct(sdk.latencies, 50))} (target ≤ 0.5), "
              f"lookups per job {ratio(ours.lookups_per_job, sdk.lookups_per_job)} (target ≤ 0.05)")  # fmt: skip
    print(f"   {ours.settings}")


async def section_b(tmp: Path, sizes: Sizes) -> None:
    jobs = sizes.callback_jobs
    print(f"B. callbacks: {jobs} jobs whose tasks take {SHORTEST:.0f}–{LONGEST:.0f} s, commands over 10 s; "
          "task end → member")  # fmt: skip
    _, sent = await callbacks(tmp / "callbacks", jobs, 10.0, lost=0.0)
    print(f"   every callback sent:      {ms(sent.latencies, worst=True)}")
    print(f"                             delivered {sent.delivered}/{sent.jobs}, lookups per job "
          f"{sent.lookups_per_job:.3f}")  # fmt: skip
    lost, came = await callbacks(tmp / "lost", jobs, 10.0, lost=0.5)
    print(f"   half the callbacks lost:  lost ones  {ms(lost.latencies, worst=True)}   (target: max ≤ 5 s)")
    print(f"                             sent ones  {ms(came.latencies, worst=True)}")
    print(f"                             delivered {lost.delivered + came.delivered}/{lost.jobs}, lookups per job "
          f"{lost.lookups_per_job:.3f}")  # fmt: skip
    print(f"   {sent.settings}")


async def section_c(tmp: Path, sizes: Sizes) -> None:
    print("C. burst deferral: commands from as many members, evenly spread; INTERACTION_CREATE → deferral, "
          "tasks of 2–20 s")  # fmt: skip
    if any(repeats > 1 for *_, repeats in sizes.bursts):
        print("   (a burst that runs more than once: near the bot's limit it varies from run to run)")
    for jobs, seconds, repeats in sizes.bursts:
        p99s = []
        for attempt in range(repeats):
            run = await deferral(tmp / f"burst{jobs}-{attempt}", jobs, seconds)
            p99s.append(pct(run.latencies, 99) if run.latencies else float("inf"))
            print(f"   {jobs} over {seconds:.0f} s ({jobs / seconds:.0f}/s): {ms(run.latencies)}   "
                  f"later than {ACK_LIMIT:.0f} s: {run.late}; delivered {run.delivered}/{run.jobs}")  # fmt: skip
        if repeats > 1:
            print(f"   {jobs} over {seconds:.0f} s, {repeats} runs: p99 from {min(p99s) * 1000:.1f} to "
                  f"{max(p99s) * 1000:.1f} ms, median {pct(p99s, 50) * 1000:.1f} ms")  # fmt: skip
        print(f"   {run.settings}")
    print("   (target: p99 ≤ 100 ms at 1,000 over 5 s, every job delivered)")


async def section_d(tmp: Path, sizes: Sizes) -> None:
    calls, before, settings = await idle(tmp / "idle", sizes.idle_seconds)
    print(f"D. idle: provider calls over {sizes.idle_seconds:.0f} s with nothing pending (after {before} jobs "
          f"were delivered): {calls} (target 0)")  # fmt: skip
    print(f"   {settings}")


async def section_e(tmp: Path, sizes: Sizes) -> None:
    queued = sizes.queued
    took, edits, delivered, settings = await queue_burst(tmp / "queue", queued)
    print(
        f"E. queue burst at the shipped cap: {queued} commands at once, tasks of 2–6 s: last result after "
        f"{took:.1f} s, {edits} message edits ({edits / queued:.1f} per job), delivered {delivered}/{queued}"
    )
    print(f"   {settings}")


async def section_f(tmp: Path, sizes: Sizes) -> None:
    load = sizes.in_flight
    idle_mem, idle_cpu, mem, cpu, settings = await in_flight(tmp / "load", load, 15)
    print(f"F. {load} jobs in flight for 15 s: peak RSS {mem:.0f} MiB (idle {idle_mem:.0f} MiB, "
          f"{mem / idle_mem:.2f}x), CPU {cpu:.1f} s (idle start-up {idle_cpu:.1f} s)")  # fmt: skip
    print(f"   {settings}")


async def section_g(tmp: Path, sizes: Sizes) -> None:
    jobs = sizes.unfinished
    login, looked, lookups, settings = await restart(tmp / "restart", jobs)
    print(f"G. restart (SIGKILL) with {jobs} jobs at the provider: gateway login after {login:.2f} s, every task "
          f"looked up after {looked:.2f} s ({lookups} lookup calls)")  # fmt: skip
    print(f"   {settings}")


def h_row(label: str, text: dict[str, str], pg_over_sqlite: str = "") -> None:
    """One line of section H's table: a figure of each engine (and the ratio)."""
    print(f"   {label:<38}{text['sqlite']:>14}{text['postgres']:>16}{pg_over_sqlite:>12}".rstrip())


def h_figure(label: str, values: dict[str, float | None], unit: str, scale: float = 1.0, digits: int = 1) -> None:
    """A measured figure of each engine, with PostgreSQL / SQLite."""
    text = {e: "—" if v is None else f"{v * scale:.{digits}f}{unit}" for e, v in values.items()}
    sqlite, postgres = values["sqlite"], values["postgres"]
    h_row(label, text, "n/a" if sqlite is None or postgres is None else ratio(postgres, sqlite))


def h_percentiles(label: str, samples: dict[str, list[float]], *, worst: bool = False) -> None:
    """p50 and p99 (and the maximum) of each engine's samples, in milliseconds."""
    for p in (50.0, 99.0, *([100.0] if worst else [])):
        name = "max" if p == 100 else f"p{p:.0f}"
        h_figure(f"{label} {name}", {e: pct(v, p) if v else None for e, v in samples.items()}, " ms", 1000)


async def section_h(tmp: Path, sizes: Sizes) -> None:
    (jobs, seconds), held = sizes.cluster_burst, sizes.cluster_held
    runs, spread = sizes.cluster_jobs, sizes.cluster_spread
    async with postgres_server() as pg:
        bursts = {e: await burst(e, tmp / f"cluster-burst-{e}", pg, jobs, seconds) for e in ENGINES}
        loads = {e: await load(e, tmp / f"cluster-load-{e}", pg, runs, spread) for e in ENGINES}
        kills = {e: await failover(e, tmp / f"cluster-kill-{e}", pg, held) for e in ENGINES}
    print("H. one process on SQLite (both shards) vs two on PostgreSQL (shard 0, shard 1), the same 2-shard fake "
          "Discord; commands alternate between a guild on each shard, each from its own member")  # fmt: skip
    h_row("", LABELS, "PG/SQLite")
    print(f"   burst: {jobs} commands over {seconds:.0f} s, tasks {TASKS}; INTERACTION_CREATE → deferral")
    h_percentiles("  acknowledgement", {e: b.latencies for e, b in bursts.items()})
    h_row(f"  later than {ACK_LIMIT:.0f} s", {e: str(b.late) for e, b in bursts.items()})
    h_row("  delivered", {e: f"{b.delivered}/{b.jobs}" for e, b in bursts.items()})
    print(f"   load: {runs} jobs, tasks {TASKS} (seeded), commands over {spread:.0f} s, polling mode")
    h_percentiles("  completion → member", {e: r.latencies for e, r in loads.items()}, worst=True)
    h_figure("  provider calls per job", {e: r.provider_calls / r.jobs for e, r in loads.items()}, "", digits=3)
    h_figure("  database round trips per job", {e: r.round_trips / r.jobs for e, r in loads.items()}, "")
    h_row("  delivered", {e: f"{r.delivered}/{r.jobs}" for e, r in loads.items()})
    print(f"   failover: {held} jobs at the provider, then SIGKILL (SQLite: its process, started again at once; "
          "PostgreSQL: shard 0's, shard 1's takes over); the tasks finish at the kill")  # fmt: skip
    h_figure('  kill → first "took over"', {e: k.taken_over for e, k in kills.items()}, " s", digits=2)
    h_figure("  kill → last of its jobs delivered", {e: k.delivered_after for e, k in kills.items()}, " s", digits=2)
    h_row("  jobs taken over / the killed one's", {e: f"{k.adopted}/{k.owned}" for e, k in kills.items()})
    h_row("  delivered exactly once", {e: f"{k.once}/{k.jobs}" for e, k in kills.items()})
    for engine in ENGINES:
        for settings in dict.fromkeys(run.settings for run in (bursts[engine], loads[engine], kills[engine])):
            print(f"   {LABELS[engine]}: {settings}")


RUNNERS: dict[str, Callable[[Path, Sizes], Awaitable[None]]] = {
    "A": section_a, "B": section_b, "C": section_c, "D": section_d, "E": section_e, "F": section_f, "G": section_g,
    "H": section_h,
}  # fmt: skip


def chosen(text: str | None) -> str:
    """The sections `--only` names, in report order."""
    if text is None:
        return SECTIONS
    names = {part.strip().upper() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(SECTIONS))
    if unknown or not names:
        raise SystemExit(f"--only: unknown section {', '.join(unknown) or '(none)'}; choose from "
                         f"{', '.join(SECTIONS)}, comma-separated (e.g. --only A,C)")  # fmt: skip
    return "".join(s for s in SECTIONS if s in names)


async def main(quick: bool, sections: str) -> None:
    sizes = QUICK if quick else FULL
    began = time.monotonic()
    print(f"fluxbot benchmark · Python {platform.python_version()} · {platform.machine()} · {os.cpu_count()} cores"
          f" · {'quick' if quick else 'full'} run · sections {','.join(sections)}")  # fmt: skip
    print("each section ends with the bot settings it ran with ((default) = the shipped default)")
    with tempfile.TemporaryDirectory() as tmp_dir:
        for name in sections:
            await RUNNERS[name](Path(tmp_dir), sizes)
            sys.stdout.flush()
    print(f"benchmark run time: {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 3 minutes, and 2½ more for H)")
    parser.add_argument("--only", metavar="A,B,...", help=f"run only these sections (of {','.join(SECTIONS)})")
    args = parser.parse_args()
    asyncio.run(main(args.quick, chosen(args.only)))
    sys.exit(0)
