"""What the bot measures, as Prometheus metrics: acknowledgements, deliveries, and the queue depth.

The queue depth is read from PostgreSQL (the truth; Redis may hold a re-published message twice) when
``/metrics`` is scraped, in the monitoring server's thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import discord
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from db import jobs as jobs_db

__all__ = ["ACK_SECONDS", "DELIVERIES", "DELIVERY_ERRORS", "QueueDepthCollector", "observe_ack"]

ACK_SECONDS = Histogram(
    "imagine_interaction_ack_seconds",
    "Seconds from an interaction's creation (its snowflake) to the bot's acknowledgement; Discord allows 3.",
    ["command"],
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5),
)
DELIVERIES = Counter("imagine_deliveries", "Final job messages shown on Discord, by the job's state.", ["state"])
DELIVERY_ERRORS = Counter("imagine_delivery_errors", "Deliveries that raised (retried by the next reconcile).")


def observe_ack(interaction: discord.Interaction[Any], command: str) -> None:
    """Call right after ``interaction.response`` acknowledged ``interaction``."""
    ACK_SECONDS.labels(command).observe(max(0.0, (datetime.now(UTC) - interaction.created_at).total_seconds()))


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

