"""The PostgreSQL statements of jobs' provider tasks (`job_tasks`): all recorded at the submit, ended one by one,
and read with their job. Each write is one statement: the job's row and its tasks' change together or not at all."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fluxbot.errors import stored_text
from fluxbot.jobs.capacity import Capacity
from fluxbot.jobs.lifecycle import LIFECYCLE, JobTask, Transition
from fluxbot.storage.postgres_engine import CLAIM, Engine, Record
from fluxbot.storage.schema import images_json
from fluxbot.storage.sqlite_engine import sql_states
from fluxbot.storage.sqlite_tasks import AT_PROVIDER_TASKS, FIRST_IN_LINE, claim_inputs

if TYPE_CHECKING:
    from fluxbot.storage.postgres_engine import Connection

#: A job's tasks as one JSON array: a column of every read of jobs (`schema.job_from_row` takes it apart).
TASKS = """(SELECT json_agg(json_build_object(
        'number', number, 'task_id', task_id, 'poll_url', poll_url, 'state', state, 'images', images::json,
        'inference_seconds', inference_seconds, 'error_kind', error_kind, 'error_message', error_message,
        'cost', cost))::text FROM job_tasks WHERE job_tasks.job_id = jobs.id) AS tasks"""

#: The job a provider task belongs to (the newest, should a provider ever reuse an id); $1 provider, $2 task id.
JOB_OF_TASK = """WHERE id = (SELECT job_id FROM job_tasks WHERE provider = $1 AND task_id = $2
                  ORDER BY job_id DESC LIMIT 1)"""

# What `schema.tasks_json` writes, as rows.
_RECORDS = """json_to_recordset({param}::json) AS t(number bigint, task_id text, poll_url text, state text, images text,
        inference_seconds double precision, error_kind text, error_message text, cost double precision)"""

#: `submitted`: $1 the first task's id, $2 now, $3 the job, $4 its tasks (`schema.tasks_json`).
MARK_SUBMITTED = f"""WITH done AS (
        UPDATE jobs SET status = 'submitted', task_id = $1, submitted_at = $2
        WHERE id = $3 AND status IN {sql_states(LIFECYCLE[Transition.SUBMITTED].sources)} RETURNING id, provider
    ), added AS (
        INSERT INTO job_tasks (job_id, provider, number, task_id, poll_url, state, images, inference_seconds,
                               error_kind, error_message, cost)
        SELECT done.id, done.provider, t.number, t.task_id, t.poll_url, t.state, t.images, t.inference_seconds,
               t.error_kind, t.error_message, t.cost
        FROM done, {_RECORDS.format(param="$4")}
    )
    SELECT id FROM done"""  # noqa: S608

#: `task_end`, only in an open job this run owns: $1-$6 what became of it, $7 the job, $8 its number, $9 this run.
END_TASK = f"""UPDATE job_tasks SET state = $1, images = $2, inference_seconds = $3, error_kind = $4,
        error_message = $5, cost = $6
    WHERE job_id = $7 AND number = $8 AND state = 'running'
      AND EXISTS (SELECT 1 FROM jobs WHERE id = $7 AND owner = $9
                  AND status IN {sql_states(LIFECYCLE[Transition.TASK_END].sources)})
    RETURNING number"""  # noqa: S608


def finish(job_update: str) -> str:
    """`finish` with its tasks: `job_update` (an UPDATE of jobs with $1-$8 ... RETURNING id) and $9, what became of
    the job's tasks (`schema.tasks_json`), in one statement."""
    return f"""WITH done AS ({job_update}), ended AS (
            UPDATE job_tasks SET state = t.state, images = t.images, inference_seconds = t.inference_seconds,
                   error_kind = t.error_kind, error_message = t.error_message, cost = t.cost
            FROM {_RECORDS.format(param="$9")}
            WHERE job_tasks.job_id IN (SELECT id FROM done) AND job_tasks.number = t.number
        )
        SELECT id FROM done"""  # noqa: S608


def end_task_args(job_id: int, task: JobTask, instance: str) -> tuple[Any, ...]:
    """The arguments of END_TASK."""
    kind = None if task.error_kind is None else task.error_kind.value
    return (task.state.value, images_json(task.images), task.inference_seconds, kind, stored_text(task.error_message),
            task.cost, job_id, task.number, instance)  # fmt: skip


_CLAIM_ONE = f"""UPDATE jobs SET status = 'pending', owner = $1
    WHERE id = $2 AND status IN {sql_states(LIFECYCLE[Transition.CLAIM].sources)}
    RETURNING *"""  # noqa: S608


async def claim_within(engine: Engine, instance: str, cap: int, capacity: Capacity) -> Record | None:
    """`claim` within the providers' and models' limits: under the claim lock, so the tasks counted include every
    claim committed before, the job `Capacity.next_job` picks becomes this run's pending job."""
    async with engine.transaction(CLAIM) as db:
        return await _claim(engine, db, instance, cap, capacity)


async def _claim(engine: Engine, db: Connection, instance: str, cap: int, capacity: Capacity) -> Record | None:
    engine.round_trips += 2
    at_provider = [tuple(row) for row in await db.fetch(AT_PROVIDER_TASKS)]
    first_in_line = [tuple(row) for row in await db.fetch(FIRST_IN_LINE)]
    chosen = capacity.next_job(*claim_inputs(at_provider, first_in_line, capacity), jobs=cap)
    if chosen is None:
        return None
    engine.round_trips += 1
    rows = await db.fetch(_CLAIM_ONE, instance, chosen)
    return rows[0] if rows else None
