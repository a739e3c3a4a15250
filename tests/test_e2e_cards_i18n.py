"""End to end: a job's reply and its buttons speak the server's language, Details, /jobs and /job the member's, and
a result shown again by /job the language of the channel it is shown in."""

from __future__ import annotations

from typing import Any

from tests.e2e import EPHEMERAL, World, close_every_way_but_dms, fields, final_reply, first_callback, option
from tests.test_e2e_results import custom_id


def labels(message: dict[str, Any]) -> list[str]:
    return [c["label"] for row in message.get("components", []) for c in row["components"]]


async def test_a_result_in_a_german_server_is_german_and_each_member_reads_their_own_answers(world: World) -> None:
    asked = await world.discord.send_slash_command("imagine", [option("prompt", "ein Fuchs")], guild_locale="de")
    done = await final_reply(world, asked, "Fertig")
    [card] = done["embeds"]
    assert card["description"] == f"**Generieren** für <@{world.discord.user_id}>\n> ein Fuchs"
    assert "Zeit" in fields(card)
    assert card["footer"]["text"] == "Auftrag #1"
    assert labels(done) == ["Neu generieren", "Bearbeiten", "Details", "Löschen"]

    details = await world.discord.send_component(
        int(done["id"]), custom_id(done, "details"), locale="ja", guild_locale="de"
    )
    answer = first_callback(world, details).json["data"]
    assert answer["flags"] & EPHEMERAL
    [info] = answer["embeds"]
    assert info["title"] == "ジョブ #1", "only the clicker reads it: their language, not the server's"
    assert fields(info)["状態"] == "✅ 完了"

    listed = await world.discord.send_slash_command("jobs", locale="pt-BR", guild_locale="de")
    [page] = first_callback(world, listed).json["data"]["embeds"]
    assert page["title"] == "Suas tarefas recentes"
    missing = await world.discord.send_slash_command("job", [option("number", 42, kind=4)], locale="fr")
    assert first_callback(world, missing).json["data"]["content"] == "Il n'existe pas de tâche #42."

    # Shown again where the server now speaks French: the copy is read there, so it is French; the first stays German.
    shown = await world.discord.send_slash_command("job", [option("number", 1, kind=4)], guild_locale="fr")
    again = await final_reply(world, shown, "Terminé")
    assert labels(again) == ["Relancer", "Modifier", "Détails", "Supprimer"]
    assert world.discord.messages[int(done["id"])]["embeds"][0]["title"] == "✅ Fertig"


async def test_a_buttons_refusal_is_said_in_the_clickers_language(world: World) -> None:
    asked = await world.discord.send_slash_command("imagine", [option("prompt", "a fox")])
    done = await final_reply(world, asked, "Done")
    models = [{"name": "models", "type": 1, "options": [option("allowed", "flux-pro-1.1")]}]
    await world.discord.send_slash_command("fluxadmin", models)
    # A MemberError raised under a button is said in the clicker's language, not as its English str().
    reroll = await world.discord.send_component(int(done["id"]), custom_id(done, "reroll"), locale="es-ES")
    refusal = first_callback(world, reroll).json["data"]
    assert refusal["flags"] & EPHEMERAL
    assert refusal["content"] == (
        "`flux-dev` no está activado en este servidor. Modelos que puedes usar aquí: `flux-pro-1.1`."
    )


async def test_a_result_sent_by_dm_is_in_the_members_language_not_the_servers(world: World) -> None:
    world.flux.hold = True
    asked = await world.discord.send_slash_command(
        "imagine", [option("prompt", "ein Leuchtturm")], locale="ja", guild_locale="de"
    )
    queued = await final_reply(world, asked, "Flux arbeitet daran")
    [task_id] = world.flux.tasks
    close_every_way_but_dms(world, asked, queued)
    channel = world.discord.channel_id
    world.flux.finish(task_id)

    await world.discord.wait_for(lambda: "result sent to the member by DM" in world.bot.output)
    [dm] = [
        r for r in world.discord.requests if r.method == "POST" and r.path.endswith("/messages") and r.status == 200
    ]
    assert dm.json["content"] == f"<#{channel}> で依頼したジョブ #1 の結果です（元の返信を更新できませんでした）。"
    assert dm.json["embeds"][0]["title"] == "✅ 完了", "only the member reads a DM: their language"
    assert "ein Leuchtturm" in dm.json["embeds"][0]["description"]
    assert labels(dm.json) == ["再生成", "編集", "詳細", "削除"]
