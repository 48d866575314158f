"""What the bot measures, as Prometheus metrics: acknowledgements, deliveries, the event loop's lag, and the
queue depth.

The queue depth is read from PostgreSQL (the truth; Redis may hold a re-published message twice) when
``/metrics`` is scraped, in the monitoring server's thread, never on the event loop.

The event loop's lag: :func:`watch_event_loop` runs on the bot's loop, sleeps :data:`LOOP_PROBE_S` at a time
and records how late it woke. Whatever holds the loop (synchronous work in a handler) delays every other
handler by as much, acknowledgements included, and discord.py's gateway heartbeats too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import discord
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db

__all__ = [
    "ACK_SECONDS",
    "DELIVERIES",
    "DELIVERY_ERRORS",
    "LOOP_LAG_MAX",
    "LOOP_LAG_SECONDS",
    "LOOP_PROBE_S",
    "QueueDepthCollector",
    "observe_ack",
    "watch_event_loop",
]

#: How often the loop-lag probe wakes: a stall is seen to within this.
LOOP_PROBE_S = 0.02

ACK_SECONDS = Histogram(
    "imagine_interaction_ack_seconds",
    "Seconds from an interaction's creation (its snowflake) to the bot's acknowledgement; Discord allows 3.",
    ["command"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5),
)
DELIVERIES = Counter("imagine_deliveries", "Final job messages shown on Discord, by the job's state.", ["state"])
DELIVERY_ERRORS = Counter("imagine_delivery_errors", "Deliveries that raised (retried by the next reconcile).")
LOOP_LAG_SECONDS = Histogram(
    "imagine_bot_event_loop_lag_seconds",
    f"How late the bot's event loop woke a {LOOP_PROBE_S} s timer: how long every other handler waited then.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class _LongestStall(Collector):
    """``imagine_bot_event_loop_lag_max_seconds``: the longest lag since the previous scrape, so that no
    stall between two scrapes goes unseen (one scraper: a second one would share the stalls out)."""

    name = "imagine_bot_event_loop_lag_max_seconds"
    help = "The bot's longest event-loop stall since the previous scrape of /metrics."

    def __init__(self) -> None:
        self._lock = threading.Lock()  # scrapes run in the monitoring server's thread
        self._longest = 0.0

    def observe(self, lag_s: float) -> None:
        with self._lock:
            self._longest = max(self._longest, lag_s)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(self.name, self.help)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            longest, self._longest = self._longest, 0.0
        yield GaugeMetricFamily(self.name, self.help, value=longest)


LOOP_LAG_MAX = _LongestStall()
REGISTRY.register(LOOP_LAG_MAX)


def observe_ack(interaction: discord.Interaction[Any], command: str) -> None:
    """Call right after ``interaction.response`` acknowledged ``interaction``."""
    ACK_SECONDS.labels(command).observe(max(0.0, (datetime.now(UTC) - interaction.created_at).total_seconds()))


async def watch_event_loop(interval_s: float = LOOP_PROBE_S) -> None:
    """Until cancelled: sleep ``interval_s`` on the running loop and record how late each wake-up came."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(interval_s)
        lag = max(0.0, loop.time() - before - interval_s)
        LOOP_LAG_SECONDS.observe(lag)
        LOOP_LAG_MAX.observe(lag)


class QueueDepthCollector(Collector):
    """``imagine_queue_depth{model, lane, state}``: queued and running jobs, from PostgreSQL at each scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "imagine_queue_depth", "Jobs queued or running, by model, lane and state (from PostgreSQL).",
            labels=["model", "lane", "state"],
        )
        with self.sessions() as session:
            for model, lane, state, count in jobs_db.live_counts(session=session):
                gauge.add_metric([model, lane, state], count)
        yield gauge

