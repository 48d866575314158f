"""bench/render_grid.py: the report has every field, the full-size configs are the published models, and the
writer of random full-size pipelines goes through the worker's loader. No timing is asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "render_grid.py"

MODEL_FIELDS = {
    "name", "family", "weights", "width", "height", "params", "unet_params_m", "flops", "floor_s", "build_s",
    "disk_gib", "load_s", "weights_gib", "attention", "variants", "note",
}
VARIANT_FIELDS = {
    "name", "description", "warmup_s", "runs_s", "gpu_s", "median_s", "p90_s", "images_per_s", "vs_default",
    "achieved_tflops", "share_of_peak", "peak_gib", "note",
}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    # One torch thread: tiny models gain nothing from more on this shared machine (tests/inference/conftest.py).
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The script as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("render_grid_bench", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_tiny_run_on_the_cpu_reports_every_field(tmp_path: Path) -> None:
    out = tmp_path / "render.json"
    done = run_bench("--tiny", "--steps", "2", "--runs", "1", "--device", "cpu", "--json", str(out))
    assert done.returncode == 0, done.stderr

    report = json.loads(out.read_text())
    assert report["device"].startswith("cpu") and report["device_type"] == "cpu" and report["dtype"] == "float32"
    assert report["tiny"] is True and report["steps"] == 2 and report["runs"] == 1 and report["images"] == 4
    assert report["peak_tflops"] is None  # the bf16 limit is a GPU's
    assert {"python", "torch", "diffusers", "transformers"} <= set(report["versions"])
    assert [m["name"] for m in report["models"]] == ["sd15", "sdxl", "flux", "zimage"]
    for model in report["models"]:
        unet = model["family"] in ("sd15", "sdxl")
        assert set(model) == MODEL_FIELDS
        assert model["note"] is None and model["width"] == model["height"] == 128
        assert model["load_s"] > 0 and model["build_s"] > 0 and model["weights_gib"] is None
        assert model["flops"]["grid"] > 0 and model["params"]["unet" if unet else "transformer"] > 0
        assert model["flops"]["passes"] == (2 if unet else 1)
        names = [v["name"] for v in model["variants"]]
        if unet:
            assert names == ["default", "channels_last", "batch1x4", "diffusers", "fastpath"]
        else:
            assert names == ["default", "channels_last", "batch1x4", "fastpath", "offload-model",
                             "offload-sequential", "quantize-fp8"]
            skipped = {v["name"]: v["note"] for v in model["variants"] if v["note"]}
            assert skipped == {"channels_last": "UNets only (the fastpath variant compiles a DiT's blocks)",
                               **{name: "skipped: memory modes are measured on a GPU" for name in names[4:]}}
        for variant in model["variants"]:
            assert set(variant) == VARIANT_FIELDS
            if variant["note"] is not None:
                continue
            assert len(variant["runs_s"]) == len(variant["gpu_s"]) == 1
            for key in ("warmup_s", "median_s", "p90_s", "images_per_s", "vs_default", "achieved_tflops"):
                assert variant[key] > 0, key
            assert variant["share_of_peak"] is None and variant["peak_gib"] is None
        assert model["variants"][0]["vs_default"] == 1.0
    assert "TINY MODELS: not a speed claim" in done.stdout and "batch1x4" in done.stdout


def test_full_size_configs_are_the_published_models(tmp_path: Path) -> None:
    """Built on the meta device: the parameter counts of the real checkpoints, and the FLOPs
    FlopCounterMode gave for them before (the team's TINY_MODELS.md notes)."""
    out = tmp_path / "flops.json"
    done = run_bench("--flops-only", "--json", str(out))
    assert done.returncode == 0, done.stderr
    models = json.loads(out.read_text())["models"]

    sd15, sdxl = models["sd15"], models["sdxl"]
    assert sd15["unet_params_m"] == sd15["published_unet_params_m"] == 859.52
    assert sdxl["unet_params_m"] == sdxl["published_unet_params_m"] == 2567.46
    assert round(sd15["params"]["vae"] / 1e6, 2) == round(sdxl["params"]["vae"] / 1e6, 2) == 83.65
    assert round(sd15["params"]["text_encoder"] / 1e6, 2) == 123.06
    assert round(sdxl["params"]["text_encoder_2"] / 1e6, 2) == 694.66

    def tflop(model: dict[str, Any], key: str) -> float:
        return float(model["flops"][key]) / 1e12

    assert tflop(sd15, "unet_forward_per_image") == pytest.approx(0.80, rel=0.01)
    assert tflop(sd15, "vae_decode_per_image") == pytest.approx(2.5, rel=0.01)
    assert tflop(sd15, "grid") == pytest.approx(203, rel=0.01)
    assert tflop(sdxl, "unet_forward_per_image") == pytest.approx(6.76, rel=0.01)
    assert tflop(sdxl, "vae_decode_per_image") == pytest.approx(10.5, rel=0.01)
    assert tflop(sdxl, "grid") == pytest.approx(1665, rel=0.01)


def test_the_new_families_full_size_configs_count_as_the_issue_says(tmp_path: Path) -> None:
    """FLUX.1 (11.90 B) at 1024 px with 512 T5 tokens: 74.4 TFLOP a forward; Z-Image (6.15 B): 62.5 (issue 14)."""
    out = tmp_path / "flops.json"
    done = run_bench("--flops-only", "--models", "flux,zimage", "--json", str(out))
    assert done.returncode == 0, done.stderr
    models = json.loads(out.read_text())["models"]
    flux, zimage = models["flux"], models["zimage"]
    assert flux["unet_params_m"] == flux["published_unet_params_m"] == 11901.41
    assert zimage["unet_params_m"] == zimage["published_unet_params_m"] == 6154.91
    assert round(flux["params"]["text_encoder_2"] / 1e9, 2) == 4.76  # T5-XXL's encoder
    assert round(zimage["params"]["text_encoder"] / 1e9, 2) == 4.02  # Qwen3 4B
    assert float(flux["flops"]["unet_forward_per_image"]) / 1e12 == pytest.approx(74.4, rel=0.002)
    assert float(zimage["flops"]["unet_forward_per_image"]) / 1e12 == pytest.approx(62.5, rel=0.002)
    # Default steps, no guidance pass (distilled), 4 images; the VAE decode on top of the issue's 8,331 / 2,000.
    assert (flux["flops"]["steps"], flux["flops"]["passes"], zimage["flops"]["steps"]) == (28, 1, 8)
    denoise = {name: 28 * 4 * 74.4e12 if name == "flux" else 8 * 4 * 62.5e12 for name in models}
    for name, model in models.items():
        assert model["flops"]["grid"] == pytest.approx(denoise[name] + 4 * model["flops"]["vae_decode_per_image"],
                                                       rel=0.002)


def test_random_pipeline_writer_goes_through_the_worker_path(bench: ModuleType, tmp_path: Path) -> None:
    """The code that writes the full-size pipelines on a GPU, with small configs on the CPU: saved, loaded by
    PipelineCache and rendered by render_grid like any model."""
    import torch

    from domain.catalog import ModelPreset
    from domain.spec import JobSpec
    from inference.pipelines import PipelineCache, render_grid

    text = {**bench.FULL_SIZE["sd15"].text, "hidden_size": 32, "intermediate_size": 37, "num_attention_heads": 4,
            "num_hidden_layers": 2, "projection_dim": 32}
    vae = {**bench.FULL_SIZE["sd15"].vae, "block_out_channels": (8, 16, 16, 16), "layers_per_block": 1,
           "norm_num_groups": 8}
    unet = {"sample_size": 8, "layers_per_block": 1, "block_out_channels": (32, 64), "norm_num_groups": 32}
    small = {
        "sd15": bench.FamilyConfig(
            unet={**unet, "down_block_types": ("CrossAttnDownBlock2D", "DownBlock2D"),
                  "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D"), "cross_attention_dim": 32,
                  "attention_head_dim": 4},
            vae=vae, text=text,
        ),
        "sdxl": bench.FamilyConfig(
            unet={**unet, "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
                  "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"), "attention_head_dim": (2, 4),
                  "use_linear_projection": True, "addition_embed_type": "text_time", "addition_time_embed_dim": 8,
                  "projection_class_embeddings_input_dim": 6 * 8 + 32, "cross_attention_dim": 64},
            vae=vae, text=text, text_2=text,
        ),
    }
    cache = PipelineCache(device="cpu")
    for family, config in small.items():
        folder = bench.write_random_pipeline(family, tmp_path / family, config=config, device="cpu",
                                             dtype=torch.float32)
        built = bench.count_params(bench.build_components(family, config, device="meta"))
        assert bench.count_params(bench.meta_components_from_folder(family, folder)) == built

        preset = ModelPreset(name=family, source=str(folder), family=family, width=64, height=64, steps=1)
        spec = JobSpec(prompt="a fox", model=family, width=64, height=64, seed=1, steps=1, guidance_scale=7.0)
        result = render_grid(cache, preset, spec)
        assert [image.size for image in result.images] == [(64, 64)] * 4


def test_a_variant_that_cannot_fit_the_budget_is_skipped_with_a_note(bench: ModuleType) -> None:
    import torch

    calls: list[int] = []

    def grid() -> int:
        calls.append(1)
        return 5

    def measure(budget: Any, estimate_s: float | None) -> Any:
        return bench.measure_variant("channels_last", grid=grid, setup=nullcontext(),
                                     device=torch.device("cpu"), runs=3, warmup=1, images=4, budget=budget,
                                     estimate_s=estimate_s)

    skipped = measure(bench.Budget(0.0), estimate_s=1.0)
    assert skipped.note.startswith("skipped") and skipped.runs_s == [] and skipped.median_s is None
    assert calls == []

    done = measure(bench.Budget(None), estimate_s=1.0)
    assert done.note is None and len(done.runs_s) == 3 and done.gpu_s == [0.005] * 3 and len(calls) == 4
    assert done.images_per_s == pytest.approx(4 / done.median_s)


def test_p90_is_the_nearest_rank(bench: ModuleType) -> None:
    assert bench.p90([3.0, 1.0, 2.0]) == 3.0
    assert bench.p90([float(i) for i in range(1, 11)]) == 9.0
    assert bench.p90([float(i) for i in range(1, 21)]) == 18.0
