"""The SQLite statements of jobs' provider tasks (`job_tasks`): all recorded at the submit, ended one by one, and
read with their job; and the writes of several statements that change a job with its tasks or kept images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from fluxbot.errors import stored_text
from fluxbot.jobs.capacity import AtProvider, Capacity, Waiting
from fluxbot.jobs.lifecycle import AT_PROVIDER, LIFECYCLE, JobStatus, JobTask, Transition
from fluxbot.storage.schema import images_json, tasks_json
from fluxbot.storage.sqlite_engine import Row, atomic, sql_states

#: A job's tasks as one JSON array: a column of every read of jobs (`schema.job_from_row` takes it apart).
TASKS = """(SELECT json_group_array(json_object(
        'number', number, 'task_id', task_id, 'poll_url', poll_url, 'state', state, 'images', json(images),
        'inference_seconds', inference_seconds, 'error_kind', error_kind, 'error_message', error_message,
        'cost', cost)) FROM job_tasks WHERE job_tasks.job_id = jobs.id) AS tasks"""

#: The job a provider task belongs to (the newest, should a provider ever reuse an id).
JOB_OF_TASK = """WHERE id = (SELECT job_id FROM job_tasks WHERE provider = ? AND task_id = ?
                  ORDER BY job_id DESC LIMIT 1)"""


def _field(name: str) -> str:
    return f"json_extract(value, '$.{name}')"


_VALUES = ", ".join(
    _field(name)
    for name in (
        "number", "task_id", "poll_url", "state", "images", "inference_seconds", "error_kind", "error_message", "cost"
    )
)  # fmt: skip
_MARK_SUBMITTED = f"""UPDATE jobs SET status = 'submitted', task_id = :first, submitted_at = :now
    WHERE id = :job AND status IN {sql_states(LIFECYCLE[Transition.SUBMITTED].sources)} RETURNING provider"""  # noqa: S608
_INSERT_TASKS = f"""INSERT INTO job_tasks (job_id, provider, number, task_id, poll_url, state, images,
        inference_seconds, error_kind, error_message, cost)
    SELECT :job, :provider, {_VALUES} FROM json_each(:tasks)"""  # noqa: S608
#: `task_end`: only in an open job this run owns (a job another process took over is that one's to record).
END_TASK = f"""UPDATE job_tasks SET state = :state, images = :images, inference_seconds = :seconds,
        error_kind = :kind, error_message = :message, cost = :cost
    WHERE job_id = :job AND number = :number AND state = 'running'
      AND EXISTS (SELECT 1 FROM jobs WHERE id = :job AND owner = :me
                  AND status IN {sql_states(LIFECYCLE[Transition.TASK_END].sources)})
    RETURNING number"""  # noqa: S608
_UPDATE_TASKS = f"""UPDATE job_tasks SET state = {_field("state")}, images = {_field("images")},
        inference_seconds = {_field("inference_seconds")}, error_kind = {_field("error_kind")},
        error_message = {_field("error_message")}, cost = {_field("cost")}
    FROM json_each(:tasks) WHERE job_tasks.job_id = :job AND job_tasks.number = {_field("number")}"""  # noqa: S608


#: What a claim within the providers' limits counts (either engine): each job at a provider, with its running tasks.
AT_PROVIDER_TASKS = f"""SELECT provider, model, status, count,
        (SELECT COUNT(*) FROM job_tasks WHERE job_tasks.job_id = jobs.id AND job_tasks.state = 'running')
    FROM jobs WHERE status IN {sql_states(AT_PROVIDER)} AND delivered_at IS NULL"""  # noqa: S608
#: ... and the first job in line for each model (one with a reply: the others wait for theirs).
FIRST_IN_LINE = """SELECT id, provider, model, count FROM (
        SELECT id, provider, model, count, ROW_NUMBER() OVER (PARTITION BY provider, model ORDER BY id) AS place
        FROM jobs WHERE status = 'queued' AND message_id IS NOT NULL AND delivered_at IS NULL
    ) AS lines WHERE place = 1"""
_CLAIM_ONE = f"""UPDATE jobs SET status = 'pending', owner = ?
    WHERE id = ? AND status IN {sql_states(LIFECYCLE[Transition.CLAIM].sources)}
    RETURNING *"""  # noqa: S608


def claim_inputs(
    at_provider: Sequence[Sequence[Any]], first_in_line: Sequence[Sequence[Any]], capacity: Capacity
) -> tuple[list[Waiting], list[AtProvider]]:
    """The rows of AT_PROVIDER_TASKS and FIRST_IN_LINE as `Capacity.next_job` takes them: a pending job counts
    every task it is sending, a submitted one those still running."""
    running = [
        AtProvider(str(provider), str(model), capacity.tasks(str(provider), str(model), int(count))
                   if status == JobStatus.PENDING.value else int(tasks))
        for provider, model, status, count, tasks in at_provider
    ]  # fmt: skip
    waiting = [Waiting(int(i), str(provider), str(model), int(count)) for i, provider, model, count in first_in_line]
    return waiting, running


async def claim_within(db: aiosqlite.Connection, instance: str, cap: int, capacity: Capacity) -> Row | None:
    """`claim`, in the writer's transaction: the job `Capacity.next_job` picks becomes this run's pending job."""
    at_provider = list(await db.execute_fetchall(AT_PROVIDER_TASKS))
    first_in_line = list(await db.execute_fetchall(FIRST_IN_LINE))
    chosen = capacity.next_job(*claim_inputs(at_provider, first_in_line, capacity), jobs=cap)
    if chosen is None:
        return None
    rows = list(await db.execute_fetchall(_CLAIM_ONE, (instance, chosen)))
    return rows[0] if rows else None


def first_task_id(tasks: Sequence[JobTask]) -> str | None:
    """The id shown as the job's task: its first started task's."""
    return next((t.task_id for t in sorted(tasks, key=lambda t: t.number) if t.task_id), None)


async def mark_submitted(db: aiosqlite.Connection, job_id: int, tasks: Sequence[JobTask], now: float) -> bool:
    """`submitted`, in the writer's transaction: the job and every one of its tasks, or nothing."""

    async def write() -> bool:
        rows = await db.execute_fetchall(_MARK_SUBMITTED, {"first": first_task_id(tasks), "now": now, "job": job_id})
        if not rows:
            return False
        provider = next(iter(rows))[0]
        await db.execute(_INSERT_TASKS, {"job": job_id, "provider": provider, "tasks": tasks_json(tasks)})
        return True

    won: bool = await atomic(db, write)
    return won


def end_task_params(job_id: int, task: JobTask, instance: str) -> dict[str, Any]:
    """The parameters of END_TASK."""
    return {
        "state": task.state.value, "images": images_json(task.images), "seconds": task.inference_seconds,
        "kind": None if task.error_kind is None else task.error_kind.value, "message": stored_text(task.error_message),
        "cost": task.cost, "job": job_id, "number": task.number, "me": instance,
    }  # fmt: skip


async def finish(
    db: aiosqlite.Connection, statement: str, params: dict[str, Any], job_id: int, tasks: Sequence[JobTask]
) -> bool:
    """`finish`, in the writer's transaction: the job's outcome (`statement`, an UPDATE ... RETURNING) and what
    became of the given tasks, or nothing."""

    async def write() -> bool:
        rows: list[Row] = list(await db.execute_fetchall(statement, params))
        if rows and tasks:
            await db.execute(_UPDATE_TASKS, {"job": job_id, "tasks": tasks_json(tasks)})
        return bool(rows)

    won: bool = await atomic(db, write)
    return won


async def deliver(db: aiosqlite.Connection, statement: str, params: Sequence[Any], job_id: int) -> bool:
    """`deliver`, in the writer's transaction: the job's delivery (`statement`, an UPDATE ... RETURNING) and, once
    it won, its kept images deleted."""

    async def write() -> bool:
        if not list(await db.execute_fetchall(statement, params)):
            return False
        await db.execute("DELETE FROM kept_images WHERE job_id = ?", (job_id,))
        return True

    won: bool = await atomic(db, write)
    return won
