"""A job's provider tasks in the store, on both engines: recorded at the submit, ended one by one, read with the job."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from fluxbot.errors import Message, Number
from fluxbot.jobs.lifecycle import FailureKind, Job, JobStatus, JobTask, Outcome, Reply, TaskPhase
from fluxbot.jobs.service import NO_LIMITS
from fluxbot.providers.base import Image, JobRequest
from fluxbot.storage import Store
from tests.conftest import earlier_run, open_store

REQUEST = JobRequest("generate", "three foxes", "flux-kontext-pro", "1:1", count=3)
REPLY = Reply(user_id=42, guild_id=7, channel_id=8, application_id=9, interaction_token="tok", message_id=1001)
#: The tables migration 13 added: dropping them (and going back to version 12) makes the store run it again.
MIGRATION_13_TABLES = ("job_tasks", "kept_images")


async def claimed(store: Store, request: JobRequest = REQUEST, *, now: float = 100.0) -> Job:
    job = await store.admit("kie", request, REPLY, limits=NO_LIMITS, now=now)
    assert job is not None
    got = await store.claim(1000)
    assert got is not None
    assert got.id == job.id
    return got


def three_tasks() -> list[JobTask]:
    return [
        JobTask(1, "task-a", poll_url="https://poll.test/a", cost=1.5),
        JobTask(2, "task-b"),
        JobTask(3, None, TaskPhase.FAILED, error_kind=FailureKind.RATE_LIMITED, error_message="busy"),
    ]


async def raw(location: tuple[str, Path | str], *statements: str) -> list[tuple[Any, ...]]:
    """Run statements straight on the database (both engines); the last one's rows."""
    engine, where = location
    rows: list[tuple[Any, ...]] = []
    if engine == "sqlite":
        with sqlite3.connect(Path(where) / "jobs.db") as file:
            for statement in statements:
                rows = [tuple(row) for row in file.execute(statement)]
        return rows
    server = await asyncpg.connect(str(where))
    try:
        for statement in statements:
            rows = [tuple(row) for row in await server.fetch(statement)]
    finally:
        await server.close()
    return rows


async def test_a_job_of_several_tasks_is_submitted_with_all_of_them_and_found_by_any(store: Store) -> None:
    job = await claimed(store)
    tasks = three_tasks()
    assert await store.mark_submitted(job.id, tasks, now=101.0)
    assert not await store.mark_submitted(job.id, tasks), "submitted once"
    submitted = await store.get_job(job.id)
    assert submitted is not None
    assert (submitted.status, submitted.task_id, submitted.submitted_at) == (JobStatus.SUBMITTED, "task-a", 101.0)
    assert submitted.tasks == tuple(tasks), "every task, the one whose submit failed too"
    assert [t.task_id for t in submitted.running_tasks()] == ["task-a", "task-b"]

    for task_id in ("task-a", "task-b"):
        found = await store.job_for_task("kie", task_id)
        assert found is not None
        assert found.id == job.id
        assert found.tasks == tuple(tasks)
    assert await store.job_for_task("acedata", "task-b") is None, "a task id belongs to its provider"
    assert await store.job_for_task("kie", "task-c") is None


async def test_tasks_end_one_by_one_and_the_last_finishes_the_job_with_all_of_them(store: Store) -> None:
    job = await claimed(store)
    tasks = three_tasks()
    await store.mark_submitted(job.id, tasks, now=101.0)

    first = replace(tasks[0], state=TaskPhase.SUCCEEDED, images=(Image("https://img.test/a.png", 7),), cost=2.0)
    assert await store.end_task(job.id, first)
    assert not await store.end_task(job.id, first), "a task ends once"
    with earlier_run(store):
        assert not await store.end_task(job.id, replace(tasks[1], state=TaskPhase.FAILED)), "only by its job's run"
    ended = await store.get_job(job.id)
    assert ended is not None
    assert ended.status is JobStatus.SUBMITTED, "the job runs on while a task does"
    assert ended.tasks[0] == first
    assert [t.task_id for t in ended.running_tasks()] == ["task-b"]

    second = replace(tasks[1], state=TaskPhase.TIMED_OUT, error_kind=FailureKind.TIMED_OUT, error_message="slow")
    final = (first, second, tasks[2])
    outcome = Outcome(JobStatus.SUCCEEDED, images=first.images, message="2 of 3 images failed: slow")
    assert await store.finish(job.id, outcome, now=130.0, tasks=final)
    done = await store.get_job(job.id)
    assert done is not None
    assert (done.status, done.images, done.error_message) == (JobStatus.SUCCEEDED, first.images, outcome.message)
    assert done.tasks == final
    assert not await store.end_task(job.id, replace(tasks[1], state=TaskPhase.SUCCEEDED)), "the job is finished"


async def test_a_finish_that_loses_records_no_task(store: Store) -> None:
    job = await claimed(store)
    await store.mark_submitted(job.id, three_tasks())
    assert await store.finish(job.id, Outcome.failed(FailureKind.CANCELLED, "stopped"))
    late = replace(three_tasks()[0], state=TaskPhase.SUCCEEDED, images=(Image("https://img.test/x.png"),))
    assert not await store.finish(job.id, Outcome(JobStatus.SUCCEEDED, images=late.images), tasks=[late])
    done = await store.get_job(job.id)
    assert done is not None
    assert done.tasks[0].state is TaskPhase.RUNNING, "the lost finish changed nothing"


async def test_an_adopted_job_comes_with_its_tasks(store: Store) -> None:
    with earlier_run(store):
        await store.leases.renew(seconds=0.0)
        job = await claimed(store)
        await store.mark_submitted(job.id, three_tasks())
    [adopted] = await store.leases.adopt_orphans()
    assert adopted.id == job.id
    assert adopted.tasks == tuple(three_tasks())


async def test_flagged_images_stay_flagged(store: Store) -> None:
    job = await claimed(store)
    await store.mark_submitted(job.id, [JobTask(1, "task-a")])
    images = (Image("https://img.test/1.png", 1, flagged=True), Image("https://img.test/2.png", 2))
    ended = JobTask(1, "task-a", TaskPhase.SUCCEEDED, images=images)
    assert await store.finish(job.id, Outcome(JobStatus.SUCCEEDED, images=images), tasks=[ended])
    done = await store.get_job(job.id)
    assert done is not None
    assert done.images == images
    assert done.tasks[0].images == images


async def test_the_upgrade_gives_every_job_that_reached_a_provider_its_task(
    store: Store, store_location: tuple[str, Path | str]
) -> None:
    queued = await store.admit("kie", REQUEST, replace(REPLY, message_id=None), limits=NO_LIMITS)  # never claimed
    running = await claimed(store)
    await store.mark_submitted(running.id, [JobTask(1, "old-running")])
    failed = await claimed(store)
    await store.mark_submitted(failed.id, [JobTask(1, "old-failed")])
    await store.finish(failed.id, Outcome.failed(FailureKind.REFUSED, "blocked"))
    await store.close()
    assert queued is not None
    # Back to version 12, as a database written before issue 14 is (without migration 14's column too).
    back = "PRAGMA user_version = 12" if store_location[0] == "sqlite" else "UPDATE schema_version SET version = 12"
    dropped = (
        *(f"DROP TABLE {table}" for table in MIGRATION_13_TABLES),
        "ALTER TABLE jobs DROP COLUMN locale",
        "ALTER TABLE jobs DROP COLUMN member_locale",
    )
    await raw(store_location, *dropped, back)

    upgraded = await open_store(*store_location)
    try:
        old_running = await upgraded.job_for_task("kie", "old-running")
        assert old_running is not None
        assert old_running.tasks == (JobTask(1, "old-running"),)
        old_failed = await upgraded.get_job(failed.id)
        assert old_failed is not None
        assert old_failed.tasks == (JobTask(1, "old-failed", TaskPhase.FAILED, error_kind=FailureKind.REFUSED,
                                            error_message="blocked"),)  # fmt: skip
        still_queued = await upgraded.get_job(queued.id)
        assert still_queued is not None
        assert still_queued.tasks == ()
    finally:
        await upgraded.close()


async def test_pruning_a_job_takes_its_tasks_along(store: Store, store_location: tuple[str, Path | str]) -> None:
    job = await claimed(store, now=100.0)
    await store.mark_submitted(job.id, three_tasks())
    await store.finish(job.id, Outcome.failed(FailureKind.FAILED, "no"))
    assert await store.retention.prune(before=200.0) == 1
    assert await raw(store_location, "SELECT COUNT(*) FROM job_tasks") == [(0,)]


async def test_a_jobs_messages_and_language_are_kept_so_its_cards_can_be_said_in_that_language(store: Store) -> None:
    reason = Message("The image provider refused this prompt: {why}.", why="nsfw")
    note = Message.counted("{n} image failed: {reason}", "{n} images failed: {reason}", 2, reason=reason)
    job = await store.admit("kie", REQUEST, replace(REPLY, locale="pt-BR"), limits=NO_LIMITS)
    assert job is not None
    assert job.reply.locale == "pt-BR"
    assert await store.claim(1000) is not None
    await store.mark_submitted(job.id, three_tasks())
    await store.end_task(job.id, replace(three_tasks()[1], state=TaskPhase.FAILED, error_message=reason))
    await store.finish(job.id, Outcome(JobStatus.SUCCEEDED, images=(Image("https://img.test/1.png"),), message=note))
    got = await store.get_job(job.id)
    assert got is not None
    assert got.reply.locale == "pt-BR"
    assert isinstance(got.error_message, Message)
    assert got.error_message == "2 images failed: The image provider refused this prompt: nsfw."
    # Read back, the message keeps its template and values: it can be said in another language.
    assert (got.error_message.template, got.error_message.forms) == (note.template, note.forms)
    assert got.error_message.values["reason"] == reason
    assert isinstance(got.error_message.values["reason"], Message)
    [failed] = [task for task in got.tasks if task.number == 2]
    assert isinstance(failed.error_message, Message)
    assert (failed.error_message.template, dict(failed.error_message.values)) == (reason.template, {"why": "nsfw"})


def test_a_stored_message_reads_back_and_plain_text_stays_as_it_is() -> None:
    counted = Message.counted("{n} image", "{n} images", 3, where=Message("here"), size=Number(1500))
    back = Message.read(counted.stored())
    assert back is not None
    assert (str(back), back.forms, back.values) == (str(counted), counted.forms, counted.values)
    assert isinstance(back.values["size"], Number)
    assert Message.read("An older job's English text {with braces}") == "An older job's English text {with braces}"
    assert Message.read('{"said": broken') == '{"said": broken'
    assert Message.read(None) is None
