"""Tiny random-weight models of every family, for tests, demos and smoke runs: real code paths, no downloads.

:func:`write_tiny_model` writes a folder that looks exactly like a real deployment's models folder::

    DIR/
      tiny-sd/                  Stable Diffusion 1.x pipeline (save_pretrained layout), 128 px
      tiny-sdxl/                Stable Diffusion XL
      tiny-sd3/                 Stable Diffusion 3
      tiny-flux/                FLUX.1 [dev]-like
      tiny-flux2/               FLUX.2 [klein]-like
      tiny-zimage/              Z-Image (Turbo-like)
      tiny-qwenimage/           Qwen-Image
      tiny-taesd/               TAESD preview decoder (AutoencoderTiny, 4 latent channels: SD 1.5 / SDXL)
      tiny-taesd-16/            the same with 16 latent channels (SD 3, FLUX.1, Z-Image)
      tiny-esrgan-x4.pth        Real-ESRGAN architecture (RRDBNet), x4, as spandrel loads it
      tiny-sd-lora.safetensors  a LoRA for tiny-sd (diffusers' LoRA format), TINY_SD_LORA
      tiny-flux-lora.safetensors  one for tiny-flux, TINY_FLUX_LORA
      models.toml               the models file, "tiny" (SD 1.5) the default

Each family has one module here with a ``build(seed) -> pipeline`` function, its folder name ``FOLDER``
and its ``models.toml`` table ``MODEL``; adding a family is one module and one line in ``FAMILY_MODULES``.
The weights are random, so the pictures are noise; what matters is that every loader, scheduler and
decoder runs for real (``from_pretrained(path)``, ``ModelLoader().load_from_file``). The same ``seed``
writes the same weights.
"""

from inference.tiny.lora import LORA_FILES, TINY_FLUX_LORA, TINY_SD_LORA
from inference.tiny.writer import FAMILY_MODULES, write_tiny_model

__all__ = ["FAMILY_MODULES", "LORA_FILES", "TINY_FLUX_LORA", "TINY_SD_LORA", "write_tiny_model"]
