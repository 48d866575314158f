"""``python -m bench.noop_worker``: ``imagine worker`` with the ``noop`` renderer (blank images, no model).

The real worker (Celery prefork, claim, heartbeat, store, finish, settle, NOTIFY) with only the pipeline
left out, so the queue's own throughput can be measured (``bench/throughput.py``). Settings come from the
environment as for ``imagine worker``. Not for members: it draws nothing.
"""

from __future__ import annotations

import sys

from imagine.runner import require_urls, run_worker
from imagine.settings import Settings


def main() -> int:
    from imagine.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    database_url, broker_url = require_urls(settings)
    return run_worker(settings, database_url, broker_url, renderer="noop")


if __name__ == "__main__":
    sys.exit(main())
