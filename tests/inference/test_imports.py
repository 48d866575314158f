"""The bot imports grid and storage: they must not pull in torch. The worker's parent must not touch CUDA."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    command = [sys.executable, "-c", textwrap.dedent(code)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_grid_storage_errors_generate_do_not_import_torch() -> None:
    assert (
        run("""
        import sys
        import inference.errors, inference.generate, inference.grid, inference.storage
        print(sorted(m for m in ("torch", "diffusers", "transformers", "boto3") if m in sys.modules))
    """)
        == "[]"
    )


def test_pipeline_cache_does_not_initialise_cuda() -> None:
    assert (
        run("""
        import torch
        from inference.pipelines import PipelineCache
        PipelineCache()
        print(torch.cuda.is_initialized())
    """)
        == "False"
    )
