"""The SQL the PostgreSQL store sends, named after what it does, and how a row of `jobs` becomes a `Job`.

Parameters are PostgreSQL's $1, $2 ... except in ADMIT and the member's counts, which are written with
`:name` placeholders (`postgres_engine.named`) because they repeat. Casts are explicit where PostgreSQL
could not infer a parameter's type (INSERT ... SELECT, COALESCE).
"""

from __future__ import annotations

from fluxbot.jobs.lifecycle import (
    AT_PROVIDER,
    FINISHED_STATUSES,
    LIFECYCLE,
    OPEN_STATUSES,
    Job,
    Transition,
)
from fluxbot.storage.postgres_budgets import server_images_since
from fluxbot.storage.postgres_engine import Record
from fluxbot.storage.schema import job_from_row
from fluxbot.storage.sqlite_engine import sql_states

OPEN = sql_states(OPEN_STATUSES)
FINISHED = sql_states(FINISHED_STATUSES)

# A member's open jobs, last command and images since a moment (failed jobs make none): what the limits count.
# ADMIT checks them and `usage` reports them, from these same subqueries.
MEMBER_OPEN_JOBS = f"SELECT COUNT(*) FROM jobs WHERE user_id = :user::bigint AND status IN {OPEN}"  # noqa: S608
# A result shown again (/job) is a command too: the cooldown counts it.
MEMBER_LAST_COMMAND = """SELECT MAX(at) FROM (SELECT MAX(created_at) AS at FROM jobs WHERE user_id = :user::bigint
                         UNION ALL SELECT at FROM shown_again WHERE user_id = :user::bigint) AS commands"""
MEMBER_IMAGES_SINCE = """SELECT COALESCE(SUM(count), 0) FROM jobs
    WHERE user_id = :user::bigint AND created_at >= :since::double precision AND status <> 'failed'"""
USAGE = f"SELECT ({MEMBER_OPEN_JOBS}), ({MEMBER_LAST_COMMAND}), ({MEMBER_IMAGES_SINCE})"
#: USAGE and the server's images today and this month.
USAGE_WITH_BUDGET = f"{USAGE}, ({server_images_since('since')}), ({server_images_since('month')})"

ADMIT = f"""INSERT INTO jobs (status, action, provider, model, prompt, size, count, image_url, user_id, guild_id,
        channel_id, application_id, interaction_token, message_id, created_at, upload_limit, expects_callback,
        options, owner, budget_guild, style, locale, member_locale)
    SELECT 'queued', :action::text, :provider::text, :model::text, :prompt::text, :size::text, :count::bigint,
           :image_url::text, :user::bigint, :guild::bigint, :channel::bigint, :application::bigint, :token::text,
           :message::bigint, :created::double precision, :upload_limit::bigint, :expects_callback::bigint,
           :options::text, :owner::text, :budget_guild::bigint, :style::text, :locale::text, :member_locale::text
    WHERE ({MEMBER_OPEN_JOBS}) < :member_jobs::bigint
      AND (:cooldown::bigint = 0
           OR COALESCE(({MEMBER_LAST_COMMAND}), 0) <= :created::double precision - :cooldown::bigint)
      AND (:daily::bigint = 0 OR ({MEMBER_IMAGES_SINCE}) + :count::bigint <= :daily::bigint)
      AND (:budget_daily::bigint = 0
           OR ({server_images_since("since")}) + :count::bigint <= :budget_daily::bigint)
      AND (:budget_monthly::bigint = 0
           OR ({server_images_since("month")}) + :count::bigint <= :budget_monthly::bigint)
    RETURNING *"""

#: $1 the owner, $2 the cap. Run after the claim lock: the count then includes every claim committed before.
CLAIM = f"""UPDATE jobs SET status = 'pending', owner = $1
    WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND message_id IS NOT NULL AND delivered_at IS NULL
                ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
      AND status IN {sql_states(LIFECYCLE[Transition.CLAIM].sources)}
      AND (SELECT COUNT(*) FROM jobs WHERE status IN {sql_states(AT_PROVIDER)} AND delivered_at IS NULL) < $2
    RETURNING *"""  # noqa: S608


def finish(transition: Transition) -> str:
    """$1-$6 the outcome and its time, $7 this run, $8 the job: a finish needs the owner, a cancel does not."""
    owned = "" if transition is Transition.CANCEL else "AND owner = $7"
    return f"""UPDATE jobs SET status = $1, images = $2, inference_seconds = $3, error_kind = $4,
            error_message = $5, finished_at = $6, owner = $7
        WHERE id = $8 AND status IN {sql_states(LIFECYCLE[transition].sources)} {owned} RETURNING id"""  # noqa: S608


# The interaction token is useless once the outcome is shown, and so are the kept images: neither is kept.
MARK_DELIVERED = f"""WITH done AS (
        UPDATE jobs SET delivered_at = $1, delivered_via = $2, interaction_token = ''
        WHERE id = $3 AND delivered_at IS NULL AND status IN {sql_states(LIFECYCLE[Transition.DELIVER].sources)}
          AND owner = $4 RETURNING id
    ), gone AS (DELETE FROM kept_images WHERE job_id IN (SELECT id FROM done))
    SELECT id FROM done"""  # noqa: S608

SAVE_GUILD_SETTINGS = """INSERT INTO guild_settings (guild_id, settings) VALUES ($1, $2)
    ON CONFLICT (guild_id) DO UPDATE SET settings = excluded.settings"""

RECORD_SHOW_AGAIN = """INSERT INTO shown_again (user_id, at) VALUES ($1, $2)
    ON CONFLICT (user_id) DO UPDATE SET at = excluded.at"""


def job(row: Record) -> Job:
    """The Job a row of `jobs` holds."""
    return job_from_row(dict(row))
