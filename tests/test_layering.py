"""The layering rules the design card sets: the domain imports no adapter library, the bot no torch."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.services import REPO


def loaded_after_import(modules: str) -> set[str]:
    code = (
        "import sys, json\n"
        f"import {modules}\n"
        "print(json.dumps(sorted(m for m in ('torch', 'diffusers', 'transformers', 'discord', 'sqlalchemy',"
        " 'celery') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_the_domain_imports_no_discord_torch_or_sql() -> None:
    assert loaded_after_import("domain.prompt, domain.catalog, domain.spec, domain.errors") == set()


def test_the_bot_does_not_import_torch() -> None:
    loaded = loaded_after_import("bot.client, bot.cogs.imagine, bot.delivery, imagine.cli, imagine.runner")
    assert "discord" in loaded and not loaded & {"torch", "diffusers", "transformers"}
