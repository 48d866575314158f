"""What a job needs from its worker process: the catalog, database sessions, the image store, the models.

Plain values only: the entry points in ``imagine/`` read the settings and pass what is needed down
(:func:`inference.worker.configure`), so nothing in ``inference/`` reads settings itself.
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from domain.catalog import Catalog
from inference.safety import SafetyConfig
from inference.storage import ImageStore

__all__ = ["RENDERERS", "WorkerContext", "owner_name"]

#: What can draw a job's images: ``diffusers`` (the model's pipeline, always in production) or ``noop``
#: (blank images at once, no model loaded, no GPU): the benchmarks and tests that measure the queue and
#: database path use it (``bench/noop_worker.py``); no setting or command line option selects it.
RENDERERS = ("diffusers", "noop")
#: Images of a job encoded and stored at once: a grid and its four images.
IMAGE_THREADS = 5


def owner_name() -> str:
    """How this process names itself as a job's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WorkerContext:
    catalog: Catalog
    database_url: str
    sessions: sessionmaker[Session]
    store: ImageStore
    owner: str
    #: This process's device as configured (``cuda:1``), or None for the default device (first GPU, or CPU).
    device: str | None = None
    #: What torch is given for it (``cuda:0`` once CUDA_VISIBLE_DEVICES is narrowed to that GPU).
    torch_device: str | None = None
    pipelines: Any = field(default=None)  # inference.pipelines.PipelineCache, created on first job
    #: The image safety classifier to run on jobs' images (``IMAGE_SAFETY_MODEL``); None: images are not checked.
    safety_config: SafetyConfig | None = None
    safety: Any = field(default=None)  # inference.safety.SafetyClassifier, loaded on first use
    #: How often a running job says it is alive (``HEARTBEAT_S``); a claim older than a few beats is stale.
    heartbeat_s: float = 5.0
    #: Attempts before a job fails and is refunded (``MAX_ATTEMPTS``), held at claim.
    max_attempts: int = 3
    #: A job's own time limit (``JOB_TIMEOUT_S``), from the start of its compute (the model loads before).
    job_timeout_s: int = 900
    #: Set (in the parent, shared with the children) when a stopping worker's grace period is over: the
    #: running job is handed back (``inference.runner``). None outside a worker process.
    stopping: Any = field(default=None)
    #: One of :data:`RENDERERS`.
    renderer: str = "diffusers"
    image_threads: ThreadPoolExecutor | None = field(default=None)  # see store_threads()

    def __post_init__(self) -> None:
        if self.renderer not in RENDERERS:
            raise ValueError(f"renderer must be one of {', '.join(RENDERERS)}, got {self.renderer!r}")

    def store_threads(self) -> ThreadPoolExecutor:
        """The threads that encode and store a job's images (``inference.runner``), made on first use in
        this process (after fork: threads do not survive it) and kept: starting five threads per job cost
        more than storing a no-op job's images."""
        if self.image_threads is None:
            self.image_threads = ThreadPoolExecutor(max_workers=IMAGE_THREADS, thread_name_prefix="store")
        return self.image_threads

    def pipeline_cache(self) -> Any:
        if self.pipelines is None:
            from inference.pipelines import PipelineCache

            self.pipelines = PipelineCache(device=self.torch_device)
        return self.pipelines

    def safety_classifier(self) -> Any:
        """The image safety classifier, loaded on first use on this process's device (None: not configured)."""
        if self.safety is None and self.safety_config is not None:
            self.safety = self.safety_config.load(self.torch_device)
        return self.safety

    @property
    def device_label(self) -> str:
        """The device for logs and metrics: the configured name, else the one the pipelines chose."""
        if self.device is not None:
            return self.device
        return str(self.pipelines.device) if self.pipelines is not None else "default"
