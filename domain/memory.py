"""How a model is held in GPU memory: offloading, quantization, and where single-file checkpoints get configs.

Keys of a ``[models.<name>]`` table (all optional)::

    offload  = "none"        # none | model | sequential
    quantize = "none"        # none | fp8 | int8 | nf4 | gguf
    gguf     = "./flux1-dev-Q4_K_S.gguf"   # quantize = "gguf": the denoiser, as a GGUF file
    config   = "./flux1-dev-config"        # a local diffusers folder of configs for single-file checkpoints

* ``offload = "model"`` keeps each component (text encoders, denoiser, VAE) in CPU memory and moves it to the
  GPU while it runs (diffusers' ``enable_model_cpu_offload``): a little slower, about the largest component's
  memory on the GPU. ``"sequential"`` moves one layer at a time (``enable_sequential_cpu_offload``): the least
  memory, many times slower.
* ``quantize`` stores the denoiser's weights in fewer bits: ``fp8`` and ``int8`` weight-only through torchao
  (int8 also runs on a CPU), ``nf4`` 4-bit through bitsandbytes (NVIDIA GPUs), ``gguf`` loads a pre-quantized
  GGUF denoiser file (as published for FLUX and others) in place of the source's own.
* ``config`` lets a single ``.safetensors``/``.ckpt``/``.gguf`` file load with no network: diffusers reads the
  model's component configs from this folder instead of the Hub (``from_single_file(path, config=folder)``).

This module only reads and checks the values; :mod:`inference.pipelines.memory` applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.errors import CatalogError

__all__ = ["OFFLOAD_MODES", "QUANTIZE_MODES", "SINGLE_FILE_SUFFIXES", "MemorySettings", "parse_memory"]

OFFLOAD_MODES = ("none", "model", "sequential")
QUANTIZE_MODES = ("none", "fp8", "int8", "nf4", "gguf")
#: Suffixes of single-file checkpoints (as published on Civitai), loaded with ``from_single_file``.
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True, slots=True)
class MemorySettings:
    offload: str = "none"
    quantize: str = "none"
    #: ``quantize = "gguf"``: the GGUF file of the denoiser (transformer or UNet).
    gguf: str = ""
    #: A local folder in the diffusers layout whose configs single-file checkpoints load with.
    config: str = ""


def _choice(model: str, table: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = table.get(key, "none")
    if not isinstance(value, str) or value not in choices:
        raise CatalogError(f"model {model!r}: {key} {value!r} is not one of {', '.join(choices)}")
    return value


def parse_memory(model: str, table: dict[str, Any], resolve: Callable[[str], str]) -> MemorySettings:
    """The memory keys of ``[models.<model>]``; :class:`CatalogError` naming the model and key otherwise."""
    offload = _choice(model, table, "offload", OFFLOAD_MODES)
    quantize = _choice(model, table, "quantize", QUANTIZE_MODES)
    gguf = str(table.get("gguf", ""))
    config = str(table.get("config", ""))
    source = str(table.get("source", ""))
    if quantize == "gguf" and not gguf.lower().endswith(".gguf"):
        raise CatalogError(
            f"model {model!r}: quantize = \"gguf\" needs `gguf`, the denoiser's .gguf file "
            f"(got {gguf!r})"
        )
    if gguf and quantize != "gguf":
        raise CatalogError(f"model {model!r}: `gguf` is set but quantize is {quantize!r}; set quantize = \"gguf\"")
    if config and not (gguf or source.lower().endswith(SINGLE_FILE_SUFFIXES)):
        raise CatalogError(
            f"model {model!r}: `config` is for single-file checkpoints (.safetensors, .ckpt) or a `gguf` file; "
            f"the source {source!r} is neither, so remove `config`"
        )
    if quantize != "none" and source.lower().endswith(SINGLE_FILE_SUFFIXES):
        raise CatalogError(
            f"model {model!r}: quantize = {quantize!r} needs a diffusers folder or Hub id as `source`, not the "
            f"single-file checkpoint {source!r}; set quantize = \"none\" or use the model's diffusers folder"
        )
    if quantize == "nf4" and offload == "sequential":
        raise CatalogError(
            f"model {model!r}: quantize = \"nf4\" cannot be offloaded layer by layer; use offload = \"model\""
        )
    return MemorySettings(
        offload=offload, quantize=quantize, gguf=resolve(gguf), config=resolve(config),
    )
