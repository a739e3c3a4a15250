"""The long SQL the SQLite store sends, named after what it does, and how a row of `jobs` becomes a `Job`.

ADMIT and the member's counts take `:name` parameters (they repeat), CLAIM takes `?` ones (the owner, the cap).
The short conditional UPDATEs of the other edges stay in `sqlite.py`, next to their parameters.
"""

from __future__ import annotations

from fluxbot.jobs.lifecycle import AT_PROVIDER, FINISHED_STATUSES, LIFECYCLE, OPEN_STATUSES, Job, Transition
from fluxbot.storage.schema import job_from_row
from fluxbot.storage.sqlite_budgets import server_images_since
from fluxbot.storage.sqlite_engine import Row, sql_states

OPEN = sql_states(OPEN_STATUSES)
FINISHED = sql_states(FINISHED_STATUSES)

# A member's open jobs, last command and images since a moment (failed jobs make none): what the limits count.
# ADMIT checks them in its INSERT and `usage` reports them, from these same subqueries.
MEMBER_OPEN_JOBS = f"SELECT COUNT(*) FROM jobs WHERE user_id = :user AND status IN {OPEN}"  # noqa: S608
# A result shown again (/job) is a command too: the cooldown counts it.
MEMBER_LAST_COMMAND = """SELECT MAX(at) FROM (SELECT MAX(created_at) AS at FROM jobs WHERE user_id = :user
                         UNION ALL SELECT at FROM shown_again WHERE user_id = :user)"""
MEMBER_IMAGES_SINCE = (
    "SELECT COALESCE(SUM(count), 0) FROM jobs WHERE user_id = :user AND created_at >= :since AND status != 'failed'"
)
USAGE = f"SELECT ({MEMBER_OPEN_JOBS}), ({MEMBER_LAST_COMMAND}), ({MEMBER_IMAGES_SINCE})"
#: USAGE and the server's images today and this month.
USAGE_WITH_BUDGET = f"{USAGE}, ({server_images_since('since')}), ({server_images_since('month')})"

ADMIT = f"""INSERT INTO jobs (status, action, provider, model, prompt, size, count, image_url, user_id,
        guild_id, channel_id, application_id, interaction_token, message_id, created_at,
        upload_limit, expects_callback, options, owner, budget_guild, style, locale, member_locale)
    SELECT :status, :action, :provider, :model, :prompt, :size, :count, :image_url, :user, :guild,
           :channel, :application, :token, :message, :created, :upload_limit, :expects_callback, :options,
           :owner, :budget_guild, :style, :locale, :member_locale
    WHERE ({MEMBER_OPEN_JOBS}) < :member_jobs
      AND (:cooldown = 0 OR COALESCE(({MEMBER_LAST_COMMAND}), 0) <= :created - :cooldown)
      AND (:daily = 0 OR ({MEMBER_IMAGES_SINCE}) + :count <= :daily)
      AND (:budget_daily = 0 OR ({server_images_since("since")}) + :count <= :budget_daily)
      AND (:budget_monthly = 0 OR ({server_images_since("month")}) + :count <= :budget_monthly)
    RETURNING *"""

#: ? this run, ? the cap. "delivered_at IS NULL" is always true for these states; it lets SQLite use the
#: jobs_open index instead of scanning the whole history.
CLAIM = f"""UPDATE jobs SET status = 'pending', owner = ?
    WHERE id = (SELECT id FROM jobs WHERE status = 'queued' AND message_id IS NOT NULL
                AND delivered_at IS NULL ORDER BY id LIMIT 1)
      AND status IN {sql_states(LIFECYCLE[Transition.CLAIM].sources)}
      AND (SELECT COUNT(*) FROM jobs WHERE status IN {sql_states(AT_PROVIDER)} AND delivered_at IS NULL) < ?
    RETURNING *"""  # noqa: S608


def job(row: Row) -> Job:
    """The Job a row of `jobs` holds."""
    return job_from_row(dict(row))
