"""Members' defaults and the style a job used, on both engines (the `store` fixture runs each test on each)."""

from __future__ import annotations

from dataclasses import replace

from fluxbot.defaults import MemberDefaults
from fluxbot.jobs.requests import request_of
from fluxbot.jobs.service import NO_LIMITS
from fluxbot.storage import Store
from tests.test_store import REPLY, REQUEST

ALICE, BOB = 333333333333333333, 444444444444444444


async def test_a_members_defaults_are_kept_replaced_and_forgotten_when_empty(store: Store) -> None:
    assert await store.members.defaults(ALICE) == MemberDefaults(), "nothing chosen yet"
    chosen = MemberDefaults(model="flux-pro", size="768x1024", count=3, style="film noir")
    await store.members.save_defaults(ALICE, chosen)
    await store.members.save_defaults(BOB, MemberDefaults(count=2))
    assert await store.members.defaults(ALICE) == chosen
    assert await store.members.defaults(BOB) == MemberDefaults(count=2), "one set per member"

    await store.members.save_defaults(ALICE, replace(chosen, count=None, style=None))
    assert await store.members.defaults(ALICE) == MemberDefaults(model="flux-pro", size="768x1024")
    await store.members.save_defaults(ALICE, MemberDefaults())
    assert await store.members.defaults(ALICE) == MemberDefaults()
    assert await store.members.defaults(BOB) == MemberDefaults(count=2)


async def test_the_style_a_job_used_is_stored_and_a_reroll_asks_with_it_again(store: Store) -> None:
    styled = replace(REQUEST, prompt="a cat, black and white, high contrast", style="film noir")
    job = await store.admit("acedata", styled, REPLY, limits=NO_LIMITS)
    plain = await store.admit("acedata", REQUEST, REPLY, limits=NO_LIMITS)
    assert job is not None
    assert plain is not None
    assert job.style == "film noir"
    stored = await store.get_job(job.id)
    assert stored is not None
    assert stored.style == "film noir"
    assert request_of(stored) == styled, "the final prompt and the style's name, as they were asked"
    again = await store.get_job(plain.id)
    assert again is not None
    assert again.style is None
