"""The fast path of the models file on the CPU, on the tiny models: each switch reaches the pipeline (dtypes,
attention processors, memory format, hooks, compiled blocks) and the pictures stay valid; the step caches
skip blocks and change the output; what needs a GPU is refused in one line.

torch.compile itself is not run here (the tiny FLUX.1's blocks took 64 s to compile on this CPU, and as
long again per new size): the blocks are checked to be wrapped, and the warm-up plan to cover every size.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from domain.aspect import aspect_sizes, size_for_aspect
from domain.catalog import Catalog, parse_catalog
from domain.spec import JobSpec
from inference.errors import ModelLoadError
from inference.pipelines import PipelineCache, RenderResult, check_spec, render_grid
from inference.pipelines.warmup import WARMUP_STEPS, warmup_plan

#: The tiny models' tables the variants start from, and the fast-path switches of each variant.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "sd": ("tiny", {}),
    "sd-bf16": ("tiny", {"dtype": "bf16"}),
    "sd-fused": ("tiny", {"fuse_qkv": True}),
    "sd-channels-last": ("tiny", {"channels_last": True}),
    "sd-tiled": ("tiny", {"vae_tiling": True}),
    "sd-compiled": ("tiny", {"compile": True}),
    "sd-fp8": ("tiny", {"fp8": True}),
    "flux": ("tiny-flux", {}),
    "flux-fused": ("tiny-flux", {"fuse_qkv": True}),
    "flux-sdpa": ("tiny-flux", {"attention": "sdpa"}),
    "flux-flash3": ("tiny-flux", {"attention": "flash3"}),
    # Random weights change a lot between steps: 0.2 (the default) never reuses anything on them.
    "flux-first-block": ("tiny-flux", {"cache": "first_block", "cache_threshold": 0.5}),
    "flux-taylorseer": ("tiny-flux", {"cache": "taylorseer"}),
    "flux-compiled": ("tiny-flux", {"compile": True}),
    "flux-speed": ("tiny-flux", {"preset": "speed"}),
}


@pytest.fixture(scope="module")
def variants(tiny_models_file: Path) -> Catalog:
    tables = tomllib.loads(tiny_models_file.read_text())["models"]
    models = {}
    for name, (base, fast) in VARIANTS.items():
        table = {k: v for k, v in tables[base].items() if k not in ("aliases", "draft", "loras")}
        models[name] = {**table, "fastpath": fast} if fast else table
    return parse_catalog({"default": "sd", "models": models}, tiny_models_file.parent)


def job(name: str, side: int = 64, steps: int = 4) -> JobSpec:
    return JobSpec(prompt="a red fox in the snow", model=name, width=side, height=side, seed=1234, steps=steps,
                   guidance_scale=3.5 if name.startswith("flux") else 7.0)


def render(variants: Catalog, name: str, spec: JobSpec | None = None) -> tuple[RenderResult, Any]:
    """A grid of ``name`` in a cache of its own, and the loaded pipeline."""
    cache = PipelineCache(device="cpu")
    result = render_grid(cache, variants.get(name), spec or job(name))
    return result, cache.text_to_image(variants.get(name))


def pixels(result: RenderResult) -> np.ndarray:
    return np.stack([np.asarray(image.convert("RGB"), dtype=np.int16) for image in result.images])


def difference(a: RenderResult, b: RenderResult) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


def valid(result: RenderResult, side: int = 64) -> bool:
    """Four images of the size asked, not one flat colour (NaNs decode to black)."""
    return [image.size for image in result.images] == [(side, side)] * 4 and pixels(result).std() > 1


@pytest.fixture(scope="module")
def plain(variants: Catalog) -> RenderResult:
    return render(variants, "sd")[0]


@pytest.fixture(scope="module")
def plain_flux(variants: Catalog) -> RenderResult:
    return render(variants, "flux")[0]


def test_bf16_loads_every_module_in_bf16_and_draws_valid_images(variants: Catalog) -> None:
    cache = PipelineCache(device="cpu")
    preset = variants.get("sd-bf16")
    result = render_grid(cache, preset, job("sd-bf16"))
    pipe = cache.text_to_image(preset)
    assert {pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype} == {torch.bfloat16}
    assert cache.image_to_image(preset).unet.dtype == torch.bfloat16  # siblings are not cast back
    assert valid(result)


def test_fused_qkv_projections_reach_the_unet_and_keep_the_picture(variants: Catalog, plain: RenderResult) -> None:
    result, pipe = render(variants, "sd-fused")
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"FusedAttnProcessor2_0"}
    assert difference(result, plain) <= 2


def test_fused_qkv_projections_reach_the_flux_transformer(variants: Catalog, plain_flux: RenderResult) -> None:
    result, pipe = render(variants, "flux-fused")
    attention = pipe.transformer.transformer_blocks[0].attn
    assert attention.fused_projections and hasattr(attention, "to_qkv")
    assert difference(result, plain_flux) <= 2


def test_channels_last_reaches_the_unet_and_the_vae(variants: Catalog, plain: RenderResult) -> None:
    result, pipe = render(variants, "sd-channels-last")
    for conv in (pipe.unet.conv_in, pipe.vae.decoder.conv_in):
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert not conv.weight.is_contiguous()
    assert difference(result, plain) <= 2


def test_vae_tiling_decodes_in_tiles(variants: Catalog, plain: RenderResult) -> None:
    """The tiny VAE's tiles are 32 px, so a 64 px grid is already decoded in blended tiles: other pixels."""
    result, pipe = render(variants, "sd-tiled")
    assert pipe.vae.use_tiling and valid(result)
    assert difference(result, plain) > 8


def test_sdpa_goes_through_diffusers_attention_dispatcher(variants: Catalog, plain_flux: RenderResult) -> None:
    result, pipe = render(variants, "flux-sdpa")
    backends = {str(m.processor._attention_backend) for m in pipe.transformer.modules() if hasattr(m, "processor")}
    assert backends == {"native"} or backends == {"AttentionBackendName.NATIVE"}
    assert difference(result, plain_flux) <= 1


@pytest.mark.parametrize(("name", "needs"), [
    ("flux-flash3", "fastpath attention 'flash3' needs an NVIDIA GPU, and this worker runs on cpu"),
    ("sd-fp8", "fastpath fp8 needs an NVIDIA GPU of compute capability 8.9 or newer (Ada, Hopper), and this "
               "worker runs on cpu; set fp8 = false"),
])
def test_what_needs_a_gpu_is_refused_in_one_line_on_a_cpu(variants: Catalog, name: str, needs: str) -> None:
    with pytest.raises(ModelLoadError, match=f"^model '{name}': ") as refused:
        PipelineCache(device="cpu").text_to_image(variants.get(name))
    assert needs in str(refused.value) and "\n" not in str(refused.value)


def attention_calls(pipe: Any, spec: JobSpec, cache: PipelineCache, preset: Any) -> tuple[RenderResult, int]:
    """Render ``spec`` counting the query projections of the last single block's attention: a cached step
    does not run them (the hooks replace the attention's or the block's ``forward``)."""
    calls = 0

    def count(*_: Any) -> None:
        nonlocal calls
        calls += 1

    handle = pipe.transformer.single_transformer_blocks[-1].attn.to_q.register_forward_hook(count)
    try:
        return render_grid(cache, preset, spec), calls
    finally:
        handle.remove()


@pytest.mark.parametrize(("name", "hook"), [("flux-first-block", "fbc_block_hook"),
                                             ("flux-taylorseer", "taylorseer_cache")])
def test_a_step_cache_skips_blocks_changes_the_picture_and_leaks_nothing_into_the_next_job(
    variants: Catalog, name: str, hook: str
) -> None:
    spec = job(name, steps=12)
    plain_cache, cached_cache = PipelineCache(device="cpu"), PipelineCache(device="cpu")
    plain_pipe = plain_cache.text_to_image(variants.get("flux"))
    pipe = cached_cache.text_to_image(variants.get(name))
    hooks = {key for module in pipe.transformer.modules() if hasattr(module, "_diffusers_hook")
             for key in module._diffusers_hook.hooks}
    assert any(key.startswith(hook) for key in hooks), hooks

    reference, full = attention_calls(plain_pipe, spec, plain_cache, variants.get("flux"))
    cached, fewer = attention_calls(pipe, spec, cached_cache, variants.get(name))
    assert full == 12 and fewer < full
    assert valid(cached) and not np.array_equal(pixels(cached), pixels(reference))
    again, _ = attention_calls(pipe, spec, cached_cache, variants.get(name))
    assert np.array_equal(pixels(again), pixels(cached))  # the cache starts afresh every job


def test_the_speed_preset_is_quality_plus_the_familys_step_cache(variants: Catalog) -> None:
    fast = variants.get("flux-speed").fastpath
    assert (fast.dtype, fast.fuse_qkv, fast.compile, fast.vae_tiling, fast.cache) == (
        "bf16", True, True, True, "first_block")
    assert not fast.channels_last  # a transformer has no convolutions to gain from it


@pytest.mark.parametrize(("name", "blocks"), [("sd-compiled", "BasicTransformerBlock"),
                                               ("flux-compiled", "FluxTransformerBlock")])
def test_compile_wraps_the_repeated_blocks_only(variants: Catalog, name: str, blocks: str) -> None:
    pipe = PipelineCache(device="cpu").text_to_image(variants.get(name))
    denoiser = pipe.unet if name.startswith("sd") else pipe.transformer
    compiled = {type(m).__name__ for m in denoiser.modules() if getattr(m, "_compiled_call_impl", None)}
    assert blocks in compiled and type(denoiser).__name__ not in compiled
    assert pipe.vae._compiled_call_impl is None


def test_the_warm_up_plan_draws_every_size_a_member_can_ask_for(variants: Catalog) -> None:
    preset = variants.get("flux-compiled")
    plan = warmup_plan(preset)
    asked = {size_for_aspect(w, h, preset.pixel_budget) for w in range(1, 40) for h in range(1, 40)
             if w <= 4 * h and h <= 4 * w}
    planned = {(spec.width, spec.height) for spec in plan}
    assert planned == set(aspect_sizes(preset.pixel_budget)) and asked <= planned
    assert len(plan) == len(planned)  # each size once
    for spec in plan:
        check_spec(spec, preset.capabilities.pixel_multiple)
        assert (spec.images, spec.steps, spec.guidance_scale) == (4, WARMUP_STEPS, preset.guidance)
    assert warmup_plan(variants.get("flux")) == []  # nothing to warm without compile


def test_models_with_the_same_weights_and_other_switches_load_apart(variants: Catalog) -> None:
    cache = PipelineCache(device="cpu")
    plain, fused = cache.text_to_image(variants.get("sd")), cache.text_to_image(variants.get("sd-fused"))
    assert plain is not fused and cache.text_to_image(variants.get("sd")) is plain
