"""Row 6: the worker's warm path, in this process, on the tiny models (CPU).

A :class:`~inference.context.WorkerContext` as a worker child builds it, and ``inference.runner.run_job``
(claim, heartbeat, render, store, finish, settle) on jobs submitted as the bot submits them:

- the first load of a model (what a worker child does at its start, ``inference.worker.preload``);
- two jobs on it: the second finds the same pipeline object in the cache (no load) and takes as long as the first;
- switching models: the first job on a second model (its load included), and back to the first (no load);
- a job's time against a bare ``pipe()`` call on the same pipeline with the same size, steps, guidance and
  four images: the share of a job that is the pipeline (goal 0.95).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import BENCH_PLANS, Row, median, submit

__all__ = ["measure", "row"]


def measure(*, database_url: str, models_file: Path, store_dir: Path, runs: int = 3) -> dict[str, Any]:
    import torch

    from db.session import make_engine, make_sessionmaker
    from domain.catalog import load_catalog
    from domain.plans import load_plans
    from inference.context import WorkerContext, owner_name
    from inference.runner import run_job
    from inference.storage import open_store

    catalog, book = load_catalog(models_file), load_plans(BENCH_PLANS)
    engine = make_engine(database_url, pool_size=2)
    sessions = make_sessionmaker(engine)
    ctx = WorkerContext(catalog=catalog, database_url=database_url, sessions=sessions,
                        store=open_store(str(store_dir)), owner=owner_name(), torch_device="cpu")
    cache = ctx.pipeline_cache()
    first, second = catalog.get("tiny"), catalog.get("tiny-xl")

    def job(prompt: str) -> float:
        with sessions() as session, session.begin():
            [(job_id, _)] = submit(session=session, catalog=catalog, book=book, user_id=7, prompts=[prompt])
        started = time.perf_counter()
        state = run_job(ctx, job_id)
        if state is None or state.value != "succeeded":
            raise RuntimeError(f"bench job {job_id} ended {state}")
        return time.perf_counter() - started

    try:
        started = time.perf_counter()
        pipe = cache.text_to_image(first)
        load_s = time.perf_counter() - started
        first_job_s = job("a fox --seed 1")
        second_job_s = job("a fox --seed 2")
        reloaded = cache.text_to_image(first) is not pipe
        switch_s = job("a fox --seed 3 --model tiny-xl")
        back_s = job("a fox --seed 4")

        jobs_s = [job(f"a hare --seed {10 + i}") for i in range(runs)]
        spec = {"prompt": "a hare", "num_inference_steps": first.steps, "guidance_scale": first.guidance,
                "width": first.width, "height": first.height, "num_images_per_prompt": 4}
        bare_s = []
        for i in range(runs):
            generators = [torch.Generator("cpu").manual_seed(10 + i + k) for k in range(4)]
            began = time.perf_counter()
            pipe(**spec, generator=generators)
            bare_s.append(time.perf_counter() - began)
    finally:
        engine.dispose()
    return {
        "model": first.name, "steps": first.steps, "size": [first.width, first.height], "runs": runs,
        "load_s": round(load_s, 3), "first_job_s": round(first_job_s, 3), "second_job_s": round(second_job_s, 3),
        "second_job_reloaded": reloaded, "switch_model": second.name, "switch_job_s": round(switch_s, 3),
        "back_job_s": round(back_s, 3),
        "job_s": round(median(jobs_s), 3), "bare_pipe_s": round(median(bare_s), 3),
        "pipe_share_of_job": round(median(bare_s) / median(jobs_s), 3),
    }


def row(figures: dict[str, Any]) -> Row:
    measured = (f"load {figures['load_s']:.2f} s; jobs 1 and 2 {figures['first_job_s']:.2f} / "
                f"{figures['second_job_s']:.2f} s (reloaded: {'yes' if figures['second_job_reloaded'] else 'no'}); "
                f"switch to {figures['switch_model']} {figures['switch_job_s']:.2f} s, back "
                f"{figures['back_job_s']:.2f} s; bare pipe() / job {figures['pipe_share_of_job']:.2f} "
                f"({figures['bare_pipe_s']:.3f} / {figures['job_s']:.3f} s)")
    return Row(6, "worker warm path (tiny model, CPU)", measured, "pipe() / job >= 0.95, no reload",
               figures["pipe_share_of_job"] >= 0.95 and not figures["second_job_reloaded"], figures)
