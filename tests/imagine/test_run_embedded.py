"""`imagine run` on a machine with nothing else running: embedded PostgreSQL and Redis, a worker, the bot."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from imagine.services import EmbeddedPostgres
from tests.fakediscord import FakeDiscord
from tests.support.messages import shows_result
from tests.support.services import REPO


@pytest.fixture
def data_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="imagine-run-"))
    root.chmod(0o755)  # the embedded server runs as its own system user when tests run as root
    yield root
    shutil.rmtree(root, ignore_errors=True)


async def test_imagine_run_serves_imagine_with_no_other_service(tiny_models: Path, data_root: Path) -> None:
    log_path = data_root / "run.log"
    async with FakeDiscord() as fake:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(data_root),
            "PYTHONUNBUFFERED": "1",
            "DISCORD_TOKEN": fake.bot_token,
            "DISCORD_API_BASE": fake.api_base,
            "DISCORD_GATEWAY_URL": fake.gateway_url,
            "MODELS_FILE": str(tiny_models),
            "DATA_DIR": str(data_root / "data"),
            "PROGRESS_INTERVAL_S": "0.5",
        }
        with log_path.open("w") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "imagine.cli", "run", cwd=REPO, env=env, stdout=log, stderr=log
            )
        try:
            await fake.wait_until(lambda: "imagine" in fake.global_commands, timeout=120)
            interaction = await fake.slash_command("imagine", {"prompt": "a fox in the snow --seed 1"})
            message = await interaction.wait_original(shows_result, timeout=120)
            assert fake.files(message)[0].image().size[0] > 0
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=60)
        except BaseException:
            if process.returncode is None:
                process.kill()
                await process.wait()
            print(log_path.read_text())
            raise
    assert code == 0, log_path.read_text()

    # Everything stopped, and the data is on disk: the job is still there on the next start.
    server = EmbeddedPostgres(data_root / "data" / "postgres")
    try:
        conninfo = server.url.replace("/postgres?", "/imagine?")
        with psycopg.connect(conninfo) as conn:
            rows = conn.execute("SELECT state, delivered_state FROM jobs").fetchall()
    finally:
        server.stop()
    assert rows == [("succeeded", "succeeded")]
