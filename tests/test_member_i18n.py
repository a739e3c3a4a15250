"""What a member reads of /settings, /flux, styles and the bot's own answers comes in the member's language.

The texts asserted here are the translations of /work/wt/member-translations.json: these tests pass once the
catalogs carry them. The English texts are asserted, byte for byte, by the tests of each module.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import AsyncMock, MagicMock

import discord
import pytest

from cogs.member import Member
from fluxbot import catalog
from fluxbot.bot import FluxCommandTree, report_command_error
from fluxbot.defaults import MemberDefaults, Typed, choose, notes_message
from fluxbot.jobs.requests import InvalidRequest
from fluxbot.limits import GuildSettings, Limits, Refused, SharedServer, Style, dm_policy, policy_for
from fluxbot.styles import describe, styled_prompt
from tests.e2e import EPHEMERAL, World, fields, first_callback, option

ACE = catalog.PROVIDERS["acedata"]
NOIR = Style("noir", "black and white, high contrast", "flux-pro-1.1", "1344x768")


def here(**settings: Any) -> Any:
    return policy_for(GuildSettings(**settings), provider=ACE, defaults=Limits(), default_model="flux-dev",
                      channel_ids=[], role_ids=[])  # fmt: skip


def answer(world: World, interaction: Any) -> dict[str, Any]:
    data: dict[str, Any] = first_callback(world, interaction).json["data"]
    assert data["flags"] & EPHEMERAL, "only the member sees it"
    return data


async def test_settings_answers_a_german_member_in_german_and_the_servers_language_does_not_matter(
    world: World,
) -> None:
    wrong = await world.discord.send_slash_command("settings", [option("model", "dall-e")], locale="de")
    assert answer(world, wrong)["content"].startswith(
        "`dall-e` ist kein Modell des Anbieters dieses Bots. Wähle eines davon: `flux-dev`"
    )
    saved = await world.discord.send_slash_command(
        "settings", [option("model", "flux-pro"), option("count", 2, kind=4)], locale="de", guild_locale="fr"
    )
    [card] = answer(world, saved)["embeds"]
    assert card["title"] == "Deine fluxbot-Standards"
    assert card["description"].startswith("✅ Gespeichert.\nSie gelten auf jedem Server für die Optionen")
    assert fields(card)["Deine Standards (/einstellungen)"] == "Modell `flux-pro`, Anzahl 2"
    uses = fields(card)["Hier nutzt /generieren ohne Optionen"]
    assert uses == "Modell `flux-pro`, Größe `1024x1024`, Anzahl 2, kein Stil"
    assert card["footer"]["text"] == (
        "Ändere einen mit /einstellungen modell: größe: anzahl: stil: · lösche sie mit zurücksetzen:True"
    )

    added = await world.discord.send_slash_command(
        "fluxadmin",
        [{"name": "style", "type": 2, "options": [{"name": "add", "type": 1, "options": [
            option("name", "Film Noir"), option("text", "black and white")]}]}],
        locale="de",
    )  # fmt: skip
    [card] = answer(world, added)["embeds"]
    assert card["description"].startswith("✅ `film noir` hinzugefügt. Das gilt ab dem nächsten Befehl.\n\n")


def test_a_default_that_does_not_apply_is_noted_in_japanese_the_style_named_as_the_server_wrote_it() -> None:
    chosen = choose("generate", Typed(), MemberDefaults(style="Sépia", count=9), here(styles=(NOIR,)), ACE)
    assert notes_message(chosen.notes, "ja") == (
        "選んだ設定の一部はここでは使われませんでした:\n"
        "• 既定のスタイル `Sépia` はここにはないため、スタイルは使いませんでした。\n"
        "• 既定の枚数 `9` は、このボットのプロバイダーが1回のジョブで作れる枚数（4）を超えているため、"
        "1 枚にしました。\n"
        "既定値の確認や変更は `/設定` でできます。"
    )
    assert notes_message(chosen.notes, "ko").startswith(
        "Some of your choices were not used here:\n• Your default style `Sépia` is not a style here"
    ), "no Korean catalog: English"


def test_the_quota_on_flux_takes_the_plural_form_the_number_needs_in_french() -> None:
    policy = here(daily_images=5)
    assert Member._quota("fr", policy, 4).startswith("1 restante sur 5, réinitialisation <t:")
    assert Member._quota("fr", policy, 2).startswith("3 restantes sur 5, réinitialisation <t:")
    assert Member._quota("de", here(), 1) == "kein Tageslimit (1 Bild heute erstellt)"
    assert Member._quota("de", here(), 1500) == "kein Tageslimit (1.500 Bilder heute erstellt)"


def test_style_errors_and_choices_say_the_bots_words_in_the_members_language_and_the_styles_as_written() -> None:
    with pytest.raises(InvalidRequest) as too_long:
        styled_prompt("x" * 1490, NOIR)
    assert too_long.value.said("de") == (
        "Mit dem Stil `noir` (er fügt 32 Zeichen hinzu) wäre der Prompt 1.522 Zeichen lang; erlaubt sind 1.500. "
        "Kürze deinen Prompt auf höchstens 1.468 Zeichen oder lass den Stil weg."
    )
    assert describe(NOIR, "pt-BR") == "black and white, high contrast (modelo `flux-pro-1.1`, tamanho `1344x768`)"
    with pytest.raises(InvalidRequest) as unknown:
        choose("generate", Typed(style="nope"), MemberDefaults(), here(styles=(NOIR,)), ACE)
    assert unknown.value.said("es-ES") == (
        "`nope` no es un estilo de aquí. Elige uno de estos: `noir`, o quita `estilo`."
    ), "es-ES, the catalog of es-419 too"


def test_a_dm_refusal_lists_the_roles_joined_in_the_members_language() -> None:
    servers = [
        SharedServer("Art", GuildSettings(dms=True, required_role=1), (), required_role_name="Artist"),
        SharedServer("Cats", GuildSettings(dms=True, required_role=2), ()),
    ]
    with pytest.raises(Refused) as refused:
        dm_policy(servers, provider=ACE, defaults=Limits(), default_model="flux-dev")
    assert "the **Artist** role on **Art**; or the **required** role on **Cats**" in str(refused.value)
    assert refused.value.said("pt-BR") == (
        "Para me usar em mensagens diretas, você precisa de cargo **Artist** em **Art**; ou cargo **exigido** em "
        "**Cats**. Peça a um moderador ou use-me em um canal de lá."
    )


def member(locale: str, *, closing: bool = False, answered: bool = False) -> MagicMock:
    fake = MagicMock(spec=discord.Interaction)
    fake.locale, fake.guild_locale = locale, "en-US"
    fake.type = discord.InteractionType.application_command
    fake.client.closing = closing
    fake.command.qualified_name = "imagine"
    fake.response.is_done.return_value = answered
    fake.response.send_message = AsyncMock()
    fake.followup.send = AsyncMock()
    return fake


async def test_the_restarting_and_the_unexpected_error_answers_are_in_spanish_for_a_spanish_member() -> None:
    restarting = member("es-ES", closing=True)
    assert await FluxCommandTree.interaction_check(MagicMock(), restarting) is False
    restarting.response.send_message.assert_awaited_once_with(
        "El bot se está reiniciando ahora mismo. Vuelve a intentarlo en un momento; no se ha perdido nada tuyo.",
        ephemeral=True,
    )
    failed = member("es-419")
    command = MagicMock(spec=discord.app_commands.Command)
    command.name = "imagine"
    await report_command_error(failed, discord.app_commands.CommandInvokeError(command, RuntimeError("boom")))
    failed.response.send_message.assert_awaited_once_with(
        "Algo ha fallado por parte del bot y este comando no se ha ejecutado. Vuelve a intentarlo en un momento; "
        "si sigue pasando, avisa al operador del bot.",
        ephemeral=True,
    )
