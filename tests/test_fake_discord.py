"""End-to-end checks that the real discord.py client works against the fake Discord."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
import yarl
from discord import app_commands
from discord.ext import commands

from tests.fakes.discord_api import FakeDiscord, RecordedRequest, SentInteraction
from tests.fakes.png import make_png

pytestmark = pytest.mark.asyncio

STYLES = ("vivid", "natural", "noir")
WAIT = 5.0


class FakeBot(commands.Bot):
    """A minimal bot with a few app commands; /hold parks interactions for the test to drive."""

    def __init__(self, guild_id: int) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.test_guild = discord.Object(guild_id)
        self.held: asyncio.Queue[discord.Interaction] = asyncio.Queue()

    async def setup_hook(self) -> None:
        """Register the commands and sync them to the guild (and /dmping globally)."""
        for command in build_guild_commands():
            self.tree.add_command(command, guild=self.test_guild)
        self.tree.add_command(build_dm_command())
        await self.tree.sync(guild=self.test_guild)
        await self.tree.sync()


def build_guild_commands() -> list[app_commands.Command[Any, ..., None] | app_commands.ContextMenu]:
    """Create fresh guild command objects for one bot."""

    @app_commands.command(name="ping", description="Reply with pong")
    @app_commands.describe(prompt="What to echo", image="An optional image", style="Rendering style")
    async def ping(
        interaction: discord.Interaction,
        prompt: str,
        image: discord.Attachment | None = None,
        style: str | None = None,
    ) -> None:
        await interaction.response.defer(thinking=True)
        suffix = f" with {image.filename} ({image.width}x{image.height})" if image else ""
        await interaction.edit_original_response(content=f"pong: {prompt}{suffix} [{style or 'default'}]")

    @ping.autocomplete("style")
    async def style_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=s, value=s) for s in STYLES if s.startswith(current)]

    @app_commands.command(name="hold", description="Park the interaction for the test")
    async def hold(interaction: discord.Interaction) -> None:
        assert isinstance(interaction.client, FakeBot)
        interaction.client.held.put_nowait(interaction)

    @app_commands.context_menu(name="Describe")
    async def describe(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.send_message(f"{message.author.name} wrote {message.content!r}", ephemeral=True)

    return [ping, hold, describe]


def build_dm_command() -> app_commands.Command[Any, ..., None]:
    """Create the global /dmping command."""

    @app_commands.command(name="dmping", description="Pong in DMs")
    async def dmping(interaction: discord.Interaction) -> None:
        kind = "dm" if isinstance(interaction.channel, discord.DMChannel) else "guild"
        await interaction.response.send_message(f"pong from {kind}")

    return dmping


class ClickView(discord.ui.View):
    """A one-button view whose click edits the message and sends an ephemeral followup."""

    @discord.ui.button(label="Go", custom_id="go")
    async def go(self, interaction: discord.Interaction, button: discord.ui.Button[ClickView]) -> None:
        await interaction.response.edit_message(content="clicked", view=None)
        await interaction.followup.send("only you can see this", ephemeral=True)


class PromptModal(discord.ui.Modal, title="Prompt"):
    """A modal with one text input."""

    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"modal said {self.prompt.value}")


@pytest_asyncio.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started FakeDiscord with discord.py pointed at it."""
    server = FakeDiscord(ack_deadline=1.0)
    await server.start()
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = server.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
    try:
        yield server
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
        await server.close()


@asynccontextmanager
async def running_bot(fake: FakeDiscord) -> AsyncIterator[FakeBot]:
    """Run a FakeBot until the fake has sent it READY; close it afterwards."""
    bot = FakeBot(fake.guild_id)
    runner = asyncio.create_task(bot.start(fake.bot_token))
    ready = asyncio.create_task(fake.wait_ready(WAIT))
    try:
        await asyncio.wait({runner, ready}, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            ready.cancel()
            runner.result()
            raise AssertionError("bot stopped before becoming ready")
        await ready
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(runner, WAIT)


async def hold(fake: FakeDiscord, bot: FakeBot) -> tuple[SentInteraction, discord.Interaction]:
    """Invoke /hold and return the fake's and the bot's view of the interaction."""
    sent = await fake.send_slash_command("hold", wait_for_ack=False)
    interaction = await asyncio.wait_for(bot.held.get(), WAIT)
    assert interaction.id == sent.id
    return sent, interaction


def is_callback(sent: SentInteraction) -> Callable[[RecordedRequest], bool]:
    """Predicate factory: the callback request of one interaction."""
    return lambda r: r.method == "POST" and r.path.endswith(f"/interactions/{sent.id}/{sent.token}/callback")


def is_original_patch(sent: SentInteraction) -> Callable[[RecordedRequest], bool]:
    """Predicate factory: a PATCH of one interaction's original response."""
    return lambda r: r.method == "PATCH" and r.path.endswith(f"/{sent.token}/messages/@original")


async def test_login_ready_and_guild_sync(fake: FakeDiscord) -> None:
    async with running_bot(fake) as bot:
        await asyncio.wait_for(bot.wait_until_ready(), WAIT)
        assert bot.user is not None
        assert bot.user.id == fake.bot_user_id
        assert bot.application_id == fake.application_id
        guild = bot.get_guild(fake.guild_id)
        assert guild is not None
        assert guild.name
        assert isinstance(guild.get_channel(fake.channel_id), discord.TextChannel)
        assert guild.me is not None
        assert guild.me.guild_permissions.manage_messages
        assert fake.intents == discord.Intents.default().value

    synced = {c["name"]: c for c in fake.commands[str(fake.guild_id)]}
    assert set(synced) == {"ping", "hold", "Describe"}
    options = {o["name"]: o for o in synced["ping"]["options"]}
    assert options["prompt"]["type"] == 3
    assert options["prompt"]["required"] is True
    assert options["image"]["type"] == 11
    assert not options["image"].get("required")
    assert options["style"]["autocomplete"] is True
    assert synced["Describe"]["type"] == 3
    assert [c["name"] for c in fake.commands["global"]] == ["dmping"]
    put = await fake.wait_for_request(
        lambda r: r.method == "PUT" and r.path.endswith(f"/guilds/{fake.guild_id}/commands")
    )
    assert put.headers["Authorization"] == f"Bot {fake.bot_token}"


async def test_slash_command_defers_then_edits_original(fake: FakeDiscord) -> None:
    image = fake.make_attachment("cat.png", "image/png", 2048, width=640, height=480)
    options = [{"name": "prompt", "type": 3, "value": "a cat"}, {"name": "image", "type": 11, "value": image["id"]}]
    async with running_bot(fake):
        sent = await fake.send_slash_command("ping", options, attachments=[image])
        [callback] = fake.callbacks_for(sent)  # send_* return once the bot has called back
        await fake.wait_for_request(is_original_patch(sent), WAIT)

    assert callback.json == {"type": 5}
    assert callback.query == {"with_response": "1"}
    assert sent.payload["data"]["guild_id"] == str(fake.guild_id)
    original = fake.original_response(sent)
    assert original is not None
    assert original["content"] == "pong: a cat with cat.png (640x480) [default]"
    assert original["flags"] & 128 == 0
    assert original["edited_timestamp"] is not None
    assert original["type"] == 20
    assert original["webhook_id"] == str(fake.application_id)
    assert original["interaction_metadata"]["user"]["id"] == str(fake.user_id)


async def test_autocomplete_returns_choices(fake: FakeDiscord) -> None:
    async with running_bot(fake):
        options = [{"name": "prompt", "type": 3, "value": "x"}, {"name": "style", "type": 3, "value": "n"}]
        sent = await fake.send_autocomplete("ping", options, focused="style")
        callback = await fake.wait_for_request(is_callback(sent), WAIT)
    assert callback.json["type"] == 8
    assert [c["value"] for c in callback.json["data"]["choices"]] == ["natural", "noir"]


async def test_multipart_edit_uploads_and_keeps_files(fake: FakeDiscord) -> None:
    png = make_png(8, 4)
    async with running_bot(fake) as bot:
        sent, interaction = await hold(fake, bot)
        await interaction.response.defer()
        message = await interaction.edit_original_response(
            content="here", attachments=[discord.File(io.BytesIO(png), "out.png")]
        )
        patch = await fake.wait_for_request(lambda r: is_original_patch(sent)(r) and bool(r.files))
        assert [(f.field, f.filename, f.data) for f in patch.files] == [("files[0]", "out.png", png)]
        assert patch.json["attachments"] == [{"id": 0, "filename": "out.png"}]

        attachment = message.attachments[0]
        assert (attachment.width, attachment.height, attachment.content_type) == (8, 4, "image/png")
        assert await attachment.read() == png

        kept = await interaction.edit_original_response(content="kept", attachments=message.attachments)
        assert [a.id for a in kept.attachments] == [attachment.id]
        assert fake.messages[kept.id]["content"] == "kept"


async def test_fail_next_surfaces_http_errors_and_429_is_retried(fake: FakeDiscord) -> None:
    async with running_bot(fake) as bot:
        sent, interaction = await hold(fake, bot)
        await interaction.response.defer()

        fake.fail_next("PATCH", r"/messages/@original$", 404, {"message": "Unknown Message", "code": 10008})
        with pytest.raises(discord.NotFound) as not_found:
            await interaction.edit_original_response(content="lost")
        assert (not_found.value.status, not_found.value.code) == (404, 10008)

        fake.fail_next("PATCH", r"/messages/@original$", 429, {"retry_after": 0.05})
        await interaction.edit_original_response(content="after 429")
        statuses = [r.status for r in fake.requests if is_original_patch(sent)(r)]
        assert statuses == [404, 429, 200]

        channel = bot.get_channel(fake.channel_id)
        assert isinstance(channel, discord.TextChannel)
        fake.fail_next("POST", rf"/channels/{fake.channel_id}/messages$", 429, {"retry_after": 0.05})
        posted = await channel.send("hello")
        assert fake.messages[posted.id]["author"]["id"] == str(fake.bot_user_id)


async def test_expired_token_raises_50027(fake: FakeDiscord) -> None:
    async with running_bot(fake) as bot:
        sent, interaction = await hold(fake, bot)
        await interaction.response.defer(ephemeral=True)
        original = fake.original_response(sent)
        assert original is not None
        assert original["flags"] == 64 | 128
        fake.expire_token(sent)
        with pytest.raises(discord.HTTPException) as expired:
            await interaction.edit_original_response(content="too late")
    assert (expired.value.status, expired.value.code) == (401, 50027)


async def test_late_and_double_callbacks_are_rejected(fake: FakeDiscord) -> None:
    async with running_bot(fake) as bot:
        sent, interaction = await hold(fake, bot)
        await asyncio.sleep(fake.ack_deadline + 0.1)
        with pytest.raises(discord.NotFound) as late:
            await interaction.response.defer()
        assert late.value.code == 10062

        sent = await fake.send_slash_command("hold", wait_for_ack=False)
        url = f"{fake.api_base}/interactions/{sent.id}/{sent.token}/callback"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json={"type": 5}) as first:
                assert first.status == 200
                assert (await first.json())["interaction"]["response_message_loading"] is True
            async with session.post(url, json={"type": 5}) as second:
                assert second.status == 400
                assert (await second.json())["code"] == 40060


async def test_auth_and_unknown_routes(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake.api_base}/users/@me", headers={"Authorization": "Bot nope"}) as bad:
            assert bad.status == 401
            assert await bad.json() == {"message": "401: Unauthorized", "code": 0}
        async with session.get(f"{fake.api_base}/nope", headers={"Authorization": f"Bot {fake.bot_token}"}) as unknown:
            assert unknown.status == 404
            assert (await unknown.json())["code"] == 0
    client = discord.Client(intents=discord.Intents.default())
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong-token")
    await client.close()
    assert [r.status for r in fake.requests] == [401, 404, 401]


async def test_component_click_edits_message_and_sends_followup(fake: FakeDiscord) -> None:
    async with running_bot(fake) as bot:
        sent, interaction = await hold(fake, bot)
        await interaction.response.send_message("press it", view=ClickView())
        original = fake.original_response(sent)
        assert original is not None
        assert original["components"][0]["components"][0]["custom_id"] == "go"

        click = await fake.send_component(int(original["id"]), "go")
        await fake.wait_for_request(
            lambda r: r.method == "POST" and f"/webhooks/{fake.application_id}/{click.token}" in r.path, WAIT
        )

    assert [r.json["type"] for r in fake.callbacks_for(click)] == [7]
    assert original["content"] == "clicked"
    assert original["components"] == []
    followup = list(fake.messages.values())[-1]
    assert followup["content"] == "only you can see this"
    assert followup["flags"] == 64
    assert followup["interaction_metadata"]["interacted_message_id"] == original["id"]


async def test_modal_message_command_and_dm_command(fake: FakeDiscord) -> None:
    async with running_bot(fake) as bot:
        sent, interaction = await hold(fake, bot)
        await interaction.response.send_modal(PromptModal())
        modal = fake.callbacks_for(sent)[0].json
        assert modal["type"] == 9
        submit = await fake.send_modal_submit(modal["data"]["custom_id"], {"prompt": "hello"})
        await fake.wait_for(lambda: fake.original_response(submit) is not None, WAIT)

        target = fake.add_message(content="a red fox")
        menu = await fake.send_message_command("Describe", int(target["id"]))
        await fake.wait_for(lambda: fake.original_response(menu) is not None, WAIT)

        dm = await fake.send_slash_command("dmping", guild=False)
        await fake.wait_for(lambda: fake.original_response(dm) is not None, WAIT)

    submitted = fake.original_response(submit)
    described = fake.original_response(menu)
    dm_reply = fake.original_response(dm)
    assert submitted is not None
    assert submitted["content"] == "modal said hello"
    assert described is not None
    assert described["content"] == "tester wrote 'a red fox'"
    assert described["type"] == 23
    assert described["flags"] == 64
    assert dm_reply is not None
    assert dm_reply["content"] == "pong from dm"
    assert "guild_id" not in dm_reply


async def test_reconnects_resume_and_second_bot(fake: FakeDiscord) -> None:
    async with running_bot(fake):
        first_ids = {c["name"]: c["id"] for c in fake.commands[str(fake.guild_id)]}
        await fake.drop_gateway_connections()
        await fake.wait_for(lambda: len(fake.resumes) == 1 and fake.connected_clients == 1, WAIT)
        sent = await fake.send_slash_command("ping", [{"name": "prompt", "type": 3, "value": "resumed"}])
        await fake.wait_for(lambda: (fake.original_response(sent) or {}).get("content", "").startswith("pong"), WAIT)

    await fake.wait_for(lambda: fake.connected_clients == 0, WAIT)
    with pytest.raises(AssertionError):
        await fake.send_slash_command("ping")

    async with running_bot(fake):
        assert {c["name"]: c["id"] for c in fake.commands[str(fake.guild_id)]} == first_ids
        sent = await fake.send_slash_command("ping", [{"name": "prompt", "type": 3, "value": "again"}])
        request = await fake.wait_for_request(is_original_patch(sent), WAIT)
    assert request.json["content"] == "pong: again [default]"
    assert len(fake.identifies) == 2
