"""The real discord.py client against the loopback fake Discord.

A small bot with a slash command, autocomplete and persistent ``DynamicItem`` buttons logs in, answers,
restarts, and copes with an expired token and rate limits; every test asserts what a user would see.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.fakediscord import FakeDiscord, GatewayRecord, buttons, point_client_at, run_client

STYLES = ["photo", "painting", "pixel art", "watercolor"]


def png(color: str, size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


class Upscale(discord.ui.DynamicItem[discord.ui.Button], template=r"job:(?P<job>\d+):upscale:(?P<n>[1-4])"):
    def __init__(self, job: int, n: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"U{n}", style=discord.ButtonStyle.secondary, custom_id=f"job:{job}:upscale:{n}"
            )
        )
        self.job = job
        self.n = n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Upscale:
        return cls(int(match["job"]), int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        client = interaction.client
        assert isinstance(client, DemoBot)
        client.clicks.append((self.job, self.n, interaction.user.id))
        await interaction.response.send_message(
            f"Upscaled image #{self.n} of job {self.job}",
            file=discord.File(io.BytesIO(png("blue", (128, 128))), "upscale.png"),
        )


def grid_view(job: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for n in range(1, 5):
        view.add_item(Upscale(job, n))
    return view


class DemoBot(commands.Bot):
    """One client instance; a test restarts "the bot" by building a new one."""

    def __init__(self, *, sync: bool = True) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.1,
        )
        self.sync = sync
        self.clicks: list[tuple[int, int, int]] = []
        self.errors: list[Exception] = []
        self.synced: list[app_commands.AppCommand] = []
        self.entitlement_events: list[discord.Entitlement] = []
        self.seen: list[str] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Upscale)
        self.tree.add_command(imagine)
        self.tree.add_command(render)
        self.tree.add_command(slow)
        self.tree.add_command(describe)
        self.tree.add_command(feedback)
        self.tree.add_command(pick)
        self.tree.add_command(badmodal)
        self.tree.add_command(plan)
        if self.sync:
            self.synced = await self.tree.sync()


@app_commands.command(description="Make images from a prompt")
@app_commands.describe(prompt="What to draw", style="A style preset")
async def imagine(
    interaction: discord.Interaction, prompt: str, style: str = "photo", count: int = 4, private: bool = False
) -> None:
    await interaction.response.defer(thinking=True, ephemeral=private)
    await interaction.followup.send(
        f"**{prompt}** ({style}, {count} images) - {interaction.user.mention}",
        file=discord.File(io.BytesIO(png("red", (128, 128))), "grid.png"),
        view=grid_view(interaction.id % 100_000),
    )


@imagine.autocomplete("style")
async def style_autocomplete(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=s, value=s) for s in STYLES if s.startswith(current.lower())]


@app_commands.command(description="Defer, then edit the original; fall back to the channel")
async def render(interaction: discord.Interaction, prompt: str) -> None:
    await interaction.response.defer()
    picture = png("green")
    try:
        await interaction.edit_original_response(
            content=f"Done: {prompt}",
            attachments=[discord.File(io.BytesIO(picture), "render.png")],
            view=grid_view(7),
        )
    except discord.HTTPException as exc:
        client = interaction.client
        assert isinstance(client, DemoBot)
        client.errors.append(exc)
        channel = interaction.channel
        assert isinstance(channel, discord.TextChannel)
        await channel.send(
            f"Done: {prompt} {interaction.user.mention}",
            file=discord.File(io.BytesIO(picture), "render.png"),
            view=grid_view(7),
        )


@app_commands.command(description="Answers after a delay, as many times as asked")
async def slow(interaction: discord.Interaction, delay: float, times: int = 1) -> None:
    client = interaction.client
    assert isinstance(client, DemoBot)
    await asyncio.sleep(delay)
    for _ in range(times):
        try:
            await interaction.response.send_message("finally")
        except discord.HTTPException as exc:
            client.errors.append(exc)
        # discord.py refuses a second response locally; force the second request through.
        interaction.response._response_type = None


@app_commands.command(description="Describe an uploaded image")
async def describe(interaction: discord.Interaction, image: discord.Attachment, who: discord.Member) -> None:
    data = await image.read()  # fetched from the attachment URL, like Discord's CDN
    with Image.open(io.BytesIO(data)) as opened:
        size = opened.size
    await interaction.response.send_message(
        f"{image.filename} {size[0]}x{size[1]} for {who.name}", ephemeral=True
    )


class FeedbackModal(discord.ui.Modal, title="Feedback"):
    text: discord.ui.TextInput[FeedbackModal] = discord.ui.TextInput(label="Your feedback", custom_id="text")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Thanks: {self.text.value}")


@app_commands.command(description="Open a modal")
async def feedback(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(FeedbackModal())


class PickModal(discord.ui.Modal, title="Pick"):
    """Discord's newer modal layout: labels around a checkbox group and a text input."""

    cells: discord.ui.Label[PickModal] = discord.ui.Label(text="Cells", component=discord.ui.CheckboxGroup(
        custom_id="cells", required=False, min_values=0, max_values=3,
        options=[discord.CheckboxGroupOption(label=str(n), value=str(n)) for n in (1, 2, 3)],
    ))
    note: discord.ui.Label[PickModal] = discord.ui.Label(
        text="Note", component=discord.ui.TextInput(custom_id="note", required=False)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.cells.component, discord.ui.CheckboxGroup)
        assert isinstance(self.note.component, discord.ui.TextInput)
        await interaction.response.send_message(f"cells={self.cells.component.values} note={self.note.component.value}")


@app_commands.command(description="Open a modal with a checkbox group")
async def pick(interaction: discord.Interaction) -> None:
    await interaction.response.send_modal(PickModal())


class TwinModal(discord.ui.Modal, title="Twins"):
    """Two inputs with one custom_id: Discord refuses it (its schema cannot say so; the fake's rules do)."""

    first: discord.ui.Label[TwinModal] = discord.ui.Label(text="First", component=discord.ui.TextInput(custom_id="x"))
    second: discord.ui.Label[TwinModal] = discord.ui.Label(text="Second", component=discord.ui.TextInput(custom_id="x"))


@app_commands.command(description="Open a modal Discord refuses (two inputs share a custom_id)")
async def badmodal(interaction: discord.Interaction) -> None:
    try:
        await interaction.response.send_modal(TwinModal())
    except discord.HTTPException as error:
        interaction.client.errors.append(error)  # type: ignore[attr-defined]


@app_commands.command(description="Show the caller's entitlements")
async def plan(interaction: discord.Interaction) -> None:
    skus = sorted(e.sku_id for e in interaction.entitlements)
    where = "dm" if isinstance(interaction.channel, discord.DMChannel) else "guild"
    await interaction.response.send_message(f"{where} skus={skus}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server
        assert server.server_errors == []
        assert server.schema_rejections == []
        assert server.unhandled == []


def is_png(data: bytes, size: tuple[int, int]) -> bool:
    with Image.open(io.BytesIO(data)) as image:
        return image.format == "PNG" and image.size == size


async def test_responses_are_plain_application_json(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {fake.bot_token}"}
        async with session.get(f"{fake.api_base}/users/@me", headers=headers) as response:
            assert response.headers["Content-Type"] == "application/json"
            assert (await response.json())["username"] == "imagine"
        async with session.get(
            f"{fake.api_base}/users/@me", headers={"Authorization": "Bot wrong"}
        ) as response:
            assert response.status == 401


async def test_login_sync_and_guilds(fake: FakeDiscord) -> None:
    bot = DemoBot()
    async with run_client(bot, fake):
        assert bot.user is not None and bot.user.id == fake.bot_user.id
        guild = bot.get_guild(fake.guild.id)
        assert guild is not None and guild.name == "Test Guild"
        assert [c.name for c in guild.text_channels] == ["general", "imagine"]
        options = {o["name"]: o["type"] for o in fake.commands["imagine"]["options"]}
        assert options == {"prompt": 3, "style": 3, "count": 4, "private": 5}
        assert {c.name for c in bot.synced} == {"imagine", "render", "slow", "describe", "feedback", "pick", "badmodal",
                                            "plan"}
        session = await fake.wait_for_client()
        assert session.intents == discord.Intents.default().value


async def test_slash_command_followup_with_file_and_buttons(fake: FakeDiscord) -> None:
    async with run_client(DemoBot(), fake):
        interaction = await fake.slash_command("imagine", {"prompt": "a fox in the snow", "count": 2})
        ack = await interaction.wait_ack()
        assert ack.type == 5 and ack.delay < fake.interaction_deadline

        message = await interaction.wait_original()
        assert message["content"] == f"**a fox in the snow** (photo, 2 images) - <@{fake.user.id}>"
        assert message["mentions"][0]["username"] == "alice"
        assert [a["filename"] for a in message["attachments"]] == ["grid.png"]
        assert message["attachments"][0]["content_type"] == "image/png"
        assert (message["attachments"][0]["width"], message["attachments"][0]["height"]) == (128, 128)
        grid = fake.files(message)[0]
        assert is_png(grid.data, (128, 128)) and grid.image().getpixel((0, 0)) == (255, 0, 0)
        assert [b["label"] for b in buttons(message)] == ["U1", "U2", "U3", "U4"]
        assert message["interaction_metadata"]["user"]["id"] == str(fake.user.id)
        assert message in fake.channel_messages(fake.channel)

        # The attachment URL serves the bytes, as Discord's CDN would.
        async with (
            aiohttp.ClientSession() as session,
            session.get(message["attachments"][0]["url"]) as response,
        ):
            assert await response.read() == grid.data


async def test_button_click_runs_dynamic_item_even_after_restart(fake: FakeDiscord) -> None:
    first = DemoBot()
    async with run_client(first, fake):
        command = await fake.slash_command("imagine", {"prompt": "a lighthouse"})
        grid = await command.wait_original()
        u2 = buttons(grid)[1]["custom_id"]

        click = await fake.click(grid, u2)
        reply = await click.wait_original()
        job = command.id % 100_000
        assert reply["content"] == f"Upscaled image #2 of job {job}"
        assert is_png(fake.files(reply)[0].data, (128, 128))
        assert reply["interaction_metadata"]["interacted_message_id"] == grid["id"]
        assert first.clicks == [(job, 2, fake.user.id)]

    # A new process: a new client instance, the same old message.
    second = DemoBot(sync=False)
    async with run_client(second, fake):
        bob = fake.add_user("bob")
        click = await fake.click(grid, buttons(grid)[3]["custom_id"], user=bob)
        reply = await click.wait_original()
        assert reply["content"] == f"Upscaled image #4 of job {job}"
        assert second.clicks == [(job, 4, bob.id)]
        assert first.clicks == [(job, 2, fake.user.id)]
    assert len(fake.sessions) == 2

    with pytest.raises(LookupError, match="no component"):
        await fake.click(grid, "job:1:upscale:9")


async def test_autocomplete_returns_the_bots_choices(fake: FakeDiscord) -> None:
    async with run_client(DemoBot(), fake):
        choices = await fake.autocomplete("imagine", {"prompt": "a fox", "style": "p"}, focused="style")
        assert choices == [
            {"name": "photo", "value": "photo"},
            {"name": "painting", "value": "painting"},
            {"name": "pixel art", "value": "pixel art"},
        ]


async def test_expired_token_falls_back_to_a_channel_message(fake: FakeDiscord) -> None:
    bot = DemoBot()
    async with run_client(bot, fake):
        fake.token_lifetime = 0
        rate_limit = fake.inject_rate_limit("/channels/*/messages", method="POST", retry_after=0.05)
        interaction = await fake.slash_command("render", {"prompt": "a red barn"})
        message = await fake.wait_for_message(lambda m: m["content"].startswith("Done"), channel=fake.channel)

        [error] = bot.errors
        assert isinstance(error, discord.HTTPException)
        assert (error.status, error.code) == (401, 50027)
        assert message["content"] == f"Done: a red barn <@{fake.user.id}>"
        assert message["author"]["id"] == str(fake.bot_user.id) and "webhook_id" not in message
        assert is_png(fake.files(message)[0].data, (64, 64))
        assert len(buttons(message)) == 4
        # The user still sees the "thinking…" message; the result is in the channel.
        assert interaction.original is not None and interaction.original["flags"] & 128
        # The bot-token POST hit a 429 with Via, and discord.py retried it.
        assert rate_limit.hits == 1
        posts = [r.status for r in fake.requests if r.method == "POST" and r.path.startswith("/channels/")]
        assert posts == [429, 200]


async def test_edit_original_keeps_files_and_buttons(fake: FakeDiscord) -> None:
    async with run_client(DemoBot(), fake):
        interaction = await fake.slash_command("render", {"prompt": "a blue door"})
        message = await interaction.wait_original()
        assert message["content"] == "Done: a blue door"
        [picture] = fake.files(message)
        assert picture.filename == "render.png" and is_png(picture.data, (64, 64))
        assert [b["custom_id"] for b in buttons(message)] == [f"job:7:upscale:{n}" for n in range(1, 5)]
        assert len(fake.message_versions[int(message["id"])]) == 2


async def test_rate_limited_followup_is_retried(fake: FakeDiscord) -> None:
    async with run_client(DemoBot(), fake):
        rate_limit = fake.inject_rate_limit("/webhooks/*", method="POST", retry_after=0.05)
        interaction = await fake.slash_command("imagine", {"prompt": "rain"})
        message = await interaction.wait_original()
        assert message["content"].startswith("**rain**")
        assert rate_limit.hits == 1
        statuses = [r.status for r in fake.requests if r.method == "POST" and r.path.startswith("/webhooks/")]
        assert statuses == [429, 200]


async def test_late_and_double_callbacks_are_refused() -> None:
    async with FakeDiscord(interaction_deadline=0.2) as fake:
        bot = DemoBot()
        async with run_client(bot, fake):
            late = await fake.slash_command("slow", {"delay": 0.3})
            [error] = await fake.wait_until(lambda: bot.errors, timeout=3)
            assert isinstance(error, discord.NotFound) and error.code == 10062
            assert late.callback is None and late.original is None

            bot.errors.clear()
            twice = await fake.slash_command("slow", {"delay": 0.0, "times": 2})
            [error] = await fake.wait_until(lambda: bot.errors, timeout=3)
            assert isinstance(error, discord.HTTPException) and (error.status, error.code) == (400, 40060)
            assert twice.callback is not None and (await twice.wait_original())["content"] == "finally"


async def test_point_client_at_sets_and_restores() -> None:
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with FakeDiscord() as fake:
        with point_client_at(fake):
            assert fake.api_base == discord.http.Route.BASE
            assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert old_base == discord.http.Route.BASE
    assert old_gateway == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY


async def test_attachment_and_member_options_and_ephemeral_reply(fake: FakeDiscord) -> None:
    async with run_client(DemoBot(), fake):
        bob = fake.add_user("bob")
        interaction = await fake.slash_command(
            "describe", {"image": ("cat.png", png("white", (32, 16))), "who": bob}
        )
        reply = await interaction.wait_original()
        assert reply["content"] == "cat.png 32x16 for bob"
        assert reply["flags"] & 64  # ephemeral: only the caller sees it
        assert reply not in fake.channel_messages(fake.channel, include_ephemeral=False)


async def test_modal_submit(fake: FakeDiscord) -> None:
    async with run_client(DemoBot(), fake):
        opened = await fake.slash_command("feedback")
        await opened.wait_ack()
        assert opened.modal is not None and opened.modal["title"] == "Feedback"
        submitted = await fake.submit_modal(opened, {"text": "more dragons"})
        assert (await submitted.wait_original())["content"] == "Thanks: more dragons"


async def test_modal_with_labels_and_a_checkbox_group_and_a_modal_discord_refuses(fake: FakeDiscord) -> None:
    bot = DemoBot()
    async with run_client(bot, fake):
        opened = await fake.slash_command("pick")
        assert (await opened.wait_ack()).type == 9
        submitted = await fake.submit_modal(opened, {"cells": ["1", "3"], "note": "hi"})
        assert (await submitted.wait_original())["content"] == "cells=['1', '3'] note=hi"

        refused = await fake.slash_command("badmodal")
        await fake.wait_until(lambda: bot.errors or None, what="the refused modal")
        assert refused.callback is None and "duplicated" in str(bot.errors[0])


async def test_entitlements_on_interactions_and_events(fake: FakeDiscord) -> None:
    bot = DemoBot(sync=False)

    @bot.event
    async def on_entitlement_create(entitlement: discord.Entitlement) -> None:
        bot.entitlement_events.append(entitlement)

    async with run_client(bot, fake):
        granted = await fake.grant_entitlement(fake.user, 1234)
        await fake.wait_until(lambda: bot.entitlement_events)
        assert bot.entitlement_events[0].sku_id == 1234 and bot.entitlement_events[0].ends_at is None

        in_guild = await fake.slash_command("plan")
        assert (await in_guild.wait_original())["content"] == "guild skus=[1234]"
        await fake.end_entitlement(granted)
        in_dm = await fake.slash_command("plan", dm=True)
        assert (await in_dm.wait_original())["content"] == "dm skus=[]"


async def test_gateway_resume_and_server_error_retry(fake: FakeDiscord) -> None:
    bot = DemoBot(sync=False)
    async with run_client(bot, fake):
        session = await fake.wait_for_client()
        mark = fake.mark()
        await fake.request_reconnect()
        await fake.wait_for(lambda e: isinstance(e, GatewayRecord) and e.t == "RESUMED", since=mark)
        assert session.resumes == 1 and len(fake.sessions) == 1

        fault = fake.inject_error("/channels/*", method="GET", status=502)
        channel = await bot.fetch_channel(fake.channel.id)  # discord.py sleeps 1 s and retries a 502
        assert isinstance(channel, discord.TextChannel) and channel.name == "general"
        assert fault.hits == 1

        interaction = await fake.slash_command("plan")
        assert (await interaction.wait_original())["content"] == "guild skus=[]"


async def test_bodies_discord_refuses_are_refused_by_its_openapi_description(fake: FakeDiscord) -> None:
    """What only Discord's own description knows (an embed title over 256, a command name over 32 characters, a
    button style that does not exist) is refused with 50035, as Discord would; a valid body passes."""
    headers = {"Authorization": f"Bot {fake.bot_token}"}
    channel = f"{fake.api_base}/channels/{fake.channel.id}/messages"
    commands_url = f"{fake.api_base}/applications/{fake.application_id}/commands"
    bad_button = {"type": 1, "components": [{"type": 2, "style": 9, "label": "x", "custom_id": "x"}]}
    async with aiohttp.ClientSession(headers=headers) as session:
        for url, method, body, field in [
            (channel, "POST", {"embeds": [{"title": "t" * 257}]}, "title"),
            (channel, "POST", {"content": "hi", "components": [bad_button]}, "components"),
            (commands_url, "PUT", [{"name": "i" * 33, "description": "draw", "type": 1}], "name"),
        ]:
            async with session.request(method, url, json=body) as response:
                answer = await response.json()
                assert (response.status, answer["code"]) == (400, 50035), answer
                assert field in json.dumps(answer["errors"])
        async with session.post(channel, json={"content": "fine", "embeds": [{"title": "t" * 256}]}) as response:
            assert response.status == 200
    assert len(fake.schema_rejections) == 3
    fake.schema_rejections.clear()


def test_the_most_literal_path_template_wins() -> None:
    from tests.fakediscord.openapi import find_operation

    original = find_operation("PATCH", "/webhooks/1/abc/messages/@original")
    by_id = find_operation("PATCH", "/webhooks/1/abc/messages/22")
    assert original is not None and original.template.endswith("/messages/@original")
    assert by_id is not None and by_id.template.endswith("/messages/{message_id}")
