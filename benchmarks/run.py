"""fluxbot benchmark: the real bot process against the fakes on loopback; prints figures, asserts nothing.

Run: .venv/bin/python -m benchmarks.run                 (about 6 minutes on 2 cores)
     .venv/bin/python -m benchmarks.run --quick         (about 3 minutes: smaller sizes, same task durations)
     .venv/bin/python -m benchmarks.run --only A,C      (only those sections)

Sections: A polling mode against an SDK-like poller, B lost callbacks, C burst deferral, D idle,
E queue burst at the shipped cap, F memory and CPU in flight, G restart with jobs unfinished.
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

from benchmarks.harness import ACK_LIMIT, ms, pct, ratio
from benchmarks.latency import LONGEST, SDK_INTERVAL, SHORTEST, callbacks, idle, polling
from benchmarks.load import deferral, in_flight, queue_burst, restart

SECTIONS = "ABCDEFG"


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


FULL = Sizes(200, 10.0, 100, ((1000, 5.0, 3), (200, 5.0, 1)), 30.0, 300, 1000, 1000)
QUICK = Sizes(50, 5.0, 30, ((200, 1.0, 1), (40, 1.0, 1)), 10.0, 60, 200, 200)


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


RUNNERS: dict[str, Callable[[Path, Sizes], Awaitable[None]]] = {
    "A": section_a, "B": section_b, "C": section_c, "D": section_d, "E": section_e, "F": section_f, "G": section_g,
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
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 3 minutes)")
    parser.add_argument("--only", metavar="A,B,...", help=f"run only these sections (of {','.join(SECTIONS)})")
    args = parser.parse_args()
    asyncio.run(main(args.quick, chosen(args.only)))
    sys.exit(0)
