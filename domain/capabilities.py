"""What each model family can do with a prompt: pure data, and the rules that read it.

A family is a kind of model with one set of diffusers pipelines (``inference/families/<name>.py`` runs it).
The models file names a family per model; the prompt parser fits each job to its family with :func:`fit`
(what the model cannot do is dropped with a note, or refused with a message that says what to change), and
the cost model counts the passes a step makes with :func:`passes_per_step`.

Guidance, and so ``--no``, differs between families:

* ``cfg``: classifier-free guidance. Every step runs the model twice (prompt and negative prompt) while the
  guidance is above :attr:`Capabilities.cfg_above`; at or below it (turbo and step-distilled models, run at
  guidance 0 or 1) there is no negative pass, so ``--no`` and ``--s`` are dropped with a note.
  Stable Diffusion 1.5/XL/3, Z-Image, FLUX.2 [klein] and Qwen-Image (its "true CFG") guide this way.
* ``distilled``: guidance is an input of the model, one pass a step (FLUX.1 [dev]/[schnell]). ``--no`` runs
  true classifier-free guidance at :data:`NEGATIVE_TRUE_CFG`, a second pass every step: twice the GPU time,
  and the cost model charges it. The house negative prompt never turns that on by itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from domain.aspect import SIDE_STEP
from domain.errors import PromptError

if TYPE_CHECKING:
    from domain.spec import JobSpec

__all__ = [
    "CAPABILITIES",
    "FLOW_SAMPLERS",
    "HOUSE_NEGATIVE",
    "NEGATIVE_TRUE_CFG",
    "SAMPLERS",
    "SD_SAMPLERS",
    "Capabilities",
    "Guidance",
    "capabilities_of",
    "fit",
    "negative_prompt_for",
    "passes_per_step",
    "usual_passes",
]

#: Samplers of the noise-predicting UNet families (SD 1.5, SDXL).
SD_SAMPLERS = ("euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddim", "unipc")
#: Samplers of the flow-matching families (the DiTs): Euler on the flow, as their pipelines ship.
FLOW_SAMPLERS = ("euler",)
#: Every sampler name the models file and ``--sampler`` know; a family offers some of them.
SAMPLERS = tuple(dict.fromkeys((*SD_SAMPLERS, *FLOW_SAMPLERS)))
#: Added to the negative prompt unless ``--style raw``, where it costs nothing (a ``cfg`` family guiding
#: anyway): the bot's house style is "clean".
HOUSE_NEGATIVE = "lowres, blurry, jpeg artifacts, watermark, signature"
#: ``true_cfg_scale`` of a guidance-distilled family (FLUX.1) when the prompt has ``--no``.
NEGATIVE_TRUE_CFG = 3.0
#: Rough words per token of English prompt text, for the note on prompts longer than the encoder reads.
_WORDS_PER_TOKEN = 0.75


class Guidance(StrEnum):
    """How a family is guided, and so how it does ``--no`` (see the module docstring)."""

    CFG = "cfg"
    DISTILLED = "distilled"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What prompts may ask of one family."""

    #: The family's name: the module ``inference/families/<family>.py`` and ``family =`` in the models file.
    family: str
    label: str
    #: Native side in pixels: ``--ar`` keeps ``side**2`` pixels unless the models file sets width and height.
    native_side: int
    #: Both sides of an image are multiples of this (VAE downsampling x the transformer's patch size).
    pixel_multiple: int
    guidance: Guidance
    #: ``cfg`` families make a negative pass only while the guidance is above this.
    cfg_above: float
    #: ``--cfg`` (and the guidance ``--s`` gives) must lie in this range.
    guidance_range: tuple[float, float]
    samplers: tuple[str, ...]
    #: Image to image (V1–V4, Vary, creative upscales) and inpainting (every family here has both; FLUX.2
    #: [klein] does image to image through its inpainting pipeline).
    img2img: bool
    inpaint: bool
    #: Text encoders, for people, and the most prompt tokens they read (the rest is cut off).
    text_encoders: str
    prompt_tokens: int
    #: ``--tile`` (circular padding) works only where every layer that mixes neighbours is a convolution.
    tile: bool
    #: The diffusers pipeline classes a model folder of this family is saved as (``_class_name`` in its
    #: ``model_index.json``); the worker checks a model's folder against them at start-up.
    pipelines: tuple[str, ...] = ()
    #: Whether a single ``.safetensors``/``.ckpt`` checkpoint loads (the pipeline has ``from_single_file``).
    single_file: bool = True
    #: Guidance of a model whose models-file entry names none (the family's pipeline default).
    default_guidance: float = 7.0
    #: ``--c``: prompt embeddings of images 2–4 are spread apart (every family's conditioning takes it).
    chaos: bool = True

    @property
    def default_sampler(self) -> str:
        """The sampler of a model whose models-file entry names none."""
        return "dpmpp_2m_karras" if "dpmpp_2m_karras" in self.samplers else self.samplers[0]


def _flow(family: str, label: str, side: int, guidance: Guidance, cfg_above: float, top: float,
          encoders: str, tokens: int, default: float, pipelines: tuple[str, ...], *,
          single_file: bool = True) -> Capabilities:
    """A flow-matching DiT: 8x VAE and 2x2 patches (multiples of 16), flow samplers, no ``--tile``."""
    return Capabilities(
        family=family, label=label, native_side=side, pixel_multiple=16, guidance=guidance, cfg_above=cfg_above,
        guidance_range=(0.0, top), samplers=FLOW_SAMPLERS, img2img=True, inpaint=True,
        text_encoders=encoders, prompt_tokens=tokens, tile=False, default_guidance=default, pipelines=pipelines,
        single_file=single_file,
    )


CAPABILITIES: dict[str, Capabilities] = {
    caps.family: caps
    for caps in (
        Capabilities(
            family="sd15", label="Stable Diffusion 1.5", native_side=512, pixel_multiple=8, guidance=Guidance.CFG,
            cfg_above=1.0, guidance_range=(0.0, 30.0), samplers=SD_SAMPLERS, img2img=True, inpaint=True,
            text_encoders="CLIP-L", prompt_tokens=77, tile=True,
            pipelines=("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline"),
        ),
        Capabilities(
            family="sdxl", label="Stable Diffusion XL", native_side=1024, pixel_multiple=8, guidance=Guidance.CFG,
            cfg_above=1.0, guidance_range=(0.0, 30.0), samplers=SD_SAMPLERS, img2img=True, inpaint=True,
            text_encoders="CLIP-L + OpenCLIP-bigG", prompt_tokens=77, tile=True,
            pipelines=("StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
                       "StableDiffusionXLInpaintPipeline"),
        ),
        _flow("sd3", "Stable Diffusion 3", 1024, Guidance.CFG, 1.0, 30.0, "CLIP-L + CLIP-G + T5-XXL", 256, 7.0,
              ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "StableDiffusion3InpaintPipeline")),
        _flow("flux", "FLUX.1", 1024, Guidance.DISTILLED, 0.0, 10.0, "CLIP-L + T5-XXL", 512, 3.5,
              ("FluxPipeline", "FluxImg2ImgPipeline", "FluxInpaintPipeline")),
        _flow("flux2", "FLUX.2 [klein]", 1024, Guidance.CFG, 1.0, 10.0, "Qwen3", 512, 4.0,
              ("Flux2KleinPipeline", "Flux2KleinInpaintPipeline"), single_file=False),
        _flow("zimage", "Z-Image", 1024, Guidance.CFG, 0.0, 10.0, "Qwen3", 512, 5.0,
              ("ZImagePipeline", "ZImageImg2ImgPipeline", "ZImageInpaintPipeline")),
        _flow("qwenimage", "Qwen-Image", 1328, Guidance.CFG, 1.0, 20.0, "Qwen2.5-VL", 512, 4.0,
              ("QwenImagePipeline", "QwenImageImg2ImgPipeline", "QwenImageInpaintPipeline"), single_file=False),
    )
}

# --ar sizes are multiples of SIDE_STEP, so they suit every family.
assert all(SIDE_STEP % caps.pixel_multiple == 0 for caps in CAPABILITIES.values())


def capabilities_of(family: str) -> Capabilities:
    """The capabilities of ``family``; raises :class:`KeyError` naming the known families."""
    try:
        return CAPABILITIES[family]
    except KeyError:
        raise KeyError(f"family {family!r} is not one of {', '.join(CAPABILITIES)}") from None


def _guides(caps: Capabilities, guidance: float) -> bool:
    """Whether a ``cfg`` family makes a negative pass at ``guidance``."""
    return caps.guidance is Guidance.CFG and guidance > caps.cfg_above


def negative_prompt_for(caps: Capabilities, spec: JobSpec) -> str | None:
    """The negative prompt a worker conditions on, or ``None`` when the job runs no negative pass.

    A guiding ``cfg`` family gets the member's ``--no`` plus the house style (unless ``--style raw``); a
    distilled family only the member's own ``--no`` (which turns on true CFG there); anything else none.
    """
    if caps.guidance is Guidance.DISTILLED:
        return spec.negative_prompt or None
    if not _guides(caps, spec.guidance_scale):
        return None
    if spec.raw:
        return spec.negative_prompt
    return ", ".join(part for part in (spec.negative_prompt, HOUSE_NEGATIVE) if part)


def passes_per_step(caps: Capabilities, spec: JobSpec) -> int:
    """Model evaluations per denoising step: 2 with a negative pass, else 1."""
    return 1 if negative_prompt_for(caps, spec) is None else 2


def usual_passes(caps: Capabilities) -> int:
    """Passes per step of the family's ordinary job (what its cost model's step price assumes)."""
    return 2 if caps.guidance is Guidance.CFG else 1


def fit(spec: JobSpec, caps: Capabilities, *, model: str) -> tuple[JobSpec, list[str]]:
    """``spec`` as ``model`` (of family ``caps``) can render it, and a note for each thing it dropped.

    Refuses with :class:`PromptError` what would render wrongly: a sampler or guidance the family lacks.
    """
    name = f"`{model}` ({caps.label})"
    if spec.sampler is not None and spec.sampler not in caps.samplers:
        raise PromptError(
            f"`--sampler {spec.sampler}` is not available on {name}; use "
            f"{' or '.join(f'`--sampler {s}`' for s in caps.samplers)}, or leave it out."
        )
    low, high = caps.guidance_range
    if not low <= spec.guidance_scale <= high:
        raise PromptError(
            f"Guidance {spec.guidance_scale:g} is out of range for {name}, which takes {low:g} to {high:g}; "
            "choose a `--cfg` in that range (or a smaller `--s`)."
        )
    notes: list[str] = []
    changes: dict[str, object] = {}
    if caps.guidance is Guidance.CFG and not _guides(caps, spec.guidance_scale):
        unguided = f"{name} runs at guidance {spec.guidance_scale:g}, without a negative pass"
        if spec.negative_prompt:
            notes.append(f"{unguided}, so `--no` was ignored.")
            changes["negative_prompt"] = ""
        if spec.stylize is not None:
            notes.append(f"{unguided}, so `--s` has no effect and was ignored.")
            changes["stylize"] = None
    if spec.tile and not caps.tile:
        notes.append(f"`--tile` is not available on {name} (it needs an all-convolution model), so it was ignored.")
        changes["tile"] = False
    parts = spec.weighted_prompts or ((spec.prompt, 1.0),)
    words = max(len(text.split()) for text, _ in parts)
    readable = math.floor(caps.prompt_tokens * _WORDS_PER_TOKEN)
    if words > readable:
        notes.append(
            f"{name} reads about {caps.prompt_tokens} tokens (some {readable} words) of each prompt; "
            f"words after that are cut off."
        )
    return (spec.replace(**changes) if changes else spec), notes
