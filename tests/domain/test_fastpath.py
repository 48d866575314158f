"""The models file's ``fastpath`` key: presets per family, switches, and the clear refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from domain.aspect import aspect_sizes, size_for_aspect
from domain.catalog import parse_catalog
from domain.errors import CatalogError
from domain.fastpath import FastPath


def model(family: str = "sdxl", **table: Any) -> dict[str, Any]:
    return {"source": f"org/{family}", "family": family, **table}


def fastpath(table: dict[str, Any]) -> FastPath:
    return parse_catalog({"models": {"m": table}}, Path("/srv")).get("m").fastpath


def test_no_key_switches_nothing() -> None:
    assert fastpath(model()) == FastPath() and not FastPath().enabled


@pytest.mark.parametrize(("family", "expected"), [
    ("sdxl", FastPath(dtype="bf16", fuse_qkv=True, channels_last=True, compile=True, vae_tiling=True)),
    ("flux", FastPath(dtype="bf16", fuse_qkv=True, compile=True, vae_tiling=True)),
    ("zimage", FastPath(dtype="bf16", compile=True, vae_tiling=True)),
    ("sd3", FastPath(dtype="bf16", vae_tiling=True)),
])
def test_the_quality_preset_takes_what_the_family_supports(family: str, expected: FastPath) -> None:
    assert fastpath(model(family, fastpath="quality")) == expected


@pytest.mark.parametrize(("family", "cache"), [("flux", "first_block"), ("qwenimage", "taylorseer"),
                                                ("sdxl", "none")])
def test_the_speed_preset_adds_the_familys_step_cache(family: str, cache: str) -> None:
    assert fastpath(model(family, fastpath="speed")).cache == cache


def test_a_table_starts_from_its_preset_and_sets_switches() -> None:
    fast = fastpath(model("flux", fastpath={"preset": "quality", "compile": False, "attention": "flash3",
                                             "fp8": True, "compile_mode": "max-autotune-no-cudagraphs"}))
    assert (fast.compile, fast.attention, fast.fp8, fast.fuse_qkv) == (False, "flash3", True, True)
    assert fastpath(model(fastpath={"channels_last": True})) == FastPath(channels_last=True)
    assert fastpath(model("flux", fastpath={"cache": "first_block", "cache_threshold": 0.1})).cache_threshold == 0.1


@pytest.mark.parametrize(("table", "message"), [
    (model(fastpath="turbo"), "model 'm': fastpath preset 'turbo' is not one of none, quality, speed"),
    (model(fastpath=3), "model 'm': fastpath must be one of none, quality, speed or a table, not 3"),
    (model(fastpath={"speedy": True}), "model 'm': fastpath has no key 'speedy'; the keys are preset, dtype"),
    (model(fastpath={"dtype": "fp64"}), "model 'm': fastpath dtype 'fp64' is not one of auto, bf16, fp16, fp32"),
    (model(fastpath={"compile": "yes"}), "model 'm': fastpath compile must be true or false, not 'yes'"),
    (model("flux", fastpath={"cache": "first_block", "cache_threshold": 0}),
     "fastpath cache_threshold must be a number above 0 and at most 1, not 0"),
    (model("flux", fastpath={"cache_threshold": 0.3}),
     "fastpath cache_threshold is for cache = \"first_block\"; remove it or set that cache"),
    (model("sdxl", fastpath={"attention": "flash3"}),
     "fastpath attention 'flash3' is not available for family 'sdxl' (its attention runs on PyTorch's SDPA); "
     "use attention = \"auto\" or \"sdpa\""),
    (model("flux", fastpath={"channels_last": True}),
     "fastpath channels_last is not available for family 'flux'; set channels_last = false"),
    (model("sd3", fastpath={"compile": True}), "fastpath compile is not available for family 'sd3'"),
    (model("zimage", fastpath={"cache": "taylorseer"}),
     "fastpath cache 'taylorseer' is not available for family 'zimage' (it offers: none); set cache = \"none\""),
    (model("flux2", fastpath={"cache": "first_block"}), "(it offers: taylorseer)"),
    (model(fastpath="quality", loras=[{"name": "ink", "source": "./ink.safetensors"}]),
     "fastpath fuse_qkv cannot be used with LoRAs (each job sets its own adapters on those layers); "
     "set fuse_qkv = false or remove the model's loras"),
    (model(fastpath={"fp8": True}, quantize="int8"),
     "fastpath fp8 quantizes the denoiser itself; remove quantize = 'int8' or set fp8 = false"),
    (model(fastpath={"fp8": True}, offload="model"),
     "fastpath fp8 is for a model that fits on the card, not offload = 'model'"),
    (model(fastpath={"compile": True}, offload="sequential"),
     "fastpath compile cannot follow weights moved layer by layer"),
])
def test_a_switch_that_cannot_work_is_refused_naming_the_model_and_what_to_change(
    table: dict[str, Any], message: str
) -> None:
    with pytest.raises(CatalogError) as refused:
        fastpath(table)
    assert message in str(refused.value)


@pytest.mark.parametrize("budget", [512 * 512, 1024 * 1024, 1328 * 1328])
def test_aspect_sizes_are_every_size_an_ar_gives(budget: int) -> None:
    sizes = aspect_sizes(budget)
    asked = {size_for_aspect(w, h, budget) for w in range(1, 80) for h in range(1, 80) if w <= 4 * h and h <= 4 * w}
    assert asked <= set(sizes) and len(sizes) == len(set(sizes))
    assert sizes[0] == size_for_aspect(4, 1, budget) and sizes[-1] == size_for_aspect(1, 4, budget)
    assert size_for_aspect(1, 1, budget) in sizes
