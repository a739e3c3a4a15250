"""The job core: a job's life from command to delivered reply, in small parts behind one facade (`Jobs`).

- `lifecycle`: the states, the table of allowed transitions and the domain types;
- `requests`: what a member may ask for (prompts, models, sizes, options, images);
- `service`: the facade the cogs call, admission, and the background loop;
- `dispatch`: claim and submit; `tracker`: follow tasks (lookups, callbacks, timeouts);
- `finishing`: the one way into a final state; `replies` and `cards`: showing progress and outcomes;
- `durations`: how long jobs usually take; `persist`: writes retried until the database takes them.
"""

from __future__ import annotations

from fluxbot.jobs.lifecycle import CallbackOutcome, EditImage, FailureKind, Job, JobStatus, Outcome, Reply
from fluxbot.jobs.requests import AttachmentInfo, InvalidRequest
from fluxbot.jobs.service import NO_LIMITS, Jobs

__all__ = [
    "NO_LIMITS",
    "AttachmentInfo",
    "CallbackOutcome",
    "EditImage",
    "FailureKind",
    "InvalidRequest",
    "Job",
    "JobStatus",
    "Jobs",
    "Outcome",
    "Reply",
]
