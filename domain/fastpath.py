"""The GPU fast path of a model: how its worker trades generality for speed.

One optional key per ``[models.<name>]``, a preset name or a table of switches::

    fastpath = "quality"          # every switch that keeps the picture, for this family
    fastpath = "speed"            # the same, plus step caching: faster, a little less faithful

    [models.flux-dev.fastpath]    # or switch by switch; `preset` (optional) is where the table starts from
    preset = "quality"
    dtype = "bf16"                # bf16 | fp16 | fp32; default: the worker's (bf16 on a GPU, fp32 on a CPU)
    attention = "auto"            # auto | sdpa | flash | flash3 | cudnn
    fuse_qkv = true               # fused query/key/value projections
    channels_last = true          # UNets: channels_last memory format
    compile = true                # torch.compile of the repeated blocks, every --ar size warmed at start
    compile_mode = "default"      # default | max-autotune-no-cudagraphs | max-autotune
    fp8 = false                   # fp8 weights and activations (torchao); compute capability 8.9+ (Ada, Hopper)
    cache = "none"                # none | first_block | taylorseer: reuse block outputs between steps
    cache_threshold = 0.2         # first_block: how much the first block's output may change and still reuse
    vae_tiling = true             # decode and encode big images (creative upscales) in tiles

A switch a family cannot use is refused when the file is read, naming the model, the key and what to
change (:data:`SUPPORT` says which family has which); so are combinations that cannot work (fused or
compiled blocks with LoRAs, fp8 compute with a ``quantize`` mode or offloading). What needs the card
(flash attention kernels, fp8's compute capability) is checked when the worker loads the model.
This module only reads and checks; :mod:`inference.pipelines.fastpath` applies the switches.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from domain.errors import CatalogError
from domain.memory import MemorySettings

__all__ = [
    "ATTENTION",
    "CACHES",
    "COMPILE_MODES",
    "DTYPES",
    "PRESETS",
    "SUPPORT",
    "FamilySupport",
    "FastPath",
    "parse_fastpath",
]

DTYPES = ("auto", "bf16", "fp16", "fp32")
#: ``auto``: FlashAttention-3 on a Hopper card where its kernels are installed, else PyTorch's SDPA (which
#: itself picks FlashAttention-2 or memory-efficient kernels on a GPU).
ATTENTION = ("auto", "sdpa", "flash", "flash3", "cudnn")
CACHES = ("none", "first_block", "taylorseer")
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "max-autotune")
PRESETS = ("none", "quality", "speed")


@dataclass(frozen=True, slots=True)
class FamilySupport:
    """Which fast-path switches a family's diffusers modules take (diffusers 0.42)."""

    #: Attention backends beyond SDPA: the family's attention processors go through diffusers' dispatcher.
    attention_backends: bool = False
    #: ``fuse_qkv_projections`` exists and keeps the picture.
    fuse_qkv: bool = False
    #: A UNet: convolutions gain from channels_last.
    channels_last: bool = False
    #: The denoiser names its repeated blocks (``_repeated_blocks``) for regional compilation.
    compile: bool = False
    #: Step caches whose hooks the family's pipeline drives (it opens the denoiser's ``cache_context``).
    caches: tuple[str, ...] = ()


_UNET = FamilySupport(fuse_qkv=True, channels_last=True, compile=True)
SUPPORT: dict[str, FamilySupport] = {
    "sd15": _UNET,
    "sdxl": _UNET,
    "sd3": FamilySupport(),
    "flux": FamilySupport(attention_backends=True, fuse_qkv=True, compile=True,
                          caches=("first_block", "taylorseer")),
    "flux2": FamilySupport(attention_backends=True, fuse_qkv=True, compile=True, caches=("taylorseer",)),
    "zimage": FamilySupport(attention_backends=True, compile=True),
    "qwenimage": FamilySupport(attention_backends=True, compile=True, caches=("taylorseer",)),
}


@dataclass(frozen=True, slots=True)
class FastPath:
    """The switches of one model; the defaults are diffusers' own behaviour (nothing switched on)."""

    dtype: str = "auto"
    attention: str = "auto"
    fuse_qkv: bool = False
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"
    fp8: bool = False
    cache: str = "none"
    #: ``first_block``: the relative change of the first block's residual under which the rest is reused.
    cache_threshold: float = 0.2
    vae_tiling: bool = False

    @classmethod
    def preset(cls, name: str, family: str) -> FastPath:
        """``quality``: what ``family`` supports of bf16, fused QKV, channels_last, compile and VAE tiling;
        ``speed``: that and the family's first step cache; ``none``: nothing."""
        if name == "none":
            return cls()
        support = SUPPORT.get(family, FamilySupport())
        quality = cls(dtype="bf16", fuse_qkv=support.fuse_qkv, channels_last=support.channels_last,
                      compile=support.compile, vae_tiling=True)
        if name == "speed" and support.caches:
            return replace(quality, cache=support.caches[0])
        return quality

    @property
    def enabled(self) -> bool:
        return self != FastPath()


_SWITCHES = {f.name: f for f in fields(FastPath)}
_CHOICES = {"dtype": DTYPES, "attention": ATTENTION, "cache": CACHES, "compile_mode": COMPILE_MODES}


def parse_fastpath(
    model: str, family: str, value: Any, *, memory: MemorySettings, has_loras: bool
) -> FastPath:
    """The ``fastpath`` key of ``[models.<model>]`` (absent: ``None``); :class:`CatalogError` otherwise."""
    if value is None:
        return FastPath()
    table: dict[str, Any] = {"preset": value} if isinstance(value, str) else value
    if not isinstance(table, dict):
        raise CatalogError(f"model {model!r}: fastpath must be one of {', '.join(PRESETS)} or a table, not {value!r}")
    preset = table.get("preset", "none")
    if preset not in PRESETS:
        raise CatalogError(f"model {model!r}: fastpath preset {preset!r} is not one of {', '.join(PRESETS)}")
    settings: dict[str, Any] = {}
    for key, raw in table.items():
        if key == "preset":
            continue
        if key not in _SWITCHES:
            raise CatalogError(f"model {model!r}: fastpath has no key {key!r}; the keys are preset, "
                               + ", ".join(_SWITCHES))
        choices = _CHOICES.get(key)
        if choices is not None and raw not in choices:
            raise CatalogError(f"model {model!r}: fastpath {key} {raw!r} is not one of {', '.join(choices)}")
        if key == "cache_threshold":
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 1:
                raise CatalogError(f"model {model!r}: fastpath cache_threshold must be a number above 0 and at "
                                   f"most 1, not {raw!r}")
            raw = float(raw)
        elif choices is None and not isinstance(raw, bool):
            raise CatalogError(f"model {model!r}: fastpath {key} must be true or false, not {raw!r}")
        settings[key] = raw
    fast = replace(FastPath.preset(preset, family), **settings)
    _check(model, family, fast, memory=memory, has_loras=has_loras)
    return fast


def _check(model: str, family: str, fast: FastPath, *, memory: MemorySettings, has_loras: bool) -> None:
    support = SUPPORT.get(family, FamilySupport())
    where = f"model {model!r}: fastpath"
    if fast.attention not in ("auto", "sdpa") and not support.attention_backends:
        raise CatalogError(f"{where} attention {fast.attention!r} is not available for family {family!r} "
                           "(its attention runs on PyTorch's SDPA); use attention = \"auto\" or \"sdpa\"")
    for key, ok in (("fuse_qkv", support.fuse_qkv), ("channels_last", support.channels_last),
                    ("compile", support.compile)):
        if getattr(fast, key) and not ok:
            raise CatalogError(f"{where} {key} is not available for family {family!r}; set {key} = false")
    if fast.cache != "none" and fast.cache not in support.caches:
        offered = ", ".join(support.caches) or "none"
        raise CatalogError(f"{where} cache {fast.cache!r} is not available for family {family!r} "
                           f"(it offers: {offered}); set cache = \"none\"")
    if fast.cache != "first_block" and fast.cache_threshold != FastPath().cache_threshold:
        raise CatalogError(f"{where} cache_threshold is for cache = \"first_block\"; remove it or set that cache")
    if has_loras:
        for key in ("fuse_qkv", "compile"):
            if getattr(fast, key):
                raise CatalogError(f"{where} {key} cannot be used with LoRAs (each job sets its own adapters on "
                                   f"those layers); set {key} = false or remove the model's loras")
    if fast.fp8 and memory.quantize != "none":
        raise CatalogError(f"{where} fp8 quantizes the denoiser itself; remove quantize = {memory.quantize!r} "
                           "or set fp8 = false")
    if fast.fp8 and memory.offload != "none":
        raise CatalogError(f"{where} fp8 is for a model that fits on the card, not offload = {memory.offload!r}; "
                           "use quantize = \"fp8\" to save memory, or set offload = \"none\"")
    if fast.compile and memory.offload == "sequential":
        raise CatalogError(f"{where} compile cannot follow weights moved layer by layer (offload = "
                           "\"sequential\"); use offload = \"model\" or set compile = false")
