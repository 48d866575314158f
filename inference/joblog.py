"""The job a log line is about: ``with job_logging(job_id): ...`` tags every record logged inside it.

A context variable, so concurrent deliveries on the bot's event loop and the worker's threads each carry their
own job. :class:`JobIdFilter` copies it onto records as ``record.job_id``; the log formats (``imagine.logs``)
print it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["JobIdFilter", "job_logging"]

_job_id: ContextVar[int | None] = ContextVar("imagine_job_id", default=None)


@contextlib.contextmanager
def job_logging(job_id: int) -> Iterator[None]:
    token = _job_id.set(job_id)
    try:
        yield
    finally:
        _job_id.reset(token)


class JobIdFilter(logging.Filter):
    """Sets ``record.job_id`` (None outside a job) unless the call passed one in ``extra``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = _job_id.get()
        return True
