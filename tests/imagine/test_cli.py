"""The `imagine` command line as an operator uses it: clear one-line errors, offline generation, parse."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.fakediscord import FakeDiscord
from tests.support.services import REPO


def imagine(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "imagine.cli", *args], cwd=REPO, env={**base, **(env or {})},
        capture_output=True, text=True, timeout=timeout,
    )


def test_bot_without_a_token_says_so_in_one_line(tmp_path: Path) -> None:
    result = imagine("bot", env={"DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "DISCORD_TOKEN is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "abc.def", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
           "REDIS_URL": "redis://127.0.0.1:1/0", "DATA_DIR": str(tmp_path)}
    result = imagine("bot", env=env)
    assert result.returncode == 2
    assert result.stderr.startswith("imagine: Cannot reach PostgreSQL at postgresql://nobody@127.0.0.1:1/none")
    assert "Traceback" not in result.stderr


def test_an_unreachable_redis_is_one_clear_line(tmp_path: Path, database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "REDIS_URL": "redis://127.0.0.1:1/0", "DATA_DIR": str(tmp_path)}
    result = imagine("worker", env=env)
    assert result.returncode == 2
    assert "Cannot reach Redis at redis://127.0.0.1:1/0" in result.stderr
    assert "Traceback" not in result.stderr


def test_tiny_model_then_generate_writes_a_2x2_grid(tmp_path: Path) -> None:
    made = imagine("tiny-model", str(tmp_path / "tiny"))
    assert made.returncode == 0, made.stderr
    models = tmp_path / "tiny" / "models.toml"
    assert models.exists()
    out = tmp_path / "grid.png"
    result = imagine("generate", "a fox --seed 7", "--out", str(out), env={"MODELS_FILE": str(models)})
    assert result.returncode == 0, result.stderr
    with Image.open(out) as grid:
        tile = json.loads(imagine("parse", "a fox --seed 7", env={"MODELS_FILE": str(models)}).stdout)
        assert grid.size == (2 * tile["width"], 2 * tile["height"])
        assert len(set(grid.getdata())) > 100  # noise from a random model, not a blank image


def test_parse_prints_json_and_fails_with_exit_2_on_a_bad_prompt(tiny_models: Path) -> None:
    env = {"MODELS_FILE": str(tiny_models)}
    ok = imagine("parse", "a lighthouse --ar 16:9 --seed 42 --no people", env=env)
    assert ok.returncode == 0, ok.stderr
    spec = json.loads(ok.stdout)
    assert spec["seed"] == 42 and spec["width"] > spec["height"] and "people" in spec["negative_prompt"]
    bad = imagine("parse", "a lighthouse --ar 0:1", env=env)
    assert bad.returncode == 2
    assert "--ar" in bad.stderr and "Traceback" not in bad.stderr


#: The tiny model of each family (``inference.tiny``).
FAMILY_MODELS = ["tiny", "tiny-xl", "tiny-sd3", "tiny-flux", "tiny-flux2", "tiny-zimage", "tiny-qwenimage"]


@pytest.mark.parametrize("model", FAMILY_MODELS)
def test_generate_writes_a_2x2_grid_on_every_family(tiny_models: Path, tmp_path: Path, model: str) -> None:
    out = tmp_path / "grid.png"
    env = {"MODELS_FILE": str(tiny_models)}
    result = imagine("generate", f"a fox --model {model}", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    tile = json.loads(imagine("parse", f"a fox --model {model}", env=env).stdout)
    with Image.open(out) as grid:
        assert grid.size == (2 * tile["width"], 2 * tile["height"])
        quadrants = [grid.crop((x, y, x + tile["width"], y + tile["height"])).tobytes()
                     for y in (0, tile["height"]) for x in (0, tile["width"])]
        assert len(set(quadrants)) == 4  # four different images, not one repeated or a blank


def test_an_unreachable_discord_api_is_one_clear_line(tmp_path: Path, database_url: str, redis_url: str) -> None:
    env = {"DISCORD_TOKEN": "abc.def", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
           "DISCORD_API_BASE": "http://127.0.0.1:1/api/v10", "DATA_DIR": str(tmp_path)}
    result = imagine("bot", env=env)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("imagine: Cannot reach Discord's API at http://127.0.0.1:1/api/v10 (check DISCORD_API_BASE")
    assert "Traceback" not in result.stderr


async def test_a_refused_token_is_one_clear_line(tmp_path: Path, database_url: str, redis_url: str) -> None:
    async with FakeDiscord() as fake:
        env = {"DISCORD_TOKEN": "not-the-bot-token", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
               "DISCORD_API_BASE": fake.api_base, "DISCORD_GATEWAY_URL": fake.gateway_url, "DATA_DIR": str(tmp_path)}
        result = await asyncio.to_thread(imagine, "bot", env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("imagine: Discord refused the token (check DISCORD_TOKEN)")
    assert "Traceback" not in result.stderr
