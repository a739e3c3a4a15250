"""A job's cards and buttons are said in the job's language (everyone in the channel reads them), Details and /jobs
in the member's; the prompt is always shown as written, and English stays as it was."""

from __future__ import annotations

from dataclasses import replace

import discord

from fluxbot import render, render_details
from fluxbot.buttons import jobs_page_view, result_view
from fluxbot.delivery import LINKS_INSTEAD
from fluxbot.errors import Message
from fluxbot.i18n import N_
from fluxbot.jobs.lifecycle import Job, JobStatus, JobTask, TaskPhase
from fluxbot.providers.base import Image
from tests.test_render import card_fields, job

PROMPT = "a white siamese cat, the job failed"  # reads like one of the bot's messages: still shown as written
#: A message the job core could have stored with the job: its template and values (in every catalog already).
UNKNOWN_MODEL = N_("`{model}` is not a model this bot knows. Pick one of {names}.")


def said_in(locale: str | None, **changes: object) -> Job:
    made = job(prompt=PROMPT, **changes)
    return replace(made, reply=replace(made.reply, locale=locale, message_id=99))


def labels(view: discord.ui.View | None) -> list[str]:
    assert view is not None
    return [str(getattr(item, "label", "")) for item in view.children]


# -- English, exactly as before (and "1 job ahead" in proper English) --------------------------------------------


def test_english_cards_count_the_jobs_ahead_and_keep_their_words() -> None:
    queued = said_in(None, status=JobStatus.QUEUED, task_id=None)
    places = [card_fields(render.queued_card(queued, now=1075.0, position=p)[0])["Place in line"] for p in (1, 2, 3)]
    assert places == ["#1 (next to start)", "#2 (1 job ahead)", "#3 (2 jobs ahead)"]
    [card] = render.queued_card(queued, now=1075.0, position=2)
    assert card.description == f"**Imagine** for <@42>\n> {PROMPT}"
    assert card_fields(card)["Elapsed"] == "1m 15s (started <t:1000:R>)"
    assert card.footer.text == "Job #7 · this message turns into the result when it is ready"
    assert labels(result_view(replace(queued, status=JobStatus.SUCCEEDED))) == ["Re-roll", "Edit", "Details", "Delete"]
    assert labels(jobs_page_view(0, 2, locale="en-GB")) == ["◀ Newer", "Older ▶"]

    tasks = (JobTask(1, "a", TaskPhase.TIMED_OUT, cost=0.25), JobTask(2, "b", TaskPhase.RUNNING, cost=1.0))
    details = card_fields(render_details.details_card(said_in("de", tasks=tasks), locale=None))
    assert details["Tasks"].splitlines() == ["1. `a` timed out", "2. `b` running", "(acedata)"]
    assert details["Cost"] == "1.25 (as Ace Data Cloud counts it)"
    assert render.elapsed_text(3600 * 1234, None) == "1,234h 00m", "hours are a number like any other"


# -- in the job's language: the catalogs' translations (these wait for the lead to merge them) -------------------


def test_a_result_and_its_buttons_are_in_german_with_its_note_and_numbers_the_german_way() -> None:
    images = (Image("https://img.test/1.png", seed=11), Image("https://img.test/2.png", seed=12))
    done = said_in("de", status=JobStatus.SUCCEEDED, images=images, count=2, finished_at=1075.0, inference_seconds=4.2)
    [first, second] = render.result_card(done, note=LINKS_INSTEAD)
    assert first.title == "✅ Fertig"
    assert first.description == f"**Generieren** für <@42>\n> {PROMPT}"
    fields = card_fields(first)
    assert fields["Modell"] == "FLUX.1 [dev] (`flux-dev`)"
    assert (fields["Größe"], fields["Bilder"], fields["Seeds"]) == ("`1024x1024`", "2", "11, 12")
    assert fields["Zeit"] == "1 min 15 s insgesamt, davon 4,2 s Inferenz"
    assert fields["Hinweis"].startswith("Die Bilder konnten nicht zu Discord kopiert werden")
    assert first.footer.text == "Auftrag #7"
    assert second.url == first.url, "still one gallery"
    assert labels(result_view(done)) == ["Neu generieren", "Bearbeiten", "Details", "Löschen"]

    spoiled = card_fields(render.result_card(done, attachments=["SPOILER_a.png", "SPOILER_b.png"], spoiler=True)[0])
    assert spoiled["Bilder"] == (
        "Auf diesem Server als Spoiler angezeigt: als verschwommene Bilder – klicke eines an, um es zu sehen."
    )
    assert render.elapsed_text(185, "de") == "3 min 05 s"


def test_a_queued_card_is_in_japanese_with_its_plural_and_discords_own_timestamp() -> None:
    queued = said_in("ja", status=JobStatus.QUEUED, task_id=None)
    [card] = render.queued_card(queued, now=1075.0, position=3)
    assert card.title == "⏳ 待機中"
    assert card.description == f"**画像生成** — <@42> さんの依頼\n> {PROMPT}"
    fields = card_fields(card)
    assert fields["待機順"] == "#3 (前に 2 件)"
    assert fields["タスク"] == "送信中…"
    assert fields["経過時間"] == "1分15秒（<t:1000:R>に開始）"
    assert card.footer.text == "ジョブ #7 · 準備ができると、このメッセージが結果に変わります"


def test_a_failure_says_its_stored_message_in_portuguese_and_an_older_rows_text_as_it_is() -> None:
    stored = Message(UNKNOWN_MODEL, model="flux-9", names="`flux-dev`").stored()
    failed = said_in("pt-BR", status=JobStatus.FAILED, error_message=Message.read(stored))
    [card] = render.failure_card(failed)
    assert card.title == "❌ Falhou"
    fields = card_fields(card)
    assert fields["O que aconteceu"] == "`flux-9` não é um modelo que este bot conhece. Escolha um destes: `flux-dev`."
    assert fields["Requisição"] == "`task-1`"
    older = card_fields(render.failure_card(replace(failed, error_message="model crashed"))[0])
    assert older["O que aconteceu"] == "model crashed"
    assert card_fields(render.failure_card(replace(failed, error_message=None))[0])["O que aconteceu"] == (
        "A tarefa falhou."
    )


def test_details_and_jobs_are_in_the_members_language_whatever_the_jobs() -> None:
    tasks = (
        JobTask(1, "a", TaskPhase.SUCCEEDED, cost=1.5),
        JobTask(2, "b", TaskPhase.SUCCEEDED, cost=2.25),
        JobTask(3, "c", TaskPhase.SUCCEEDED),
        JobTask(4, None, TaskPhase.FAILED),
    )
    german_job = said_in("de", status=JobStatus.SUCCEEDED, tasks=tasks, finished_at=1075.0)
    details = render_details.details_card(german_job, locale="pt-BR")
    assert details.title == "Tarefa #7"
    assert details.description == PROMPT
    fields = card_fields(details)
    assert fields["Status"] == "✅ pronta"
    assert (
        fields["Custo"] == "3,75 (segundo a contagem de Ace Data Cloud; 1 de suas 3 requisições não informaram custo)"
    )
    assert fields["Requisições"].splitlines()[3:] == ["4. não iniciada", "(acedata)"]
    assert fields["Tempos"] == "pedida em <t:1000:f>, concluída após 1 min 15 s"

    page = render_details.jobs_page([german_job], total=12, page=0, pages=2, now=1075.0, locale="pt-BR")
    assert page.title == "Suas tarefas recentes"
    assert page.description == (
        f"**#7** ✅ pronta · `flux-dev` · há 1 min 15 s · [resposta](https://discord.com/channels/1/2/99)\n> {PROMPT}"
    )
    assert page.footer.text == "Página 1 de 2 · 12 tarefas · /tarefa <número> mostra um resultado de novo"
    assert labels(jobs_page_view(0, 2, locale="pt-BR")) == ["◀ Mais recentes", "Mais antigas ▶"]
    empty = render_details.jobs_page([], total=0, page=0, pages=1, now=1075.0, locale="ja")
    assert empty.description == "まだジョブがありません。`/画像生成` を試してみてください。"
