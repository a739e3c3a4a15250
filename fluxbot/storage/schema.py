"""The schema as numbered migrations, written once (in SQLite's words) and rendered for each engine.

SQLite counts the migrations applied in PRAGMA user_version, PostgreSQL in the `schema_version` table; both
refuse a database a newer fluxbot wrote (SchemaTooNew) and leave it as it was.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fluxbot.errors import Message, stored_text
from fluxbot.jobs.lifecycle import FailureKind, Job, JobStatus, JobTask, Reply, TaskPhase
from fluxbot.providers.base import Image
from fluxbot.storage.base import StoreError

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        status TEXT NOT NULL,
        action TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        prompt TEXT NOT NULL,
        size TEXT NOT NULL,
        count INTEGER NOT NULL,
        image_url TEXT,
        user_id INTEGER NOT NULL,
        guild_id INTEGER,
        channel_id INTEGER,
        application_id INTEGER NOT NULL,
        interaction_token TEXT NOT NULL,
        message_id INTEGER,
        task_id TEXT,
        images TEXT NOT NULL DEFAULT '[]',
        inference_seconds REAL,
        error_kind TEXT,
        error_message TEXT,
        created_at REAL NOT NULL,
        submitted_at REAL,
        finished_at REAL,
        delivered_at REAL,
        delivered_via TEXT
    );
    CREATE INDEX jobs_open ON jobs (status) WHERE delivered_at IS NULL;
    CREATE INDEX jobs_task ON jobs (provider, task_id);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    """
    ALTER TABLE jobs ADD COLUMN upload_limit INTEGER;
    ALTER TABLE jobs ADD COLUMN expects_callback INTEGER NOT NULL DEFAULT 0;
    """,
    """
    ALTER TABLE jobs ADD COLUMN deleted_at REAL;
    CREATE INDEX jobs_user ON jobs (user_id, id);
    CREATE TABLE edit_sources (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL,
        images TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
    """
    CREATE TABLE guild_settings (guild_id INTEGER PRIMARY KEY, settings TEXT NOT NULL);
    CREATE INDEX jobs_guild_created ON jobs (guild_id, created_at);
    """,
    """
    ALTER TABLE jobs ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
    """,
    """
    CREATE INDEX jobs_model_done ON jobs (provider, model, id) WHERE status = 'succeeded';
    """,
    """
    ALTER TABLE jobs ADD COLUMN owner TEXT;
    CREATE TABLE instances (name TEXT PRIMARY KEY, lease_until REAL NOT NULL);
    """,
    """
    CREATE TABLE refusals (guild_id INTEGER NOT NULL, user_id INTEGER NOT NULL, at REAL NOT NULL);
    CREATE INDEX refusals_member ON refusals (guild_id, user_id, at);
    CREATE TABLE pauses (
        guild_id INTEGER NOT NULL, user_id INTEGER NOT NULL, until REAL NOT NULL, PRIMARY KEY (guild_id, user_id)
    );
    """,
    """
    CREATE TABLE shown_again (user_id INTEGER PRIMARY KEY, at REAL NOT NULL);
    """,
    """
    ALTER TABLE jobs ADD COLUMN style TEXT;
    CREATE TABLE member_defaults (user_id INTEGER PRIMARY KEY, settings TEXT NOT NULL);
    """,
    """
    ALTER TABLE jobs ADD COLUMN budget_guild INTEGER;
    UPDATE jobs SET budget_guild = guild_id;
    CREATE INDEX jobs_budget ON jobs (budget_guild, created_at);
    CREATE TABLE budget_notices (
        guild_id INTEGER NOT NULL, period TEXT NOT NULL, percent INTEGER NOT NULL, at REAL NOT NULL,
        PRIMARY KEY (guild_id, period, percent)
    );
    """,
    """
    CREATE TABLE usage_totals (
        guild_id INTEGER NOT NULL, user_id INTEGER NOT NULL, day TEXT NOT NULL, model TEXT NOT NULL,
        jobs INTEGER NOT NULL, images INTEGER NOT NULL, failed INTEGER NOT NULL,
        PRIMARY KEY (guild_id, user_id, day, model)
    );
    CREATE INDEX jobs_created ON jobs (created_at);
    CREATE INDEX jobs_with_token ON jobs (created_at) WHERE interaction_token != '';
    """,
    # A job may hold several provider tasks (issue 14): each is a row of job_tasks, the job's own task_id stays the
    # first one's; every job that reached a provider gets its one task. kept_images holds the images of providers
    # whose links expire, downloaded the moment their task was seen ready, until the job is delivered.
    """
    CREATE TABLE job_tasks (
        job_id INTEGER NOT NULL,
        number INTEGER NOT NULL,
        provider TEXT NOT NULL,
        task_id TEXT,
        poll_url TEXT,
        state TEXT NOT NULL,
        images TEXT NOT NULL DEFAULT '[]',
        inference_seconds REAL,
        error_kind TEXT,
        error_message TEXT,
        cost REAL,
        PRIMARY KEY (job_id, number)
    );
    CREATE INDEX job_tasks_task ON job_tasks (provider, task_id);
    INSERT INTO job_tasks (job_id, number, provider, task_id, state, images, inference_seconds, error_kind,
                           error_message)
        SELECT id, 1, provider, task_id, CASE WHEN status = 'submitted' THEN 'running' ELSE status END, images,
               inference_seconds, error_kind, error_message
        FROM jobs WHERE task_id IS NOT NULL;
    CREATE TABLE kept_images (
        job_id INTEGER NOT NULL, url TEXT NOT NULL, data BLOB NOT NULL, kept_at REAL NOT NULL,
        PRIMARY KEY (job_id, url)
    );
    """,
    # The language of what everyone in the channel reads of a job (its cards), chosen when it was asked, and the
    # member's own (a result sent by DM) (issue 15); NULL (older jobs) is English.
    """
    ALTER TABLE jobs ADD COLUMN locale TEXT;
    ALTER TABLE jobs ADD COLUMN member_locale TEXT;
    """,
)

#: SQLite's words → PostgreSQL's, in this order: an INTEGER PRIMARY KEY is SQLite's auto-numbered row id;
#: Discord ids are 64-bit, so every other INTEGER is a BIGINT; REAL (epoch seconds, durations) is 8 bytes; a BLOB
#: (image bytes) is a BYTEA.
_POSTGRES_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
)


def for_postgres(script: str) -> str:
    """A migration in PostgreSQL's words."""
    for pattern, replacement in _POSTGRES_TYPES:
        script = pattern.sub(replacement, script)
    return script


class SchemaTooNew(StoreError):
    """The database was written by a newer fluxbot: its schema version is above every one this code knows."""

    def __init__(self, where: object, version: int, known: int) -> None:
        super().__init__(
            f"{where} has schema version {version}, but this fluxbot knows versions up to {known}; "
            "run the newer fluxbot or restore a backup"
        )


_JOB_COLUMNS = {f.name for f in dataclasses.fields(Job)} - {"reply", "tasks"}
_REPLY_COLUMNS = [f.name for f in dataclasses.fields(Reply)]


def images_json(images: Sequence[Image]) -> str:
    """Images as the `images` columns hold them."""
    return json.dumps([{"url": i.url, "seed": i.seed, **({"flagged": True} if i.flagged else {})} for i in images])


def images_from(value: str | list[Any]) -> tuple[Image, ...]:
    """The images an `images` column holds (its JSON text, or the JSON already read)."""
    items = json.loads(value) if isinstance(value, str) else value
    return tuple(Image(url=i["url"], seed=i.get("seed"), flagged=bool(i.get("flagged"))) for i in items)


def tasks_json(tasks: Sequence[JobTask]) -> str:
    """Tasks as one JSON array, for the statements that write several rows of `job_tasks` at once."""
    return json.dumps(
        [
            {"number": t.number, "task_id": t.task_id, "poll_url": t.poll_url, "state": t.state.value,
             "images": images_json(t.images), "inference_seconds": t.inference_seconds,
             "error_kind": None if t.error_kind is None else t.error_kind.value,
             "error_message": stored_text(t.error_message), "cost": t.cost}
            for t in tasks
        ]
    )  # fmt: skip


def task_from(data: Mapping[str, Any]) -> JobTask:
    """The JobTask a row of `job_tasks` (or its JSON object, as the job reads aggregate them) holds."""
    return JobTask(
        int(data["number"]),
        data.get("task_id"),
        TaskPhase(data["state"]),
        poll_url=data.get("poll_url"),
        images=images_from(data.get("images") or "[]"),
        inference_seconds=data.get("inference_seconds"),
        error_kind=FailureKind.of(data.get("error_kind")),
        error_message=Message.read(data.get("error_message")),
        cost=data.get("cost"),
    )


def job_from_row(row: Mapping[str, Any]) -> Job:
    """The Job a row of `jobs` holds (either engine), with its tasks when the row has the `tasks` aggregate;
    columns a newer fluxbot added are left out."""
    data = dict(row)
    reply = Reply(**{name: data[name] for name in _REPLY_COLUMNS})
    tasks = json.loads(data.get("tasks") or "[]")
    data = {name: value for name, value in data.items() if name in _JOB_COLUMNS}
    data["status"] = JobStatus(data["status"])
    data["error_kind"] = FailureKind.of(data["error_kind"])
    data["expects_callback"] = bool(data["expects_callback"])
    data["options"] = json.loads(data["options"])
    data["images"] = images_from(data["images"])
    data["error_message"] = Message.read(data["error_message"])
    data["tasks"] = tuple(sorted((task_from(t) for t in tasks), key=lambda t: t.number))
    return Job(reply=reply, **data)
