"""End to end: the commands are synced with their translations, and a member hears the bot in their language."""

from __future__ import annotations

from typing import Any

from tests.e2e import EPHEMERAL, World, fields, final_reply, first_callback, job_requests, option
from tests.fakes.discord_api import SentInteraction
from tests.fakes.flux_api import envelope
from tests.test_e2e_results import custom_id

LOCALES = {"de", "es-ES", "fr", "pt-BR", "ja"}
GERMAN_REFUSAL = (
    "Nur Mitglieder mit der Berechtigung **Server verwalten** können die Einstellungen von fluxbot hier ändern."
)
ENGLISH_REFUSAL = "Only members with the **Manage Server** permission can change fluxbot's settings here."
LANGUAGE = "Language of what everyone sees"
#: The titles and a field of a job's card in Portuguese.
PORTUGUESE_RUNNING = "🎨 Em andamento — o Flux está trabalhando nisso"
PORTUGUESE_DONE = "✅ Pronto"
PORTUGUESE_FAILED = "❌ Falhou"
PORTUGUESE_WHAT_HAPPENED = "O que aconteceu"


def answer(world: World, interaction: SentInteraction) -> dict[str, Any]:
    """The data of the bot's response to the interaction."""
    data: dict[str, Any] = first_callback(world, interaction).json["data"]
    return data


def localized(node: dict[str, Any], *, described: bool = True) -> None:
    """Assert the command, option or choice is synced with a name (and a description) in every catalog's locale."""
    assert set(node.get("name_localizations") or {}) >= LOCALES, node["name"]
    if described:
        assert set(node.get("description_localizations") or {}) >= LOCALES, node["name"]


async def test_the_synced_commands_carry_names_and_descriptions_in_the_five_languages(world: World) -> None:
    commands = {c["name"]: c for c in world.discord.commands[str(world.discord.guild_id)]}
    imagine = commands["imagine"]
    localized(imagine)
    assert imagine["name_localizations"]["de"] == "generieren"
    assert imagine["description_localizations"]["fr"] == "Créer des images à partir d'un prompt avec Flux"
    for parameter in imagine["options"]:
        localized(parameter)
    model = next(o for o in imagine["options"] if o["name"] == "model")
    assert next(o for o in imagine["options"] if o["name"] == "size")["name_localizations"]["ja"] == "サイズ"
    for choice in model["choices"]:
        localized(choice, described=False)

    menu = commands["Edit with Flux"]
    localized(menu, described=False)
    assert menu["name_localizations"]["pt-BR"] == "Editar com Flux"

    admin = commands["fluxadmin"]
    localized(admin)
    subcommands = {o["name"]: o for o in admin["options"]}
    for subcommand in subcommands.values():
        localized(subcommand)
        for inner in subcommand.get("options", []):
            localized(inner)
    assert subcommands["blocklist"]["name_localizations"]["de"] == "sperrliste"
    spoilers = subcommands["spoilers"]["options"][0]
    assert [c["name_localizations"]["es-ES"] for c in spoilers["choices"]] == [
        "nunca",
        "siempre",
        "fuera de los canales con restricción de edad",
    ]


async def test_a_member_whose_discord_speaks_german_is_refused_in_german_and_korean_gets_english(
    world: World,
) -> None:
    show = [{"name": "show", "type": 1}]
    german = await world.discord.send_slash_command("fluxadmin", show, permissions=0, locale="de")
    data = answer(world, german)
    assert data["flags"] & EPHEMERAL
    assert data["content"] == GERMAN_REFUSAL
    # Only the member reads it: their language, not the server's.
    in_brazil = await world.discord.send_slash_command(
        "fluxadmin", show, permissions=0, locale="de", guild_locale="pt-BR"
    )
    assert answer(world, in_brazil)["content"] == GERMAN_REFUSAL
    korean = await world.discord.send_slash_command("fluxadmin", show, permissions=0, locale="ko")
    assert answer(world, korean)["content"] == ENGLISH_REFUSAL, "no Korean catalog: English"


async def test_fluxadmin_language_chooses_the_servers_language_or_follows_discords(world: World) -> None:
    def language(value: str) -> list[dict[str, Any]]:
        return [{"name": "language", "type": 1, "options": [option("language", value)]}]

    chosen = await world.discord.send_slash_command("fluxadmin", language("de"), locale="fr")
    [card] = answer(world, chosen)["embeds"]
    assert card["description"] == "✅ Enregistré. Ce que tout le monde voit ici sera en allemand."
    # The card is the moderator's (French); the language chosen is named in its own words.
    assert fields(card)["Langue de ce que tout le monde voit"] == "Deutsch (`de`)"

    following = await world.discord.send_slash_command(
        "fluxadmin", language("discord"), locale="ja", guild_locale="pt-BR"
    )
    [card] = answer(world, following)["embeds"]
    assert card["description"] == (
        "✅ 保存しました。ここで全員に表示される内容は、Discord のサーバー設定の言語に従います"
        "（現在はポルトガル語 (ブラジル)）。"
    )
    assert fields(card)["全員に表示される内容の言語"] == "Discord のサーバー言語"

    korean_server = await world.discord.send_slash_command("fluxadmin", language("discord"), guild_locale="ko")
    [card] = answer(world, korean_server)["embeds"]
    assert card["description"] == (
        "✅ Saved. What everyone here sees follows the server's language in Discord's settings: English for now."
    ), "no Korean catalog: what everyone sees stays English, and the moderator is told so"

    shown = await world.discord.send_slash_command("fluxadmin", [{"name": "show", "type": 1}])
    assert fields(answer(world, shown)["embeds"][0])[LANGUAGE] == "Discord's server language", "it was saved"


async def test_a_validation_error_is_said_in_the_members_language_with_its_numbers_written_their_way(
    world: World,
) -> None:
    empty = await world.discord.send_slash_command("imagine", [option("prompt", "   ")], locale="de")
    data = answer(world, empty)
    assert data["flags"] & EPHEMERAL
    assert data["content"] == (
        "Der Prompt ist leer. Beschreibe das Bild, das du möchtest, z. B. `eine weiße Siamkatze`."
    )
    too_long = await world.discord.send_slash_command(
        "imagine", [option("prompt", "x" * 1501)], locale="de", guild_locale="pt-BR"
    )
    assert answer(world, too_long)["content"] == (
        "Der Prompt ist 1.501 Zeichen lang; erlaubt sind 1.500. Kürze ihn und versuch es erneut."
    ), "the member's language (not the server's), its numbers written the German way"
    korean = await world.discord.send_slash_command("imagine", [option("prompt", "   ")], locale="ko")
    assert answer(world, korean)["content"] == (
        "The prompt is empty. Describe the image you want, e.g. `a white siamese cat`."
    ), "no Korean catalog: English"
    assert job_requests(world.flux) == []


async def test_a_refusal_of_the_servers_limits_is_said_in_french_and_the_prompt_is_sent_as_written(
    world: World,
) -> None:
    models = [{"name": "models", "type": 1, "options": [option("allowed", "flux-pro-1.1, flux-2-pro")]}]
    await world.discord.send_slash_command("fluxadmin", models)
    picked = await world.discord.send_slash_command(
        "imagine", [option("prompt", "un chat"), option("model", "flux-dev")], locale="fr"
    )
    data = answer(world, picked)
    assert data["flags"] & EPHEMERAL
    assert data["content"] == (
        "`flux-dev` n'est pas activé sur ce serveur. Modèles utilisables ici : `flux-pro-1.1`, `flux-2-pro`."
    )
    assert job_requests(world.flux) == []

    prompt = "a white siamese cat, the prompt is empty"  # reads like one of the bot's messages: still not translated
    made = await world.discord.send_slash_command("imagine", [option("prompt", prompt)], locale="de")
    await final_reply(world, made, "Done")
    [sent] = [r for r in job_requests(world.flux) if isinstance(r.body, dict) and "prompt" in r.body]
    assert sent.body["prompt"] == prompt


async def test_a_result_card_in_a_brazilian_server_is_portuguese_while_the_german_member_is_answered_in_german(
    world: World,
) -> None:
    world.flux.lookups_before_done = 2
    prompt = "ein weißer Fuchs im Schnee, Öl auf Leinwand"
    asked = await world.discord.send_slash_command(
        "imagine", [option("prompt", prompt), option("count", 2, kind=4)], locale="de", guild_locale="pt-BR"
    )
    running = await final_reply(world, asked, PORTUGUESE_RUNNING)
    [card] = running["embeds"]
    assert set(fields(card)) >= {"Modelo", "Tamanho", "Imagens", "Tempo decorrido"}
    done = await final_reply(world, asked, PORTUGUESE_DONE)
    first = done["embeds"][0]
    assert first["title"] == PORTUGUESE_DONE
    assert first["description"] == f"**Imaginar** para <@{world.discord.user_id}>\n> {prompt}", (
        "the bot's words in Portuguese, the prompt exactly as typed"
    )
    assert fields(first)["Sementes"] == "1000, 1001"
    assert {"Modelo", "Tamanho", "Imagens", "Originais"} <= set(fields(first))
    assert [c["label"] for row in done["components"] for c in row["components"]] == [
        "Refazer", "Editar", "Detalhes", "Excluir",
    ]  # fmt: skip
    assert world.flux.submits[0]["prompt"] == prompt, "the provider gets the prompt untranslated"

    # The same member's own answers stay German: Details is theirs alone.
    details = await world.discord.send_component(
        int(done["id"]), custom_id(done, "details"), locale="de", guild_locale="pt-BR"
    )
    [info] = first_callback(world, details).json["data"]["embeds"]
    assert info["title"] == "Auftrag #1"


async def test_a_failure_card_in_a_brazilian_server_says_the_providers_refusal_in_portuguese(world: World) -> None:
    world.flux.script("/flux/images", 403, envelope("used_up", "insufficient balance"))
    asked = await world.discord.send_slash_command("imagine", [option("prompt", "a cat")], guild_locale="pt-BR")
    failed = await final_reply(world, asked, PORTUGUESE_FAILED)
    assert fields(failed["embeds"][0])[PORTUGUESE_WHAT_HAPPENED] == (
        "A conta do bot no provedor de imagens está sem crédito. Avise o operador do bot."
    )
