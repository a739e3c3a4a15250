"""Settings: defaults, validation messages that name the variable, secrets kept out of sight."""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fluxbot.config import ConfigError, ConfigErrors, Secret, host_instance_name, load_settings
from fluxbot.storage.sqlite_schema import MIGRATIONS
from tests.botprocess import ROOT, SETTINGS, BotProcess, clean_environ
from tests.e2e import World, final_reply, option

BASE = {"DISCORD_TOKEN": "discord-secret-token", "ACEDATA_API_TOKEN": "acedata-secret-token"}


def load(tmp_path: Path, **extra: str):
    env = {"DATABASE_PATH": str(tmp_path / "db" / "fluxbot.db"), **BASE, **extra}
    return load_settings(env, env_file=None)


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(BASE, env_file=None)
    assert settings.flux_api_base_url == "https://api.acedata.cloud"
    assert settings.database_path == Path("data/fluxbot.db")
    assert settings.default_model == "flux-dev"
    assert settings.poll_interval_seconds == 3
    assert settings.job_timeout_seconds == 600
    assert settings.dev_guild_id is None
    assert settings.log_level == "INFO"
    assert (settings.callback_base_url, settings.callback_host, settings.callback_port) == (None, "0.0.0.0", 8080)
    assert settings.image_delivery == "attachment"
    assert (settings.max_jobs_per_member, settings.cooldown_seconds, settings.daily_images_per_member) == (2, 0, 0)
    assert (settings.max_jobs_in_flight, settings.serve_dms) == (20, True)
    assert (settings.provider, settings.kie_api_base_url, settings.kie_api_token) == (
        "acedata",
        "https://api.kie.ai",
        None,
    )


def test_values_are_parsed(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        FLUX_API_BASE_URL="http://127.0.0.1:9999/",
        DEFAULT_MODEL="flux-pro-1.1",
        POLL_INTERVAL_SECONDS="0.5",
        JOB_TIMEOUT_SECONDS="120",
        DEV_GUILD_ID="123456789012345678",
        LOG_LEVEL="debug",
        CALLBACK_BASE_URL="https://bot.example.org/",
        CALLBACK_HOST="127.0.0.1",
        CALLBACK_PORT="9000",
        IMAGE_DELIVERY="url",
    )
    assert settings.callback_base_url == "https://bot.example.org"
    assert (settings.callback_host, settings.callback_port, settings.image_delivery) == ("127.0.0.1", 9000, "url")
    assert settings.flux_api_base_url == "http://127.0.0.1:9999"
    assert settings.default_model == "flux-pro-1.1"
    assert settings.poll_interval_seconds == 0.5
    assert settings.job_timeout_seconds == 120
    assert settings.dev_guild_id == 123456789012345678
    assert settings.log_level == "DEBUG"
    assert (tmp_path / "db").is_dir(), "the database folder is created"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DISCORD_TOKEN", "", "missing. Set it to"),
        ("ACEDATA_API_TOKEN", "   ", "missing. Set it to"),
        ("DISCORD_TOKEN", "two words", "without spaces"),
        ("FLUX_API_BASE_URL", "api.acedata.cloud", "http(s) URL"),
        ("DEFAULT_MODEL", "dall-e", "one of flux-dev"),
        ("POLL_INTERVAL_SECONDS", "fast", "number of seconds"),
        ("POLL_INTERVAL_SECONDS", "0", "between"),
        ("JOB_TIMEOUT_SECONDS", "-5", "between"),
        ("DEV_GUILD_ID", "my-server", "server id"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG"),
        ("CALLBACK_BASE_URL", "bot.example.org", "http(s) URL"),
        ("CALLBACK_PORT", "http", "TCP port"),
        ("CALLBACK_PORT", "70000", "TCP port"),
        ("IMAGE_DELIVERY", "carrier-pigeon", "one of attachment, url"),
        ("MAX_JOBS_PER_MEMBER", "0", "whole number from 1 to 100"),
        ("MAX_JOBS_IN_FLIGHT", "many", "whole number from 1 to 1000"),
        ("COOLDOWN_SECONDS", "-1", "whole number from 0"),
        ("DAILY_IMAGES_PER_MEMBER", "1.5", "whole number from 0"),
        ("MAX_JOBS_PER_MEMBER", "²", "whole number from 1 to 100"),
        ("DEV_GUILD_ID", "¹²³⁴⁵⁶⁷⁸⁹¹²³⁴⁵⁶⁷⁸", "Discord server id"),
        ("SERVE_DMS", "maybe", "true or false"),
        ("FLUX_PROVIDER", "midjourney", "one of acedata, kie"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **{variable: value})
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert expected in str(info.value)


def test_shards_and_instance_default_to_one_process_with_the_host_name(tmp_path: Path) -> None:
    settings = load(tmp_path)
    assert (settings.shard_count, settings.shard_ids) == (None, None)
    assert settings.instance_name == re.sub(r"[^A-Za-z0-9_.-]", "", socket.gethostname())[:63]
    assert settings.instance_name


def test_shards_and_instance_are_parsed(tmp_path: Path) -> None:
    settings = load(tmp_path, SHARD_COUNT="4", SHARD_IDS=" 3, 1 ", INSTANCE_NAME="bot-2.eu_west")
    assert (settings.shard_count, settings.shard_ids, settings.instance_name) == (4, (1, 3), "bot-2.eu_west")
    everything = load(tmp_path, SHARD_COUNT="2")
    assert (everything.shard_count, everything.shard_ids) == (2, None), "all shards of a fixed count"
    assert load(tmp_path, SHARD_COUNT="1", SHARD_IDS="0").shard_ids == (0,)


@pytest.mark.parametrize(
    ("environ", "variable", "expected"),
    [
        ({"SHARD_COUNT": "0"}, "SHARD_COUNT", "whole number of shards from 1 to 100000, got '0'"),
        ({"SHARD_COUNT": "two"}, "SHARD_COUNT", "whole number of shards"),
        ({"SHARD_COUNT": "-1"}, "SHARD_COUNT", "whole number of shards"),
        ({"SHARD_COUNT": "1.5"}, "SHARD_COUNT", "whole number of shards"),
        ({"SHARD_IDS": "0,1"}, "SHARD_IDS", "needs SHARD_COUNT, the total number of shards, set as well"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "2"}, "SHARD_IDS", "shard numbers from 0 to 1 (of SHARD_COUNT=2), got '2'"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0,,1"}, "SHARD_IDS", "comma list of shard numbers"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0,1,"}, "SHARD_IDS", "comma list of shard numbers"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "0 1"}, "SHARD_IDS", "comma list of shard numbers"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "-1"}, "SHARD_IDS", "comma list of shard numbers"),
        ({"SHARD_COUNT": "2", "SHARD_IDS": "one"}, "SHARD_IDS", "comma list of shard numbers"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "١"}, "SHARD_IDS", "comma list of shard numbers"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "1,2,1"}, "SHARD_IDS", "each shard once, got '1,2,1'"),
        ({"SHARD_COUNT": "9" * 5000}, "SHARD_COUNT", "whole number of shards from 1 to 100000"),
        ({"SHARD_COUNT": "4", "SHARD_IDS": "9" * 5000}, "SHARD_IDS", "comma list of shard numbers"),
        ({"MAX_JOBS_PER_MEMBER": "9" * 5000}, "MAX_JOBS_PER_MEMBER", "whole number from 1 to 100"),
        ({"INSTANCE_NAME": "bot 1"}, "INSTANCE_NAME", "letters, digits, '-', '_' or '.', got 'bot 1'"),
        ({"INSTANCE_NAME": 'a"b'}, "INSTANCE_NAME", "letters, digits"),
        ({"INSTANCE_NAME": "x" * 64}, "INSTANCE_NAME", "up to 63"),
    ],
)
def test_bad_shard_and_instance_settings_name_the_variable(
    tmp_path: Path, environ: dict[str, str], variable: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **environ)
    assert info.value.variable == variable
    assert str(info.value).startswith(f"{variable}: ")
    assert expected in str(info.value)


def test_an_odd_host_name_still_makes_a_valid_instance_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "my host (laptop)")
    assert host_instance_name() == "myhostlaptop"
    monkeypatch.setattr(socket, "gethostname", lambda: "Ω" + "a" * 80)
    assert host_instance_name() == "a" * 63
    monkeypatch.setattr(socket, "gethostname", lambda: "ΩΩ")
    assert host_instance_name() == "fluxbot"


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=from-file\nACEDATA_API_TOKEN=from-file\n# comment\nDEFAULT_MODEL=flux-pro\n")
    settings = load_settings({"DEFAULT_MODEL": "flux-2-pro", "DATABASE_PATH": str(tmp_path / "x.db")}, env_file)
    assert settings.discord_token.reveal() == "from-file"
    assert settings.default_model == "flux-2-pro"


def test_secrets_never_show(tmp_path: Path) -> None:
    settings = load(tmp_path)
    shown = repr(settings) + str(settings) + f"{settings.discord_token} {settings.acedata_api_token!r}"
    assert "secret-token" not in shown
    assert settings.discord_token.reveal() == "discord-secret-token"
    assert Secret("a") == Secret("a")
    assert sorted(settings.secrets()) == ["acedata-secret-token", "discord-secret-token"]


def run_bot(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = clean_environ()
    env.update(DISCORD_TOKEN="abc", ACEDATA_API_TOKEN="x-token", **settings)
    return subprocess.run(
        [sys.executable, str(ROOT / "bot.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def test_bot_stops_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    done = run_bot(tmp_path, POLL_INTERVAL_SECONDS="soon")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "fluxbot: configuration error: POLL_INTERVAL_SECONDS: expects a number of seconds, got 'soon'"
    ]
    assert "Traceback" not in done.stderr


def test_a_database_path_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-folder.db").mkdir()
    done = run_bot(tmp_path, DATABASE_PATH=str(tmp_path / "a-folder.db"))
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines() or [""]
    assert line.startswith("fluxbot: configuration error: DATABASE_PATH: a SQLite file the bot can open"), done.stderr
    assert "Traceback" not in done.stderr


def test_a_database_from_a_newer_fluxbot_is_one_line_and_left_untouched(tmp_path: Path) -> None:
    path, newer = tmp_path / "jobs.db", len(MIGRATIONS) + 4
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {newer}")
    raw.close()
    before = path.read_bytes()
    done = run_bot(tmp_path, DATABASE_PATH=str(path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1:] == [
        f"fluxbot: DATABASE_PATH: {path} has schema version {newer}, but this fluxbot knows versions up to "
        f"{len(MIGRATIONS)}; run the newer fluxbot or restore a backup"
    ], done.stderr
    assert "Traceback" not in done.stderr
    assert path.read_bytes() == before


async def test_a_second_bot_on_the_same_database_is_refused_and_the_first_runs_on(world: World) -> None:
    second = BotProcess(world.bot.env, world.bot.cwd)
    await second.start()
    try:
        await world.discord.wait_for(lambda: not second.running, timeout=30)
    finally:
        code = await second.stop()
    assert code == 2, second.output
    path = world.bot.env["DATABASE_PATH"]
    assert second.output.strip().splitlines()[-1:] == [
        f"fluxbot: DATABASE_PATH: {path} is in use by another fluxbot process; stop it first "
        "(SQLite serves one process; DATABASE_URL, for PostgreSQL, serves several)"
    ], second.output
    assert "Traceback" not in second.output
    assert world.bot.running
    interaction = await world.discord.send_slash_command("imagine", [option("prompt", "still here")])
    await final_reply(world, interaction, "Done")


def test_a_callback_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_bot(
            tmp_path,
            DATABASE_PATH=str(tmp_path / "db.sqlite"),
            CALLBACK_BASE_URL="https://bot.example.org",
            CALLBACK_HOST="127.0.0.1",
            CALLBACK_PORT=str(port),
        )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(
        f"fluxbot: configuration error: CALLBACK_PORT: a port the bot can listen on at 127.0.0.1 ({port}"
    )
    assert "Traceback" not in done.stderr


def test_env_example_documents_every_setting_the_bot_reads() -> None:
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', (ROOT / "fluxbot" / "config.py").read_text()))
    settings = read - {"DEBUG", "INFO", "WARNING", "ERROR"}  # log level values, not settings
    assert settings - SETTINGS == set(), "every setting has a line (and a comment) in .env.example"
    assert SETTINGS - settings == set(), ".env.example documents no setting the bot does not read"
    assert len(SETTINGS) >= 24


def env_example_lines() -> list[tuple[bool, str, str]]:
    """Every `NAME=value` line of .env.example: (commented out, name, value)."""
    text = (ROOT / ".env.example").read_text()
    return [(bool(m[1]), m[2], m[3]) for m in re.finditer(r"^(# ?)?([A-Z][A-Z0-9_]+)=(.*)$", text, re.M)]


def test_a_copied_env_example_sets_only_the_two_tokens_to_fill_in() -> None:
    """A .env copied from the example pins no default: after an upgrade the new defaults apply."""
    lines = env_example_lines()
    assert [(name, value) for commented, name, value in lines if not commented] == [
        ("DISCORD_TOKEN", ""),
        ("ACEDATA_API_TOKEN", ""),
    ]
    assert {name for _, name, _ in lines} == SETTINGS, "each setting has exactly one line"
    assert len(lines) == len(SETTINGS)


def test_every_commented_line_of_env_example_shows_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Removing the # of any line changes no setting, so the values shown are the defaults the code uses."""
    monkeypatch.chdir(tmp_path)
    defaults = load_settings(BASE, env_file=None)
    for commented, name, value in env_example_lines():
        if commented:
            assert load_settings({**BASE, name: value}, env_file=None) == defaults, f"{name}={value} is no default"
    assert defaults.metrics_port is None, "METRICS_PORT is off unless set (the Docker image sets it)"


def test_the_env_example_filled_in_as_the_readme_says_starts_with_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    text = (ROOT / ".env.example").read_text()
    for name, value in BASE.items():
        text = text.replace(f"\n{name}=\n", f"\n{name}={value}\n")
    (tmp_path / ".env").write_text(text)
    assert load_settings({}) == load_settings(BASE, env_file=None)


def test_only_the_chosen_providers_key_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, FLUX_PROVIDER="kie")
    assert info.value.variable == "KIE_API_TOKEN"
    on_kie = load_settings(
        {"DISCORD_TOKEN": "d", "FLUX_PROVIDER": "kie", "KIE_API_TOKEN": "k", "DATABASE_PATH": str(tmp_path / "f.db")},
        env_file=None,
    )
    assert (on_kie.provider, on_kie.acedata_api_token, on_kie.default_model) == ("kie", None, "flux-kontext-pro")


def test_the_operator_blocklist_file_is_read_and_a_bad_line_is_named(tmp_path: Path) -> None:
    rules = tmp_path / "blocklist.txt"
    rules.write_text("# shipped with the bot\nnude\n\n  re:gore\\s*fest  \n", encoding="utf-8")
    env = {**BASE, "DATABASE_PATH": str(tmp_path / "x.db"), "BLOCKLIST_FILE": str(rules)}
    assert load_settings(env, env_file=None).blocklist == ("nude", r"re:gore\s*fest")
    assert load_settings({**BASE, "DATABASE_PATH": str(tmp_path / "x.db")}, env_file=None).blocklist == ()

    rules.write_text("nude\nre:(a)\\1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"BLOCKLIST_FILE: .*blocklist.txt, line 2: .*no back-references"):
        load_settings(env, env_file=None)
    with pytest.raises(ConfigError, match=r"BLOCKLIST_FILE: cannot read .*missing\.txt"):
        load_settings({**env, "BLOCKLIST_FILE": str(tmp_path / "missing.txt")}, env_file=None)


def test_black_forest_labs_settings_default_to_the_global_region(tmp_path: Path) -> None:
    defaults = load(tmp_path)
    assert (defaults.bfl_api_key, defaults.bfl_region, defaults.bfl_api_base_url) == (
        None,
        "global",
        "https://api.bfl.ai",
    )
    assert defaults.bfl_webhook_secret is None
    on_bfl = load(tmp_path, FLUX_PROVIDER="bfl", BFL_API_KEY="bfl-secret-key", BFL_WEBHOOK_SECRET="bfl-hook-secret")
    assert (on_bfl.provider, on_bfl.default_model, on_bfl.provider_info.label) == (
        "bfl",
        "flux-2-pro",
        "Black Forest Labs",
    )
    assert "bfl-secret-key" not in repr(on_bfl)
    assert "bfl-hook-secret" not in repr(on_bfl)
    assert {"bfl-secret-key", "bfl-hook-secret"} <= set(on_bfl.secrets()), "scrubbed from every log line"


@pytest.mark.parametrize(
    ("region", "url"),
    [("global", "https://api.bfl.ai"), ("eu", "https://api.eu.bfl.ai"), ("US", "https://api.us.bfl.ai")],
)
def test_bfl_region_picks_the_address_and_bfl_api_base_url_overrides_it(tmp_path: Path, region: str, url: str) -> None:
    settings = load(tmp_path, BFL_REGION=region)
    assert (settings.bfl_region, settings.bfl_api_base_url) == (region.lower(), url)
    proxied = load(tmp_path, BFL_REGION=region, BFL_API_BASE_URL="http://127.0.0.1:9000/")
    assert proxied.bfl_api_base_url == "http://127.0.0.1:9000"


def test_bfl_problems_are_reported_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, FLUX_PROVIDER="bfl", BFL_REGION="asia", BFL_API_BASE_URL="api.bfl.ai",
             BFL_WEBHOOK_SECRET="two words")  # fmt: skip
    messages = {error.variable: str(error) for error in info.value.errors}
    assert set(messages) == {"BFL_API_KEY", "BFL_REGION", "BFL_API_BASE_URL", "BFL_WEBHOOK_SECRET"}
    assert "missing. Set it to your Black Forest Labs API key" in messages["BFL_API_KEY"]
    assert "expects one of global, eu, us, got 'asia'" in messages["BFL_REGION"]
    assert "http(s) URL" in messages["BFL_API_BASE_URL"]
    assert "without spaces" in messages["BFL_WEBHOOK_SECRET"]


def test_fal_settings(tmp_path: Path) -> None:
    defaults = load(tmp_path)
    assert (defaults.fal_key, defaults.fal_queue_url, defaults.fal_jwks_url) == (
        None, "https://queue.fal.run", "https://rest.alpha.fal.ai/.well-known/jwks.json"
    )  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load(tmp_path, FLUX_PROVIDER="fal")
    assert info.value.variable == "FAL_KEY"
    assert "your fal.ai API key" in str(info.value)
    on_fal = load_settings(
        {"DISCORD_TOKEN": "d", "FLUX_PROVIDER": "fal", "FAL_KEY": "key-id:key-secret-value",
         "FAL_QUEUE_URL": "http://127.0.0.1:8000/", "FAL_JWKS_URL": "http://127.0.0.1:8000/jwks.json",
         "DATABASE_PATH": str(tmp_path / "f.db")},
        env_file=None,
    )  # fmt: skip
    assert (on_fal.provider, on_fal.default_model, on_fal.fal_queue_url, on_fal.fal_jwks_url) == (
        "fal", "flux-dev", "http://127.0.0.1:8000", "http://127.0.0.1:8000/jwks.json"
    )  # fmt: skip
    assert on_fal.provider_info.name == "fal"
    assert "key-secret-value" not in repr(on_fal)
    assert sorted(on_fal.secrets()) == ["d", "key-id:key-secret-value", "key-secret-value"]
    assert load(tmp_path, FAL_KEY="an-older-key-without-id").fal_key == Secret("an-older-key-without-id")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("FAL_QUEUE_URL", "queue.fal.run", "expects an http(s) URL such as https://queue.fal.run"),
        ("FAL_JWKS_URL", "http://rest.alpha.fal.ai/.well-known/jwks.json", "expects an https URL"),
        ("FAL_KEY", "id:secret:more", "KEY_ID:KEY_SECRET (one colon, text on both sides)"),
        ("FAL_KEY", ":secret", "KEY_ID:KEY_SECRET"),
        ("FAL_KEY", "id secret", "a single token without spaces"),
    ],
)
def test_bad_fal_values_name_the_variable_and_never_repeat_the_key(
    tmp_path: Path, variable: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **{variable: value})
    assert info.value.variable == variable
    assert expected in str(info.value)
    if variable == "FAL_KEY":
        assert "secret" not in str(info.value).replace("KEY_SECRET", "")
