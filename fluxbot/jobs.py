"""The job service: validate → persist → submit → track → finalize once → deliver; resumes after restarts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from fluxbot import catalog
from fluxbot.delivery import DeliveryError
from fluxbot.limits import Limits, Refused, refusal
from fluxbot.metrics import METRICS
from fluxbot.providers.base import (
    Action,
    Image,
    JobRequest,
    OptionValue,
    Provider,
    ProviderError,
    TaskState,
    TaskStatus,
)
from fluxbot.store import EditImage, Job, JobStatus, Reply, Store

log = logging.getLogger(__name__)

PROMPT_MAX_CHARS = 1500
MAX_COUNT = 4
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
#: Queued cards up to this place in line show a new place at once; the others at the usual card cadence.
QUEUE_LIVE_PLACES = 10
#: At most this many queued cards are edited per tracker round.
QUEUE_CARD_EDITS_PER_ROUND = 25
#: Past JOB_TIMEOUT_SECONDS, how long a job whose lookups keep failing waits for one answer before timing out.
TIMEOUT_GRACE_SECONDS = 300.0
EDITABLE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WebP"}
_EXTENSION_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}

PROVIDER_SWITCHED = (
    "The bot now uses another image provider and has no key for the one that had this job, so it cannot be "
    "followed any more. Please run the command again."
)
#: For callers that apply no member limits (tests, tools).
NO_LIMITS = Limits(member_jobs=1_000_000)
CANCELLED = "A moderator cancelled this job before it started. Nothing was made or charged."
RESTARTED_BEFORE_SUBMIT = (
    "The bot restarted before this job reached the image provider, so no image was made. Please run the command again."
)
RESTARTED_DURING_SUBMIT = (
    "The bot restarted while it was sending this job to the image provider, before the provider confirmed it, so the "
    "bot cannot follow it. If an image was made, it cannot be shown here. Please run the command again."
)
UNEXPECTED_ERROR = "Something went wrong inside the bot while starting this job. Please try again."


class CallbackOutcome(StrEnum):
    """What a provider callback changed."""

    ACCEPTED = "accepted"  # a running job of ours: it is looked up at once
    UNKNOWN = "unknown"  # not a task of ours
    FINISHED = "finished"  # already finished (a duplicate or late callback)


class InvalidRequest(ValueError):
    """The member's input cannot make a job; the message says what is valid."""


class Replier(Protocol):
    """Shows jobs to members (implemented by `delivery.Delivery`)."""

    async def show_progress(self, job: Job, *, now: float, position: int | None = None) -> None:
        """Edit the job's reply into its progress card (with its place in line while queued)."""
        ...

    async def show_outcome(self, job: Job) -> str:
        """Edit the job's reply into its outcome and return how it was delivered."""
        ...


@dataclass(frozen=True)
class AttachmentInfo:
    """The parts of a Discord attachment an edit job needs."""

    url: str
    filename: str
    content_type: str | None
    size: int
    width: int | None = None
    height: int | None = None


def check_prompt(prompt: str) -> str:
    """The stripped prompt, or InvalidRequest when it is empty or too long."""
    text = prompt.strip()
    if not text:
        raise InvalidRequest("The prompt is empty. Describe the image you want, e.g. `a white siamese cat`.")
    if len(text) > PROMPT_MAX_CHARS:
        raise InvalidRequest(
            f"The prompt is {len(text):,} characters long; the limit is {PROMPT_MAX_CHARS:,}. Shorten it and try again."
        )
    return text


def check_options(options: Mapping[str, OptionValue | None], action: str) -> dict[str, OptionValue]:
    """The options asked for (None = not asked), checked against the active provider's; raises InvalidRequest."""
    provider = catalog.active()
    offered = {option.name: option for option in provider.options}
    chosen = {name: value for name, value in options.items() if value is not None}
    for name, value in chosen.items():
        option = offered.get(name)
        if option is None:
            raise InvalidRequest(
                f"`{name}` is not available with this bot's image provider ({provider.label}). "
                "Leave it out and try again."
            )
        if option.choices and value not in option.choices:
            allowed = " or ".join(option.choices)
            raise InvalidRequest(f"`{name}` must be {allowed}, not `{str(value)[:20]}`.")
        limits = option.range_for(action)
        if limits is not None and isinstance(value, int) and not limits[0] <= value <= limits[1]:
            what = "an edit" if action == "edit" else "a new image"
            raise InvalidRequest(f"`{name}` must be from {limits[0]} to {limits[1]} for {what}.")
    return chosen


def prepare_imagine(
    prompt: str, model: str, size: str | None, count: int, options: Mapping[str, OptionValue | None] | None = None
) -> JobRequest:
    """Check an /imagine request and return what to submit; raises InvalidRequest."""
    text = check_prompt(prompt)
    flux_model = _model(model)
    most = min(MAX_COUNT, catalog.active().max_count)
    if not 1 <= count <= most:
        raise InvalidRequest(f"`count` must be between 1 and {most} with this bot's provider; you asked for {count}.")
    chosen = check_options(options or {}, "generate")
    return JobRequest("generate", text, flux_model.name, _size(flux_model, size), count=count, options=chosen)


def prepare_edit(
    prompt: str,
    model: str,
    size: str | None,
    image: AttachmentInfo,
    options: Mapping[str, OptionValue | None] | None = None,
) -> JobRequest:
    """Check an /edit request and return what to submit; raises InvalidRequest."""
    text = check_prompt(prompt)
    flux_model = _model(model)
    chosen_options = check_options(options or {}, "edit")
    if not flux_model.can_edit:
        names = ", ".join(f"`{m.name}`" for m in catalog.edit_models())
        raise InvalidRequest(f"`{flux_model.name}` cannot edit images. Pick one of {names}.")
    content_type = attachment_type(image)
    if content_type not in EDITABLE_TYPES:
        kinds = ", ".join(EDITABLE_TYPES.values())
        if content_type.startswith("image/"):
            raise InvalidRequest(f"`{image.filename}` is {content_type}; Flux can edit {kinds} images only.")
        shown = content_type or "an unknown type"
        raise InvalidRequest(f"`{image.filename}` is {shown}, not an image. Attach a {kinds} image.")
    if image.size > MAX_ATTACHMENT_BYTES:
        raise InvalidRequest(
            f"`{image.filename}` is {image.size / 1048576:.1f} MB; the limit is "
            f"{MAX_ATTACHMENT_BYTES // 1048576} MB. Attach a smaller image."
        )
    if (size is None or not size.strip()) and catalog.active().keeps_ratio_on_edit:
        chosen = catalog.KEEP_RATIO
    elif size is None or not size.strip():
        chosen = catalog.closest_ratio(image.width or 1, image.height or 1, flux_model.size_rule.suggestions)
    else:
        chosen = _size(flux_model, size)
    return JobRequest("edit", text, flux_model.name, chosen, count=1, image_url=image.url, options=chosen_options)


def check_reroll(job: Job) -> None:
    """Refuse to re-run a job made with a provider new jobs no longer go to (its model or options may not exist)."""
    active = catalog.active()
    if job.provider != active.name:
        maker = catalog.PROVIDERS[job.provider].label if job.provider in catalog.PROVIDERS else job.provider
        raise InvalidRequest(
            f"This job was made with {maker}, but new jobs now go to {active.label}, so it cannot be re-rolled "
            "as it was. Please run `/imagine` again."
        )


def reroll_request(job: Job) -> JobRequest:
    """The request that made `job`, to run again."""
    action: Action = "edit" if job.action == "edit" else "generate"
    return JobRequest(
        action, job.prompt, job.model, job.size, count=job.count, image_url=job.image_url, options=dict(job.options)
    )


def edit_request(prompt: str, image: EditImage, model: str = catalog.DEFAULT_EDIT_MODEL) -> JobRequest:
    """A Kontext edit of an image the bot took from a result or a Discord message (never from typed text)."""
    ratio = catalog.fit_ratio(image.ratio, _model(model))
    return JobRequest("edit", check_prompt(prompt), model, ratio, image_url=image.url)


def result_images(job: Job, uploaded: dict[str, str]) -> list[EditImage]:
    """A finished job's images for editing: the copy uploaded to Discord when there is one, else the original.

    `uploaded` maps attachment file names on the result message (`flux-<job>-<n>.<ext>`) to their URLs.
    """
    ratio = job.size if ":" in job.size else _ratio_of(job.size)
    images = []
    for number, image in enumerate(job.images, start=1):
        copy = next((url for name, url in uploaded.items() if name.startswith(f"flux-{job.id}-{number}.")), None)
        images.append(EditImage(copy or image.url, ratio))
    return images


def attachment_type(attachment: AttachmentInfo) -> str:
    """An attachment's media type as Discord gives it, else as its file name's extension suggests."""
    given = (attachment.content_type or "").split(";")[0].strip().lower()
    return given or _EXTENSION_TYPES.get(PurePosixPath(attachment.filename).suffix.lower(), "")


def message_images(
    attachments: Sequence[AttachmentInfo], embedded: Sequence[tuple[str, int | None, int | None]], *, now: float
) -> list[EditImage]:
    """The images of a Discord message that can be edited: its image attachments, else its embed images.

    Embeds are only used without attachments: on the bot's own results they show the same attachments again.
    """
    images = []
    for attachment in attachments:
        if attachment_type(attachment) in EDITABLE_TYPES and attachment.size <= MAX_ATTACHMENT_BYTES:
            images.append(
                EditImage(attachment.url, catalog.closest_ratio(attachment.width or 1, attachment.height or 1))
            )
    if not images:
        for url, width, height in embedded:
            if url.startswith(("https://", "http://")):
                images.append(EditImage(url, catalog.closest_ratio(width or 1, height or 1)))
    return [i for i in images if not url_expired(i.url, now=now)][:MAX_COUNT]


def url_expired(url: str, *, now: float) -> bool:
    """True for a signed Discord media URL whose `ex` (hex unix time) has passed; other URLs are not judged."""
    query = parse_qs(urlsplit(url).query)
    expiry = (query.get("ex") or [""])[0]
    try:
        return int(expiry, 16) < now
    except ValueError:
        return False


def may_delete(job: Job, user_id: int, *, manage_messages: bool) -> bool:
    """Only the member who asked, or someone who may manage messages, deletes a result."""
    return job.user_id == user_id or manage_messages


def _ratio_of(size: str) -> str:
    width, _, height = size.partition("x")
    return catalog.closest_ratio(int(width), int(height)) if width.isdigit() and height.isdigit() else "1:1"


def _model(name: str) -> catalog.Model:
    try:
        return catalog.get_model(name)
    except KeyError:
        names = ", ".join(f"`{n}`" for n in catalog.model_names())
        raise InvalidRequest(f"`{name[:40]}` is not a model this bot knows. Pick one of {names}.") from None


def _size(model: catalog.Model, size: str | None) -> str:
    if size is None or not size.strip():
        return model.default_size
    try:
        return model.size_rule.normalize(size)
    except catalog.InvalidSize as exc:
        raise InvalidRequest(f"{exc} (model `{model.name}`)") from None


@dataclass
class _Retry:
    attempts: int = 0
    not_before: float = 0.0


class JobService:
    """Runs jobs from command to delivered reply, and keeps them running across restarts."""

    #: How often a running job's card shows the new elapsed time.
    card_refresh_seconds: float = 15.0
    #: Pauses before resending a submit that surely did not start a job (429, connection refused).
    submit_retry_delays: tuple[float, ...] = (1.0, 3.0)
    #: How many provider lookups may run at once.
    lookup_concurrency: int = 4
    #: How many reply edits the tracker makes at once.
    discord_concurrency: int = 5
    #: How many times a delivery that failed for now is tried again (with back-off up to 5 minutes: ~1.5 h).
    delivery_attempts: int = 20
    #: How often jobs that expect a provider callback are polled anyway (the safety net).
    callback_poll_interval: float = 30.0
    #: A progress edit slower than this is abandoned (discord.py retries 5xx for ~25 s) so polling goes on.
    progress_edit_timeout: float = 10.0

    def __init__(
        self,
        store: Store,
        provider: Provider,
        replier: Replier,
        *,
        poll_interval: float,
        job_timeout: float,
        max_in_flight: int = 20,
        other_providers: Mapping[str, Provider] | None = None,
        callback_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.provider = provider
        self.replier = replier
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self._clock = clock
        self._callback_url = callback_url
        self.max_in_flight = max_in_flight
        #: Every provider with a key, by name: jobs finish on the provider that started them.
        self.providers: dict[str, Provider] = {**(other_providers or {}), provider.name: provider}
        self._hinted: set[str] = set()
        self._last_polled: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._card_shown: dict[int, float] = {}
        self._delivery_retry: dict[int, _Retry] = {}
        self._reply_locks: dict[int, asyncio.Lock] = {}
        self._last_lookup_error: ProviderError | None = None
        self._lookup_retry = _Retry()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._starting: set[asyncio.Task[Any]] = set()
        self._shown_place: dict[int, int] = {}
        self._launching: set[asyncio.Task[Any]] = set()
        #: When the tracker last finished a round (for /healthz).
        self.last_round = clock()

    # -- commands --------------------------------------------------------------------------------

    async def start(self, request: JobRequest, reply: Reply, limits: Limits = NO_LIMITS) -> Job:
        """Admit a job and launch it on `reply` at once (its message id must be known); raises Refused."""
        job = await self.admit(request, reply, limits)
        assert reply.message_id is not None
        return await self.launch(job, reply.message_id)

    async def admit(self, request: JobRequest, reply: Reply, limits: Limits) -> Job:
        """Queue a job if the member's limits allow it; Refused says why not (before anything is answered)."""
        now = self._clock()
        job = await self.store.admit(
            self.provider.name, request, reply, limits=limits, expects_callback=bool(self._callback_url), now=now
        )
        if job is None:
            usage = await self.store.usage(reply.user_id, now=now)
            reason = refusal(usage, limits, images=request.count, now=now)
            raise Refused(reason or "You cannot start another job right now. Please try again in a moment.")
        log.info("job %d: %s with %s, size %s, count %d", job.id, job.action, job.model, job.size, job.count)
        return job

    async def launch(self, job: Job, message_id: int) -> Job:
        """The job's reply exists now: submit it if the provider has a free slot, else show its place in line."""
        task = asyncio.current_task()
        assert task is not None
        self._launching.add(task)
        try:
            await self.store.set_message(job.id, message_id)
            await self.dispatch()
            job = await self._current(job)
            if job.status is JobStatus.QUEUED:
                await self._show_progress(job)
            return job
        finally:
            self._launching.discard(task)

    async def abandon(self, job: Job, reason: str) -> None:
        """Close a queued job that has no reply to show anything on."""
        log.warning("job %d: abandoned before it started: %s", job.id, reason)
        await self._finish(job, JobStatus.FAILED, error=("abandoned", reason), only_queued=True, deliver=False)
        await self.store.mark_delivered(job.id, "none")

    async def dispatch(self) -> None:
        """Submit queued jobs, oldest first, while fewer than `max_in_flight` are at the provider; wait for them."""
        started = []
        while (job := await self.store.claim_next(self.max_in_flight)) is not None:
            self._shown_place.pop(job.id, None)
            # Each submit is its own task, started at once (slots freed together fill together), and shielded:
            # stopping the tracker must not cut a submit off halfway (it may bill).
            submit = asyncio.create_task(self._submit_claimed(job), name=f"fluxbot-submit-{job.id}")
            self._starting.add(submit)
            submit.add_done_callback(self._starting.discard)
            started.append(submit)
        if started:
            await asyncio.shield(asyncio.gather(*started))

    async def show_again(self, job: Job, reply: Reply) -> bool:
        """Show a finished job's result once more, in a new reply (for /job); False when it could not be shown."""
        now = self._clock()
        took = (job.finished_at or job.created_at) - job.created_at
        # The new reply's token is fresh: the copy starts now (and keeps how long the job took).
        # It is a new reply: whether the member deleted the first one does not matter to it.
        again = replace(job, **asdict(reply), created_at=now, finished_at=now + took, deleted_at=None)
        try:
            await self.replier.show_outcome(again)
        except DeliveryError as exc:
            log.warning("job %d: could not show it again (%s)", job.id, exc)
            return False
        return True

    async def drain(self, within: float) -> None:
        """Wait (up to `within` seconds) for jobs that are being submitted right now, e.g. before shutdown."""
        if self._starting:
            log.info("waiting for %d job(s) being submitted", len(self._starting))
        pending = self._starting | self._launching
        if pending:
            await asyncio.wait(pending, timeout=within)

    async def _submit_claimed(self, job: Job) -> None:
        if job.provider not in self.providers:
            await self._finish(job, JobStatus.FAILED, error=("provider_switched", PROVIDER_SWITCHED))
            return
        request = replace(reroll_request(job), callback_url=self._callback_url if job.expects_callback else None)
        try:
            task_id = await self._submit(job, request)
        except ProviderError as exc:
            self._log_provider_error(job, exc, "submit")
            await self._finish(job, JobStatus.FAILED, error=(exc.kind.value, exc.user_message))
            return
        except Exception:
            log.exception("job %d: unexpected error while submitting", job.id)
            await self._finish(job, JobStatus.FAILED, error=("internal", UNEXPECTED_ERROR))
            return
        await self.store.mark_submitted(job.id, task_id, now=self._clock())
        METRICS.jobs_submitted.inc(job.provider, job.model)
        log.info("job %d: submitted as task %s", job.id, task_id)
        await self._show_progress(job)

    async def _submit(self, job: Job, request: JobRequest) -> str:
        delays = list(self.submit_retry_delays)
        while True:
            try:
                METRICS.provider_calls.inc(job.provider, "submit")
                return await self.providers[job.provider].submit(request)
            except ProviderError as exc:
                METRICS.provider_errors.inc(job.provider, "submit", exc.code or exc.kind.value)
                # Only a request that surely started nothing is sent again: a resend could bill twice.
                if not exc.safe_to_resend or not delays:
                    raise
                delay = delays.pop(0) * random.uniform(0.8, 1.2)
                log.warning("job %d: submit refused (%s), retrying in %.1f s", job.id, exc.kind, delay)
                await asyncio.sleep(delay)

    # -- start-up --------------------------------------------------------------------------------

    async def resume(self) -> None:
        """Close jobs that never reached the provider; submitted and undelivered ones are picked up by `tick`."""
        stranded = await self.store.jobs_with_status(JobStatus.PENDING)
        for job in stranded:
            # The provider may have received (and billed) the submit; without its task id there is nothing to follow.
            log.warning("job %d: the bot stopped while its submit was under way; closing it unfollowed", job.id)
            await self.store.finish(
                job.id,
                JobStatus.FAILED,
                error_kind="restarted",
                error_message=RESTARTED_DURING_SUBMIT,
                now=self._clock(),
            )
        for job in await self.store.jobs_with_status(JobStatus.QUEUED):
            if job.message_id is None:  # the bot stopped before it could even answer the command: nothing to show
                await self._finish(
                    job, JobStatus.FAILED, error=("restarted", RESTARTED_BEFORE_SUBMIT), only_queued=True, deliver=False
                )
                await self.store.mark_delivered(job.id, "none")
        counts = await self.store.count_undelivered()
        finished = sum(counts[s.value] for s in JobStatus if s.finished)
        log.info(
            "resuming: %d submitted job(s) to follow, %d finished job(s) to deliver", counts["submitted"], finished
        )

    # -- tracking --------------------------------------------------------------------------------

    def start_tracker(self) -> None:
        """Run `tick` every poll interval in one background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fluxbot-tracker")

    async def stop_tracker(self, within: float = 5.0) -> None:
        """Let the round under way finish (up to `within` seconds, so a delivery is not cut off), then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), within)
        except TimeoutError:
            log.warning("the tracker round took over %.0f s at shutdown; stopping it there", within)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    def stopping(self) -> bool:
        """True once `stop_tracker` was called: the round under way is the last one."""
        return self._stopping

    def tracker_alive(self) -> bool:
        """True while the tracker runs and has finished a round recently."""
        recent = max(60.0, 5 * self.poll_interval)
        running = self._task is not None and not self._task.done()
        return running and self._clock() - self.last_round < recent

    async def _run(self) -> None:
        while not self.stopping():
            try:
                self.last_round = self._clock()  # alive while rounds start, however long one takes
                await self.tick()
                self.last_round = self._clock()
            except Exception:
                log.exception("tracker tick failed; trying again next interval")
            if self.stopping():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            self._wake.clear()

    async def hint(self, task_id: str) -> CallbackOutcome:
        """A provider says `task_id` finished: look it up at once (the callback itself is not trusted)."""
        job = await self.store.job_for_task(self.provider.name, task_id)
        if job is None:
            return CallbackOutcome.UNKNOWN
        if job.status.finished:
            return CallbackOutcome.FINISHED
        self._hinted.add(task_id)
        self._wake.set()
        return CallbackOutcome.ACCEPTED

    async def tick(self) -> None:
        """One round: deliver finished jobs, start queued ones, look up submitted ones, time out, refresh cards."""
        await self._deliver_due()
        await self.dispatch()
        await self._refresh_queue_cards()
        submitted = await self.store.jobs_with_status(JobStatus.SUBMITTED)
        if not submitted:
            return
        now = self._clock()
        due = [job for job in submitted if self._lookup_due(job, now)]
        hinted = {job.task_id for job in due if job.task_id in self._hinted}
        statuses, looked_at = await self._lookup_all(due)
        # Only hints that this lookup answered; one that arrived meanwhile waits for the next round.
        self._hinted -= hinted & looked_at
        ending: list[Coroutine[Any, Any, object]] = []
        refreshes: list[Coroutine[Any, Any, None]] = []
        for job in submitted:
            status = statuses.get(job.task_id or "")
            if job.provider not in self.providers:
                ending.append(self._finish(job, JobStatus.FAILED, error=("provider_switched", PROVIDER_SWITCHED)))
            elif status is not None and status.state is not TaskState.RUNNING:
                ending.append(self._finish_from_status(job, status))
            elif self._past_deadline(job, now, looked_at):
                ending.append(self._time_out(job))
            elif now - self._card_shown.get(job.id, job.submitted_at or 0.0) >= self.card_refresh_seconds:
                refreshes.append(self._show_progress(job))
        await self._bounded([*ending, *refreshes])
        if ending:
            await self.dispatch()  # slots were freed

    async def _refresh_queue_cards(self) -> None:
        """Queued cards near the front show a new place in line at once; the others at the usual cadence.

        At most QUEUE_CARD_EDITS_PER_ROUND edits a round, the front of the line first, then the cards shown longest
        ago: a long line moving by one must not turn into an edit of every card at every round.
        """
        now = self._clock()
        # The line, oldest first; a job whose command was not answered yet has no card and no place.
        waiting = [job for job in await self.store.jobs_with_status(JobStatus.QUEUED) if job.message_id is not None]
        places = {job.id: place for place, job in enumerate(waiting, start=1)}
        moved = [
            j for j in waiting if places[j.id] <= QUEUE_LIVE_PLACES and self._shown_place.get(j.id) != places[j.id]
        ]
        moved_ids = {j.id for j in moved}
        every = self.card_refresh_seconds
        stale = [
            j for j in waiting if j.id not in moved_ids and now - self._card_shown.get(j.id, j.created_at) >= every
        ]
        stale.sort(key=lambda j: self._card_shown.get(j.id, j.created_at))
        due = [*moved, *stale][:QUEUE_CARD_EDITS_PER_ROUND]
        await self._bounded([self._show_progress(job, place=places[job.id]) for job in due])

    async def cancel_queued(self, guild_id: int, user_id: int) -> int:
        """Cancel a member's jobs that are still waiting in the queue; returns how many."""
        cancelled = 0
        for job in await self.store.queued_jobs_of(guild_id, user_id):
            cancelled += await self._finish(job, JobStatus.FAILED, error=("cancelled", CANCELLED), only_queued=True)
        return cancelled

    def _lookup_due(self, job: Job, now: float) -> bool:
        """Poll every round, except jobs that expect a callback: those when hinted, now and then, and at the end."""
        started = job.submitted_at or job.created_at
        if not (job.expects_callback and self._callback_url) or job.task_id in self._hinted:
            return True
        if now - started > self.job_timeout:
            return True  # one last look before timing it out
        return now - self._last_polled.get(job.id, started) >= self.callback_poll_interval

    def _past_deadline(self, job: Job, now: float, looked_at: set[str]) -> bool:
        """Past the timeout, and this round's lookup saw the job still running (or lookups cannot help any more).

        A job is not timed out while lookups are failing or backing off: it may have finished meanwhile.
        """
        age = now - (job.submitted_at or job.created_at)
        if age <= self.job_timeout:
            return False
        cause = self._last_lookup_error
        return (
            job.task_id in looked_at
            or age > self.job_timeout + TIMEOUT_GRACE_SECONDS
            or (cause is not None and cause.kind.operator_problem)
        )

    async def _bounded(self, work: Sequence[Coroutine[Any, Any, object]]) -> None:
        """Run Discord-facing work a few at a time, so one slow edit does not hold up the rest."""
        gate = asyncio.Semaphore(self.discord_concurrency)

        async def one(coroutine: Coroutine[Any, Any, object]) -> None:
            async with gate:
                try:
                    await coroutine
                except Exception:
                    log.exception("tracker work failed")

        await asyncio.gather(*(one(c) for c in work))

    async def _time_out(self, job: Job) -> None:
        seconds = self.job_timeout
        limit = f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"
        log.warning("job %d: task %s timed out after %s", job.id, job.task_id, limit)
        message = (
            f"The image provider did not finish this job within {limit}, so the bot stopped waiting. "
            "Please try again; if it keeps happening the provider may be overloaded."
        )
        cause = self._last_lookup_error
        if cause is not None and cause.kind.operator_problem:
            message = f"The bot could not check on this job: {cause.user_message}"
        await self._finish(job, JobStatus.TIMED_OUT, error=("timed_out", message))

    async def _lookup_all(self, jobs: Sequence[Job]) -> tuple[dict[str, TaskStatus], set[str]]:
        """Statuses of the jobs' tasks, batched, and the task ids whose lookup was made and answered."""
        now = self._clock()
        if now < self._lookup_retry.not_before or not jobs:
            return {}, set()
        chunks: list[tuple[Provider, list[str]]] = []
        for name, provider in self.providers.items():
            ids = [j.task_id for j in jobs if j.task_id and j.provider == name]
            size = provider.max_batch
            chunks += [(provider, ids[i : i + size]) for i in range(0, len(ids), size)]
        gate = asyncio.Semaphore(self.lookup_concurrency)

        async def one(provider: Provider, chunk: list[str]) -> dict[str, TaskStatus]:
            async with gate:
                METRICS.provider_calls.inc(provider.name, "lookup")
                try:
                    return dict(await provider.lookup(chunk))
                except ProviderError as exc:
                    METRICS.provider_errors.inc(provider.name, "lookup", exc.code or exc.kind.value)
                    raise

        for job in jobs:
            self._last_polled[job.id] = now
        results = await asyncio.gather(*(one(p, c) for p, c in chunks), return_exceptions=True)
        statuses: dict[str, TaskStatus] = {}
        looked_at: set[str] = set()
        failure: ProviderError | None = None
        for (_, chunk), result in zip(chunks, results, strict=True):
            if isinstance(result, ProviderError):
                failure = result
            elif isinstance(result, BaseException):
                log.error("lookup failed unexpectedly", exc_info=result)
            else:
                statuses.update(result)
                looked_at.update(chunk)
        self._last_lookup_error = failure
        if failure is None:
            self._lookup_retry = _Retry()
        else:
            attempts = self._lookup_retry.attempts + 1
            pause = min(60.0, self.poll_interval * 2 ** (attempts - 1))
            self._lookup_retry = _Retry(attempts, now + pause)
            log.warning("task lookup failed (%s); next lookup in %.0f s", failure, pause)
            if failure.kind.operator_problem:
                log.error("operator action needed: %s", failure.user_message)
        return statuses, looked_at

    async def _finish_from_status(self, job: Job, status: TaskStatus) -> None:
        if status.state is TaskState.SUCCEEDED:
            log.info("job %d: task %s succeeded with %d image(s)", job.id, job.task_id, len(status.images))
            await self._finish(job, JobStatus.SUCCEEDED, images=status.images, inference=status.inference_seconds)
        else:
            error = status.error
            if error is not None:
                self._log_provider_error(job, error, "task")
            message = error.user_message if error else "The image provider reported the job as failed."
            await self._finish(job, JobStatus.FAILED, error=(error.kind.value if error else "failed", message))

    async def _finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        images: Sequence[Image] = (),
        inference: float | None = None,
        error: tuple[str, str] | None = None,
        only_queued: bool = False,
        deliver: bool = True,
    ) -> bool:
        """Give the job its outcome and show it; True when this call finished it (see `Store.finish`)."""
        won = await self.store.finish(
            job.id,
            status,
            images=images,
            inference_seconds=inference,
            error_kind=error[0] if error else None,
            error_message=error[1] if error else None,
            only_queued=only_queued,
            now=self._clock(),
        )
        self._card_shown.pop(job.id, None)
        self._shown_place.pop(job.id, None)
        self._last_polled.pop(job.id, None)
        if won:
            METRICS.jobs_finished.inc(job.provider, job.model, status.value)
            if deliver:
                await self.deliver(job.id)
        return won

    # -- delivery --------------------------------------------------------------------------------

    async def deliver(self, job_id: int) -> bool:
        """Show a finished job's outcome on its reply, once; True when this call delivered it."""
        async with self._reply_lock(job_id):
            job = await self.store.get_job(job_id)
            if job is None or not job.status.finished or job.delivered_at is not None:
                return False
            try:
                via = await self.replier.show_outcome(job)
            except Exception as exc:
                if not isinstance(exc, DeliveryError):
                    log.exception("job %d: unexpected error while delivering", job_id)
                    exc = DeliveryError(f"unexpected {type(exc).__name__}", retryable=True)
                METRICS.discord_edit_failures.inc("result", str(exc.retryable).lower())
                retry = self._delivery_retry.get(job_id, _Retry())
                if exc.retryable and retry.attempts < self.delivery_attempts:
                    pause = min(300.0, 2.0 * 2**retry.attempts)
                    self._delivery_retry[job_id] = _Retry(retry.attempts + 1, self._clock() + pause)
                    log.warning("job %d: delivery failed (%s); retrying in %.0f s", job_id, exc, pause)
                    return False
                log.warning("job %d: reply cannot be edited (%s); giving up on it", job_id, exc)
                via = "unreachable"
            self._delivery_retry.pop(job_id, None)
            delivered = await self.store.mark_delivered(job_id, via, now=self._clock())
            if delivered:
                log.info("job %d: delivered (%s, %s)", job_id, job.status, via)
                now = self._clock()
                METRICS.job_latency.observe(now - job.created_at)
                METRICS.delivery_latency.observe(now - (job.finished_at or now))
        self._reply_locks.pop(job_id, None)
        return delivered

    async def _deliver_due(self) -> None:
        now = self._clock()
        waiting = await self.store.undelivered_jobs()
        due = [j.id for j in waiting if self._delivery_retry.get(j.id, _Retry()).not_before <= now]
        await self._bounded([self.deliver(job_id) for job_id in due])

    async def _show_progress(self, job: Job, *, place: int | None = None) -> None:
        async with self._reply_lock(job.id):
            # The job may have finished (and been delivered) while this edit waited: never cover the result.
            current = await self.store.get_job(job.id)
            if current is None or current.status.finished:
                return
            now = self._clock()
            self._card_shown[job.id] = now
            position = None
            if current.status is JobStatus.QUEUED:
                position = place or (await self.store.queue_positions()).get(current.id)
                if position is not None:
                    self._shown_place[current.id] = position
            edit = self.replier.show_progress(current, now=now, position=position)
            try:
                await asyncio.wait_for(edit, self.progress_edit_timeout)
            except DeliveryError as exc:
                METRICS.discord_edit_failures.inc("progress", str(exc.retryable).lower())
                log.info("job %d: progress card not updated (%s)", job.id, exc)
            except TimeoutError:
                log.info("job %d: progress card edit took over %.0f s; skipped", job.id, self.progress_edit_timeout)

    def _reply_lock(self, job_id: int) -> asyncio.Lock:
        """One lock per job, so a progress edit and the final edit never interleave."""
        return self._reply_locks.setdefault(job_id, asyncio.Lock())

    async def _current(self, job: Job) -> Job:
        fresh = await self.store.get_job(job.id)
        assert fresh is not None
        return fresh

    def _log_provider_error(self, job: Job, exc: ProviderError, stage: str) -> None:
        if exc.kind.operator_problem:
            log.error("job %d: %s failed, operator action needed: %s [%s]", job.id, stage, exc.user_message, exc)
        else:
            log.warning("job %d: %s failed: %s", job.id, stage, exc)
