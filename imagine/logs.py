"""Log set-up for every process: ``LOG_LEVEL`` and ``LOG_FORMAT`` (``text`` or ``json``).

Both formats carry the job a line is about (``inference.joblog``): text appends ``[job 42]``, JSON has a
``job_id`` field, so a log collector can follow one job from the bot's submit through the worker to delivery.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import UTC, datetime
from typing import Any

from inference.joblog import JobIdFilter

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging"]


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        job_id = getattr(record, "job_id", None)
        return f"{text} [job {job_id}]" if job_id is not None else text


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, job_id, process, host, and the traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", None),
            "process": record.process or os.getpid(),
            "host": self.host,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text") -> None:
    """Replace the root logger's handlers with one stderr handler in ``fmt``; quiet discord.py below INFO."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(JobIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(level.upper())))
