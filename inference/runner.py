"""Running one job: claim → render → store → finish → wake the bot.

This is the body of the Celery task, kept apart from Celery so it reads (and tests) as plain code.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image as PILImage
from sqlalchemy.exc import DBAPIError, OperationalError

from db import jobs as jobs_db
from db import moderation as moderation_db
from db.models import Job
from domain.actions import STRONG_STRENGTH, UPSCALE_FACTOR
from domain.canvas import region_boxes
from domain.draft import job_models
from domain.moderation import ImageAction
from domain.spec import JobKind, JobSpec, JobState
from inference.canvas import Prepared, boxes_mask, paste_back, prepare_outpaint, prepare_region
from inference.dispatch import stale_after
from inference.grid import LOSSLESS
from inference.joblog import job_logging
from inference.metrics import observe_finished
from inference.storage import ImageNotFoundError

if TYPE_CHECKING:
    from PIL.Image import Image

    from inference.context import WorkerContext
    from inference.pipelines import RenderResult
    from inference.safety import SafetyClassifier

__all__ = ["run_job"]

log = logging.getLogger(__name__)

#: Progress is written to the database at most this often.
PROGRESS_EVERY_S = 1.0
#: WebP settings of a stored preview: small (a few KB at 512 px) and quick to encode (a few ms).
PREVIEW_WEBP: dict[str, Any] = {"format": "WEBP", "quality": 75, "method": 0}
#: How long a finished job keeps trying to record its result while the database is unreachable.
FINISH_RETRY_S = 120.0
#: The message of a job whose images the safety classifier flagged where the policy blocks them.
BLOCKED = "This image was blocked by this server's image filter. Try a different prompt."


def _store_pngs(ctx: WorkerContext, images: Sequence[tuple[str, Image]]) -> None:
    """Store each ``(key, image)`` as PNG in the fastest lossless encoding (``inference.grid.LOSSLESS``),
    which the bot then uploads as it is whenever it fits. All at once (``WorkerContext.store_threads``):
    the store's write (an fsync, an upload) releases the GIL, so the writes overlap instead of adding up
    (five serial fsyncs were a sixth of a no-op job). Returns once all are stored; raises the first error."""
    def put(key: str, image: Image) -> None:
        ctx.store.put(key, LOSSLESS[0].encode(image), "image/png")

    pool = ctx.store_threads()
    for stored in [pool.submit(put, key, image) for key, image in images]:
        stored.result()


class _Heartbeat(threading.Thread):
    """Keeps the claim alive while the GPU works, and notices a cancel request."""

    def __init__(self, ctx: WorkerContext, job_id: int) -> None:
        super().__init__(name=f"heartbeat-{job_id}", daemon=True)
        self.ctx, self.job_id = ctx, job_id
        self.stop_event = threading.Event()
        self.cancelled = threading.Event()

    def run(self) -> None:
        with job_logging(self.job_id):
            self._beat()

    def _beat(self) -> None:
        while not self.stop_event.wait(self.ctx.heartbeat_s):
            try:
                with self.ctx.sessions() as session, session.begin():
                    alive = jobs_db.heartbeat(session=session, job_id=self.job_id, owner=self.ctx.owner)
                if not alive:
                    self.cancelled.set()
            except Exception:  # a DB blip must not kill the job; the next beat retries
                log.warning("heartbeat for job %s failed", self.job_id, exc_info=True)


class _Progress:
    """The step callback: records progress (and a preview) at most every PROGRESS_EVERY_S.

    Each preview is stored as WebP under a new key (``jobs/<id>/preview-<step>.webp``) so the bot can tell
    a new one from the one it last showed; the previous one is deleted once the row names the new one, and
    the last one when the job ends (:meth:`discard`). Previews are cosmetic: a failure to store one is
    logged and the job goes on.
    """

    def __init__(self, ctx: WorkerContext, job_id: int, heartbeat: _Heartbeat, *, previews: bool = True) -> None:
        self.ctx, self.job_id, self.heartbeat = ctx, job_id, heartbeat
        #: The job's time limit (``JOB_TIMEOUT_S``), from the start of its compute: the model is loaded
        #: before (``inference.worker.preload``), and the pipeline stops at the next step past it.
        self.deadline = time.monotonic() + ctx.job_timeout_s
        self.timed_out = False
        #: False for a job whose images are checked when done: a preview would show them unchecked.
        self.previews = previews
        self.last = 0.0
        self.preview_key: str | None = None

    def want_preview(self, step: int) -> bool:
        return self.previews and time.monotonic() - self.last >= PROGRESS_EVERY_S

    def __call__(self, step: int, total: int, preview: Image | None) -> None:
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_S and step < total:
            return
        self.last = now
        preview_key = self._store_preview(step, preview) if preview is not None and self.previews else None
        try:
            with self.ctx.sessions() as session, session.begin():
                alive = jobs_db.record_progress(
                    session=session, job_id=self.job_id, owner=self.ctx.owner, step=step, total=total,
                    preview_key=preview_key,
                )
                jobs_db.notify(session=session, job_id=self.job_id)
        except DBAPIError:  # the database is briefly away: progress is cosmetic, the GPU work goes on
            log.warning("job %s: could not record progress", self.job_id, exc_info=True)
            self._delete(preview_key)
            return
        if preview_key is not None:
            self._delete(self.preview_key)
            self.preview_key = preview_key
        if not alive:
            self.heartbeat.cancelled.set()

    def _store_preview(self, step: int, preview: Image) -> str | None:
        key = f"jobs/{self.job_id}/preview-{step}.webp"
        try:
            buffer = io.BytesIO()
            preview.convert("RGB").save(buffer, **PREVIEW_WEBP)
            self.ctx.store.put(key, buffer.getvalue(), "image/webp")
        except Exception:
            log.warning("job %s: could not store a preview", self.job_id, exc_info=True)
            return None
        return key

    def _delete(self, key: str | None) -> None:
        if key is None:
            return
        try:
            self.ctx.store.delete(key)
        except Exception:
            log.warning("job %s: could not delete preview %s", self.job_id, key, exc_info=True)

    def discard(self) -> None:
        """Delete the last preview (the job has ended; its message shows the result now)."""
        self._delete(self.preview_key)
        self.preview_key = None

    def should_cancel(self) -> bool:
        if time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out or self.handed_back or self.heartbeat.cancelled.is_set()

    @property
    def handed_back(self) -> bool:
        """The worker is stopping and its grace period is over: give the job back (it runs again elsewhere)."""
        return self.ctx.stopping is not None and self.ctx.stopping.is_set()


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` is a process on this host that no longer exists (a killed worker child).

    A redelivered message for a job whose process died can then be taken over at once; owners on
    other hosts are left to the heartbeat.
    """
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def run_job(ctx: WorkerContext, job_id: int) -> JobState | None:
    """Run a job if we can claim it. Returns the final state, None when someone else has the job, or
    ``JobState.QUEUED`` when the member's running limit for the lane holds it back (it waits, unpublished,
    until one of their jobs ends). Every line logged meanwhile carries the job id."""
    with job_logging(job_id):
        return _run_job(ctx, job_id)


def _run_job(ctx: WorkerContext, job_id: int) -> JobState | None:
    stale = stale_after(ctx.heartbeat_s)
    max_attempts = ctx.max_attempts
    with ctx.sessions() as session, session.begin():
        current = jobs_db.owner_of(session=session, job_id=job_id)
        dead = [current] if current is not None and owner_is_dead(current) else []
        job = jobs_db.claim(session=session, job_id=job_id, owner=ctx.owner, stale_after=stale, dead_owners=dead,
                            max_attempts=max_attempts)
        if job is None:
            given_up = jobs_db.give_up(session=session, job_id=job_id, stale_after=stale, dead_owners=dead,
                                       max_attempts=max_attempts)
            if given_up is not None:
                jobs_db.notify(session=session, job_id=job_id)
                last = f"its worker {current} died while running it" if dead else "its worker stopped heartbeating"
                log.error("job %s given up after %d attempts; last error: %s", job_id, given_up.attempts, last)
                return JobState.FAILED
            if jobs_db.held_back(session=session, job_id=job_id):
                jobs_db.hold(session=session, job_id=job_id)
                log.info("job %s: held back by its member's running limit until one of their jobs ends", job_id)
                return JobState.QUEUED
            log.info("job %s: not claimable (done, cancelled, or running elsewhere); skipped", job_id)
            return None
        jobs_db.notify(session=session, job_id=job_id)
        spec = JobSpec.from_dict(job.spec)
        kind = JobKind(job.kind)
        wait_s = (job.started_at - job.queued_at).total_seconds() if job.started_at else None
        where = {"user_id": job.user_id, "guild_id": job.guild_id, "channel_id": job.channel_id,
                 "prompt": job.prompt}
        action = ImageAction(job.image_action) if job.image_action else ImageAction.ALLOW

    heartbeat = _Heartbeat(ctx, job_id)
    heartbeat.start()
    # Images checked when done show no previews: a preview would show them before the check.
    checked = action is not ImageAction.ALLOW and ctx.safety_config is not None
    progress = _Progress(ctx, job_id, heartbeat, previews=not checked)
    cause = None
    try:
        check = _ImageCheck(ctx.safety_classifier(), action) if checked else None
        state, fields = _render(ctx, job_id, kind, spec, progress, check=check)
        if progress.timed_out:
            cause = "time_limit"
    except Exception as exc:
        log.exception("job %s failed", job_id)
        state, fields, cause = JobState.FAILED, {"error": _user_error(exc)}, failure_cause(exc)
    # The heartbeat goes on until the outcome is recorded: a finish that waits for PostgreSQL to come back
    # must not look like a dead worker to the reaper meanwhile.
    try:
        return _record(ctx, job_id, kind, spec, state, fields, progress, where=where, cause=cause, wait_s=wait_s)
    finally:
        heartbeat.stop_event.set()


def _record(ctx: WorkerContext, job_id: int, kind: JobKind, spec: JobSpec, state: JobState, fields: dict[str, Any],
            progress: _Progress, *, where: dict[str, Any], cause: str | None, wait_s: float | None) -> JobState | None:
    """Hand the job back, or record its outcome; see :func:`run_job`."""
    if state is JobState.QUEUED:  # handed back at shutdown: not an attempt; another worker runs it
        progress.discard()
        with ctx.sessions() as session, session.begin():
            handed = jobs_db.hand_back(session=session, job_id=job_id, owner=ctx.owner)
        log.info("job %s: handed back at shutdown%s", job_id, "" if handed else " (it was no longer ours)")
        return None
    event = fields.pop("moderation", None)
    try:
        finished = _finish(ctx, job_id, state, fields, event={**where, "kind": event} if event else None)
    finally:
        progress.discard()
    if finished is None:
        log.warning("job %s: lost the claim before finishing; result dropped", job_id)
        return None
    log.info("job %s: %s (%s ms on %s)", job_id, state.value, fields.get("gpu_ms"), ctx.device_label)
    observe_finished(
        model=spec.model, lane=finished.lane, kind=kind.value, state=state.value, device=ctx.device_label,
        wait_s=wait_s, run_s=_seconds_between(finished.started_at, finished.finished_at),
        gpu_ms=finished.gpu_ms, charged_ms=finished.charged_ms, cause=cause,
    )
    return state


def _seconds_between(start: Any, end: Any) -> float | None:
    return (end - start).total_seconds() if start is not None and end is not None else None


def _finish(ctx: WorkerContext, job_id: int, state: JobState, fields: dict[str, Any],
            event: dict[str, Any] | None = None) -> Job | None:
    """Record the outcome (and, for flagged images, the audit row), retrying while the database is briefly
    unreachable: the GPU work is done and must not be lost to a restart of PostgreSQL. Returns the finished
    row, or None when the job is no longer ours."""
    delay = 0.5
    deadline = time.monotonic() + FINISH_RETRY_S
    while True:
        try:
            with ctx.sessions() as session, session.begin():
                done = jobs_db.finish(session=session, job_id=job_id, state=state, owner=ctx.owner, **fields)
                if done is not None:
                    if event is not None:
                        moderation_db.record_event(session=session, job_id=job_id, **event)
                    jobs_db.notify(session=session, job_id=job_id)
                return done
        except OperationalError:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("job %s: database unreachable while finishing; retrying in %.1fs", job_id, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass(frozen=True, slots=True)
class _ImageCheck:
    """The safety classifier and what to do with the job's flagged images."""

    classifier: SafetyClassifier
    action: ImageAction


def _render(
    ctx: WorkerContext, job_id: int, kind: JobKind, spec: JobSpec, progress: _Progress,
    *, check: _ImageCheck | None = None,
) -> tuple[JobState, dict[str, Any]]:
    """Run the job's pipeline, check its images (``check``) and store them; returns the final state and the
    fields to finish with.

    - imagine, reroll: a grid from the prompt;
    - vary: a grid of image-to-image variations of ``spec.init_image`` (drawn at the spec's size);
    - upscale: one image, ``spec.init_image`` enlarged ``spec.upscale_factor`` times (``spec.upscale_mode``);
    - zoom, pan, square, vary_region: a grid inpainted around (or inside) ``spec.init_image``, with the
      kept pixels pasted back (:mod:`inference.canvas`).

    Images the classifier flags are not stored when the action is block: the job fails with
    :data:`BLOCKED` (so its fast time is refunded); with spoiler they are stored and the job is ``flagged``.
    The fields then carry ``moderation``, the audit event to write with the finish.
    """
    from inference.pipelines import (
        JobCancelled,
        render_blank,
        render_grid,
        render_inpaint,
        render_variations,
        upscale_image,
    )

    models = job_models(spec, ctx.catalog)  # the draft's model under --draft, and the LoRAs to set
    preset, loras = models.preset, models.loras
    cache = ctx.pipeline_cache()
    try:
        if ctx.renderer == "noop" and kind in (JobKind.IMAGINE, JobKind.REROLL):
            result = render_blank(spec)  # benchmarks and tests of the queue only (inference.context.RENDERERS)
        elif kind in (JobKind.IMAGINE, JobKind.REROLL):
            result = render_grid(
                cache, preset, spec, loras=loras,
                on_step=progress, want_preview=progress.want_preview, should_cancel=progress.should_cancel,
            )
        elif kind is JobKind.VARY:
            source = _source_image(ctx, spec)
            if source.size != (spec.width, spec.height):
                source = source.resize((spec.width, spec.height), PILImage.Resampling.LANCZOS)
            result = render_variations(
                cache, preset, spec, source, spec.strength if spec.strength is not None else STRONG_STRENGTH,
                loras=loras, on_step=progress, want_preview=progress.want_preview, should_cancel=progress.should_cancel,
            )
        elif kind.is_canvas:
            prepared = _canvas_inputs(kind, spec, _source_image(ctx, spec))
            inpainted = render_inpaint(
                cache, preset, spec, prepared.image, prepared.mask,
                loras=loras, on_step=progress, want_preview=progress.want_preview, should_cancel=progress.should_cancel,
            )
            result = dataclasses.replace(inpainted, images=[paste_back(image, prepared) for image in inpainted.images])
        elif kind is JobKind.UPSCALE:
            upscaled = upscale_image(
                cache, preset, _source_image(ctx, spec), factor=spec.upscale_factor or UPSCALE_FACTOR,
                mode=spec.upscale_mode or preset.upscale, spec=spec, loras=loras,
                should_cancel=progress.should_cancel, on_step=progress,
            )
        else:
            raise NotImplementedError(f"job kind {kind.value!r} is not supported by this worker")
    except JobCancelled:
        if progress.handed_back:
            return JobState.QUEUED, {}
        if progress.timed_out:
            log.warning("job %s: stopped at its time limit (JOB_TIMEOUT_S=%s)", job_id, ctx.job_timeout_s)
            return JobState.FAILED, {"error": timeout_error(ctx.job_timeout_s)}
        return JobState.CANCELLED, {}

    flagged = False
    if check is not None:
        drawn = [upscaled.image] if kind is JobKind.UPSCALE else list(result.images)
        flagged = check.classifier.flagged(drawn)
        if flagged and check.action is ImageAction.BLOCK:
            log.info("job %s: images flagged and blocked", job_id)
            gpu_ms = upscaled.gpu_ms if kind is JobKind.UPSCALE else result.gpu_ms
            return JobState.FAILED, {"error": BLOCKED, "gpu_ms": gpu_ms, "moderation": "image_blocked"}
    marks: dict[str, Any] = {"flagged": True, "moderation": "image_spoiler"} if flagged else {}

    if kind is JobKind.UPSCALE:
        image = upscaled.image
        key = f"jobs/{job_id}/0.png"
        _store_pngs(ctx, [(key, image)])
        row = {"index": 0, "seed": spec.seed, "storage_key": key, "width": image.width, "height": image.height}
        return JobState.SUCCEEDED, {
            "gpu_ms": upscaled.gpu_ms, "result_key": key, "images": [row], "upscale_method": upscaled.method,
            **marks,
        }
    return JobState.SUCCEEDED, {**_store_grid(ctx, job_id, result), **marks}


def _canvas_inputs(kind: JobKind, spec: JobSpec, source: Image) -> Prepared:
    """The canvas, the mask and the pixels to keep of a canvas job (see :mod:`domain.canvas`)."""
    if kind is JobKind.REGION:
        mask = boxes_mask((spec.width, spec.height), region_boxes(spec.region, spec.width, spec.height))
        return prepare_region(source, mask)
    if spec.source_box is None:
        raise ValueError(f"a {kind.value} job needs spec.source_box (where the source goes), and has none")
    return prepare_outpaint(source, spec.width, spec.height, spec.source_box)


def _source_image(ctx: WorkerContext, spec: JobSpec) -> Image:
    """The image a vary or upscale job starts from (``spec.init_image``, a store key), in RGB."""
    if not spec.init_image:
        raise ValueError("this job needs a source image (spec.init_image), and has none")
    with PILImage.open(io.BytesIO(ctx.store.get(spec.init_image))) as image:
        return image.convert("RGB")


def _store_grid(ctx: WorkerContext, job_id: int, result: RenderResult) -> dict[str, Any]:
    """Store each image and the 2x2 grid; the fields to finish the job with."""
    from inference.grid import compose_grid

    grid_key = f"jobs/{job_id}/grid.png"
    keys = [f"jobs/{job_id}/{index}.png" for index in range(len(result.images))]
    _store_pngs(ctx, [(grid_key, compose_grid(result.images)), *zip(keys, result.images, strict=True)])
    images = [{"index": index, "seed": seed, "storage_key": key, "width": image.width, "height": image.height}
              for index, (key, image, seed) in enumerate(zip(keys, result.images, result.seeds, strict=True))]
    return {"gpu_ms": result.gpu_ms, "result_key": grid_key, "images": images}


def timeout_error(limit_s: int) -> str:
    """What the member reads when their job ran past the worker's time limit."""
    return (f"This job took longer than the {limit_s} seconds a job may run, so it was stopped. Nothing was "
            "charged. The same settings would take as long again: try fewer --steps, a smaller --ar or a lower --q.")


def failure_cause(exc: Exception) -> str:
    """A short, bounded label for the failures metric."""
    name = type(exc).__name__
    if "OutOfMemory" in name:
        return "out_of_memory"
    if isinstance(exc, ImageNotFoundError):
        return "source_missing"
    if name in ("SoftTimeLimitExceeded", "TimeLimitExceeded"):
        return "time_limit"
    return name


def _user_error(exc: Exception) -> str:
    """A short, plain reason for the job's message, in words (no exception names); details stay in the
    worker log."""
    if "OutOfMemory" in type(exc).__name__:
        return "The GPU ran out of memory for this image. Try a smaller --ar or --q."
    if isinstance(exc, ImageNotFoundError):
        return "The image this job starts from is no longer stored. Run /imagine again."
    return "Something went wrong on the GPU worker while making this image. Nothing was charged; please try again."
