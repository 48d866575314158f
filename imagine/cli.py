"""The ``imagine`` command line.

    imagine run                 everything on one machine (embedded PostgreSQL and Redis when no URLs are set)
    imagine bot                 the Discord bot only
    imagine worker              a Celery GPU worker
    imagine migrate             apply database migrations
    imagine tiny-model DIR      write a tiny random-weight model and a models file naming it
    imagine generate PROMPT     render one 2x2 grid locally, no Discord, no queue
    imagine parse PROMPT        show how a prompt is read, as JSON
    imagine admin ...           plans, grants and usage (see imagine/admin.py)
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from domain.errors import DomainError
from imagine.checks import StartupError
from imagine.settings import Settings, SettingsError

__all__ = ["main"]

log = logging.getLogger("imagine")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "a setting"
        raise SettingsError(f"{name}: {first['msg']}") from exc


def _configure_logging(settings: Settings) -> None:
    from imagine.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)


def cmd_run(args: argparse.Namespace) -> int:
    from imagine.runner import run_all

    settings = _settings()
    settings.require_token()
    _configure_logging(settings)
    return run_all(settings)


def cmd_bot(args: argparse.Namespace) -> int:
    from imagine.runner import require_urls, run_bot_forever

    settings = _settings()
    settings.require_token()
    _configure_logging(settings)
    database_url, broker_url = require_urls(settings)
    return run_bot_forever(settings, database_url, broker_url)


def cmd_worker(args: argparse.Namespace) -> int:
    from imagine.runner import require_urls, run_worker

    settings = _settings()
    _configure_logging(settings)
    database_url, broker_url = require_urls(settings)
    return run_worker(settings, database_url, broker_url, queues=args.queues)


def cmd_migrate(args: argparse.Namespace) -> int:
    from db.migrate import upgrade
    from imagine.checks import check_database
    from imagine.runner import require_urls

    settings = _settings()
    _configure_logging(settings)
    database_url, _ = require_urls(settings, need_broker=False)
    check_database(database_url)
    upgrade(database_url, args.revision)
    print(f"database is at revision {args.revision}")
    return 0


def cmd_tiny_model(args: argparse.Namespace) -> int:
    from inference.tiny import write_tiny_model

    models_file = write_tiny_model(Path(args.dir))
    print(f"wrote tiny models of every family; use them with MODELS_FILE={models_file}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from domain.catalog import load_catalog
    from domain.prompt import parse_prompt
    from inference.generate import generate_grid_png

    settings = _settings()
    catalog = load_catalog(settings.models_path)
    parsed = parse_prompt(args.prompt, catalog)
    out = Path(args.out)
    for index, spec in enumerate(parsed.specs):
        path = out if index == 0 else out.with_name(f"{out.stem}-{index + 1}{out.suffix}")
        generate_grid_png(catalog, spec, path)
        print(f"{path} ({spec.width}x{spec.height} tiles, seed {spec.seed})")
    for note in parsed.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_parse(args: argparse.Namespace) -> int:
    from domain.catalog import load_catalog
    from domain.prompt import main_parse

    settings = _settings()
    code, text = main_parse(args.prompt, load_catalog(settings.models_path))
    print(text, file=sys.stdout if code == 0 else sys.stderr)
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagine", description="A self-hosted, Midjourney-style Discord bot.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="run everything on this machine").set_defaults(func=cmd_run)
    sub.add_parser("bot", help="run the Discord bot").set_defaults(func=cmd_bot)
    worker = sub.add_parser("worker", help="run a GPU worker")
    worker.add_argument("--queues", default=None, help="comma-separated queues (default: all models, all lanes)")
    worker.set_defaults(func=cmd_worker)
    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.add_argument("revision", nargs="?", default="head")
    migrate.set_defaults(func=cmd_migrate)
    tiny = sub.add_parser("tiny-model", help="write tiny random-weight models of every family for offline tests")
    tiny.add_argument("dir")
    tiny.set_defaults(func=cmd_tiny_model)
    generate = sub.add_parser("generate", help="render one grid locally")
    generate.add_argument("prompt")
    generate.add_argument("--out", default="grid.png")
    generate.set_defaults(func=cmd_generate)
    parse = sub.add_parser("parse", help="show how a prompt is read, as JSON")
    parse.add_argument("prompt")
    parse.set_defaults(func=cmd_parse)
    from imagine.admin import add_admin_parser

    add_admin_parser(sub, _settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (SettingsError, StartupError, DomainError) as exc:
        print(f"imagine: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
