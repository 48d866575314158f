"""Memory modes of the models file on the CPU: offload hooks, torchao fp8/int8, a GGUF denoiser; nf4's refusal.

What needs a GPU (nf4 through bitsandbytes, the memory each mode saves) is checked as far as a CPU allows:
the config that would be built, and the one-line error a CPU worker gives.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from domain.catalog import Catalog, ModelPreset, parse_catalog
from domain.spec import JobSpec
from inference.errors import ModelLoadError
from inference.pipelines import PipelineCache, RenderResult, render_grid, render_variations
from inference.pipelines.memory import quantization_config
from tests.support.lora_files import write_gguf_denoiser


@pytest.fixture(scope="module")
def variants(tiny_models_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The tiny SD 1.5 once per memory mode (same weights), plus a GGUF copy of its UNet."""
    from diffusers import UNet2DConditionModel

    base = tomllib.loads(tiny_models_file.read_text())["models"]["tiny"]
    base = {key: value for key, value in base.items() if key not in ("aliases", "draft", "loras")}
    source = str(tiny_models_file.parent / "tiny-sd")
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", local_files_only=True)
    gguf = write_gguf_denoiser(unet, tmp_path_factory.mktemp("gguf") / "tiny-unet-Q8_0.gguf")
    modes: dict[str, dict[str, Any]] = {
        "plain": {},
        "offload-model": {"offload": "model"},
        "offload-sequential": {"offload": "sequential"},
        "int8": {"quantize": "int8"},
        "fp8": {"quantize": "fp8"},
        "nf4": {"quantize": "nf4"},
        "gguf": {"quantize": "gguf", "gguf": str(gguf), "config": source},
    }
    models = {name: {**base, "source": source, **changes} for name, changes in modes.items()}
    return parse_catalog({"default": "plain", "models": models}, tiny_models_file.parent)


@pytest.fixture(scope="module")
def plain(variants: Catalog, spec: JobSpec) -> RenderResult:
    return render_grid(PipelineCache(device="cpu"), variants.get("plain"), spec)


def difference(a: RenderResult, b: RenderResult) -> int:
    return max(int(np.abs(np.asarray(x, np.int16) - np.asarray(y, np.int16)).max())
               for x, y in zip(a.images, b.images, strict=True))


def test_model_offload_runs_through_accelerate_hooks_and_draws_the_same(
    variants: Catalog, spec: JobSpec, plain: RenderResult
) -> None:
    cache = PipelineCache(device="cpu")
    result = render_grid(cache, variants.get("offload-model"), spec)
    pipe = cache.text_to_image(variants.get("offload-model"))
    assert hasattr(pipe.unet, "_hf_hook")  # accelerate moves it to the device while it runs
    assert difference(result, plain) <= 1
    # Variations share the offloaded modules (from_pipe) and run through the same hooks.
    varied = render_variations(cache, variants.get("offload-model"), spec, result.images[0], 0.75)
    reference = render_variations(PipelineCache(device="cpu"), variants.get("plain"), spec, plain.images[0], 0.75)
    assert difference(varied, reference) <= 1


def test_sequential_offload_leaves_every_weight_off_the_device_until_its_layer_runs(variants: Catalog) -> None:
    # Rendering needs an accelerator: accelerate's CPU-to-CPU round trip turns the text encoder's embedding
    # weight into a plain tensor (a TypeError in set_module_tensor_to_device); measured here, so not run.
    pipe = PipelineCache(device="cpu").text_to_image(variants.get("offload-sequential"))
    to_q = pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    assert hasattr(to_q, "_hf_hook") and to_q.weight.device.type == "meta"


@pytest.mark.parametrize(("mode", "tensor"), [("int8", "Int8Tensor"), ("fp8", "Float8Tensor")])
def test_torchao_stores_the_denoiser_in_fewer_bits(
    mode: str, tensor: str, variants: Catalog, spec: JobSpec, plain: RenderResult
) -> None:
    cache = PipelineCache(device="cpu")
    result = render_grid(cache, variants.get(mode), spec)
    unet = cache.text_to_image(variants.get(mode)).unet
    weight = unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.weight
    assert type(weight).__name__ == tensor
    text_encoder = cache.text_to_image(variants.get(mode)).text_encoder
    assert all(type(p).__name__ == "Parameter" for p in text_encoder.parameters())  # only the denoiser is
    assert 0 < difference(result, plain) < 64  # rounded weights: close to the original, not equal


def test_a_gguf_denoiser_replaces_the_sources_own(variants: Catalog, spec: JobSpec, plain: RenderResult) -> None:
    cache = PipelineCache(device="cpu")
    result = render_grid(cache, variants.get("gguf"), spec)
    layer = cache.text_to_image(variants.get("gguf")).unet.down_blocks[0].attentions[0].transformer_blocks[0]
    assert type(layer.attn1.to_q).__name__ == "GGUFLinear"
    assert 0 < difference(result, plain) < 64


def test_nf4_on_a_cpu_worker_is_one_clear_line(variants: Catalog, spec: JobSpec) -> None:
    with pytest.raises(ModelLoadError) as error:
        render_grid(PipelineCache(device="cpu"), variants.get("nf4"), spec)
    assert str(error.value) == (
        "model 'nf4': quantize = \"nf4\" needs an NVIDIA GPU (bitsandbytes), and this worker runs on cpu; "
        "use quantize = \"int8\" or \"fp8\" here"
    )


def test_nf4_on_a_gpu_asks_bitsandbytes_for_4_bit_nf4_weights_of_the_denoiser(variants: Catalog) -> None:
    pytest.importorskip("bitsandbytes", reason="the nf4 extra (bitsandbytes) is not installed")
    preset: ModelPreset = variants.get("nf4")
    config = quantization_config(preset, device=torch.device("cuda"), dtype=torch.bfloat16)
    assert config is not None and list(config.quant_mapping) == ["unet"]
    bnb = config.quant_mapping["unet"]
    assert bnb.load_in_4bit and bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_compute_dtype == torch.bfloat16
