"""Load each model once per worker process and keep it.

A worker process serves one GPU and runs one job at a time, so :class:`PipelineCache` is a plain dict
of loaded pipelines, not a thread-safe pool. Nothing touches CUDA until the first model is loaded:
Celery's parent process may import this module, only the child that runs jobs may initialise CUDA.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderTiny

from domain.catalog import ModelPreset
from domain.fastpath import FastPath
from domain.memory import SINGLE_FILE_SUFFIXES
from inference.families import Family, family_of
from inference.pipelines.fastpath import apply_after_placing, apply_before_placing, load_dtype
from inference.pipelines.lora import load_loras
from inference.pipelines.memory import place, pretrained_options, single_file_options

__all__ = ["PipelineCache", "default_device", "default_dtype", "load_pipeline"]

log = logging.getLogger(__name__)



def default_device() -> torch.device:
    """The first CUDA GPU when there is one, else the CPU. Initialises CUDA: call it in the worker child."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on a GPU (float16 can overflow in SDXL's VAE and with random weights), else float32."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _is_local(source: str) -> bool:
    return Path(source).exists()


def load_pipeline(preset: ModelPreset, *, device: torch.device, dtype: torch.dtype) -> Any:
    """Load the text-to-image pipeline of ``preset``'s family (:mod:`inference.families`) onto ``device``.

    ``preset.source`` is a Hub id, a local folder in the diffusers layout (loaded with
    ``local_files_only``, so it never reaches the network), or a single ``.safetensors``/``.ckpt``
    checkpoint (``from_single_file``; diffusers reads that family's component configs from the model's
    ``config`` folder, else from the Hub or its local cache). The model's LoRAs are loaded (turned off), its
    memory settings applied (:mod:`.memory`), then its fast path (:mod:`.fastpath`); ``dtype`` is the
    worker's, unless the fast path names one. Raises :class:`~inference.errors.ModelLoadError` for a memory
    mode, fast-path switch or LoRA that cannot work here.
    """
    dtype = load_dtype(preset, dtype)
    try:
        cls = family_of(preset.family).text_to_image
    except ValueError as exc:
        raise ValueError(f"model {preset.name!r}: {exc}") from None
    source = preset.source
    if source.lower().endswith(SINGLE_FILE_SUFFIXES):
        pipe = cls.from_single_file(source, dtype=dtype, **single_file_options(preset.memory))
    else:
        local = _is_local(source)
        options = pretrained_options(preset, device=device, dtype=dtype, local_files_only=local)
        pipe = cls.from_pretrained(source, dtype=dtype, local_files_only=local, **options)
    load_loras(pipe, preset)
    apply_before_placing(pipe, preset)
    pipe = place(pipe, preset, device)  # .to(device), or offloaded as the models file says
    apply_after_placing(pipe, preset, device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


#: Models share a loaded pipeline when they name the same weights with the same fast path.
_Key = tuple[str, str, FastPath]


def _key(preset: ModelPreset) -> _Key:
    return (preset.family, preset.source, preset.fastpath)


class PipelineCache:
    """The models this process has loaded, by family, source and fast path.

    Parameters
    ----------
    device:
        Where to run; default :func:`default_device`, decided at the first load, not here.
    dtype:
        Weights dtype; default :func:`default_dtype` for the device.

    Pipelines are shared by every job of the process: jobs must put back anything they change on them
    (scheduler excepted: each job installs a fresh one).
    """

    def __init__(self, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> None:
        self._requested_device = device
        self._requested_dtype = dtype
        self._device: torch.device | None = None
        self._text_to_image: dict[_Key, Any] = {}
        self._siblings: dict[tuple[str, _Key], Any] = {}
        self._scheduler_configs: dict[_Key, Any] = {}
        self._preview_decoders: dict[str, Any] = {}
        self._upscalers: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        if self._device is None:
            requested = self._requested_device
            self._device = torch.device(requested) if requested is not None else default_device()
        return self._device

    @property
    def dtype(self) -> torch.dtype:
        return self._requested_dtype or default_dtype(self.device)

    def dtype_for(self, preset: ModelPreset) -> torch.dtype:
        """The dtype ``preset``'s modules are in: its fast path's, else :attr:`dtype`."""
        return load_dtype(preset, self.dtype)

    def text_to_image(self, preset: ModelPreset) -> Any:
        """The text-to-image pipeline of ``preset``, loaded on first use."""
        key = _key(preset)
        if key not in self._text_to_image:
            log.info("loading %s from %s on %s (%s)", preset.name, preset.source, self.device, self.dtype_for(preset))
            pipe = load_pipeline(preset, device=self.device, dtype=self.dtype)
            self._text_to_image[key] = pipe
            # Jobs replace the scheduler; keep the model's own config to build each one from.
            self._scheduler_configs[key] = pipe.scheduler.config
        return self._text_to_image[key]

    def family(self, preset: ModelPreset) -> Family:
        """How ``preset``'s family runs (its pipelines, encoders, call arguments)."""
        return family_of(preset.family)

    def image_to_image(self, preset: ModelPreset) -> Any:
        """The img2img sibling of :meth:`text_to_image`: the same modules, no extra memory.

        Raises :class:`ValueError` for a family without one (the prompt parser and the buttons refuse such
        jobs before they are made).
        """
        return self._sibling(preset, "image-to-image", self.family(preset).image_to_image)

    def inpaint(self, preset: ModelPreset) -> Any:
        """The inpainting sibling of :meth:`text_to_image` (same modules); :class:`ValueError` without one."""
        return self._sibling(preset, "inpainting", self.family(preset).inpaint)

    def _sibling(self, preset: ModelPreset, what: str, cls: type[Any] | None) -> Any:
        if cls is None:
            raise ValueError(f"model {preset.name!r}: family {preset.family!r} has no {what} pipeline")
        key = (what, _key(preset))
        if key not in self._siblings:
            # from_pipe casts every (shared) module to its `dtype` argument, float32 unless given.
            pipe = cls.from_pipe(self.text_to_image(preset), dtype=self.dtype_for(preset))
            pipe.set_progress_bar_config(disable=True)  # from_pipe does not carry it over
            self._siblings[key] = pipe
        return self._siblings[key]

    def scheduler_config(self, preset: ModelPreset) -> Any:
        """The scheduler config ``preset``'s model was saved with (its noise schedule)."""
        self.text_to_image(preset)
        return self._scheduler_configs[_key(preset)]

    def preview_decoder(self, preset: ModelPreset) -> Any | None:
        """The TAESD decoder named by ``preset.preview``, or ``None`` when the preset has none."""
        source = preset.preview
        if not source:
            return None
        if source not in self._preview_decoders:
            decoder = AutoencoderTiny.from_pretrained(
                source, dtype=self.dtype, local_files_only=_is_local(source)
            )
            self._preview_decoders[source] = decoder.to(self.device).eval()
        return self._preview_decoders[source]

    def upscaler(self, preset: ModelPreset) -> Any | None:
        """The Real-ESRGAN-family model (a spandrel ``ImageModelDescriptor``) of ``preset.upscaler``, or
        ``None`` when the preset has none."""
        path = preset.upscaler
        if not path:
            return None
        if path not in self._upscalers:
            from spandrel import ModelLoader  # imports torchvision: only when an upscaler is configured

            model = ModelLoader(device=self.device).load_from_file(path)
            self._upscalers[path] = model.eval()
        return self._upscalers[path]
