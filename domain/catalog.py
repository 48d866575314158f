"""The models file: which diffusion models this deployment serves, and their defaults.

The file is TOML, read once at start-up::

    default = "sd15"

    [models.sd15]
    source = "stable-diffusion-v1-5/stable-diffusion-v1-5"   # Hub id, local folder, or .safetensors file
    family = "sd15"                                           # sd15 sdxl sd3 flux flux2 zimage qwenimage
    aliases = ["5"]                                           # names accepted by --model / --v
    width = 512                                               # default: the family's native side; --ar keeps
    height = 512                                              # width*height; multiples of the family's pixel step
    steps = 30
    guidance = 7.0                                            # default: the family's
    scheduler = "dpmpp_2m_karras"                             # default: the family's; one the family offers
    preview = ""                                              # optional tiny VAE (TAESD) for live previews
    upscaler = ""                                             # optional Real-ESRGAN weights (.pth/.safetensors)
    upscale = "subtle"                                        # U1–U4: "subtle" (upscaler weights) or "creative"
    offload = "none"                                          # memory modes: see domain.memory
    quantize = "none"
    draft = "sd15-fast"                                       # --draft: see domain.draft
    fastpath = "quality"                                      # GPU speed switches: see domain.fastpath

    [[models.sd15.loras]]                                     # --lora NAME[:WEIGHT]: see domain.loras
    name = "ink"
    source = "./loras/ink.safetensors"

Relative paths are resolved against the folder holding the models file. What each family can do is in
:mod:`domain.capabilities`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from domain.capabilities import CAPABILITIES, SAMPLERS, Capabilities
from domain.draft import DraftPreset, check_draft, parse_draft
from domain.errors import CatalogError, UnknownModelError
from domain.fastpath import FastPath, parse_fastpath
from domain.loras import LoraPreset, parse_loras
from domain.memory import MemorySettings, parse_memory
from domain.tomlfile import read_toml

__all__ = ["SCHEDULERS", "UPSCALE_MODES", "Catalog", "ModelPreset", "load_catalog"]

#: Sampler names accepted in the models file and by ``--sampler`` (each family offers some of them).
SCHEDULERS = SAMPLERS
#: Upscalers a model can give U1–U4: "subtle" (Real-ESRGAN-family weights via spandrel; Lanczos when none are
#: configured) or "creative" (enlarge, then img2img with the same model at low strength).
UPSCALE_MODES = ("subtle", "creative")


@dataclass(frozen=True, slots=True)
class ModelPreset:
    name: str
    source: str
    family: str
    width: int
    height: int
    steps: int = 30
    guidance: float = 7.0
    scheduler: str = "dpmpp_2m_karras"
    aliases: tuple[str, ...] = ()
    preview: str = ""
    upscaler: str = ""
    #: What U1–U4 use: "subtle" (the ``upscaler`` weights; Lanczos without them) or "creative" (img2img).
    upscale: str = "subtle"
    description: str = ""
    #: offload / quantize / single-file configs (:mod:`domain.memory`).
    memory: MemorySettings = field(default_factory=MemorySettings)
    #: The LoRAs members may pick with ``--lora`` (:mod:`domain.loras`).
    loras: tuple[LoraPreset, ...] = ()
    #: What ``--draft`` runs on (:mod:`domain.draft`); ``None``: no draft mode.
    draft: DraftPreset | None = None
    #: The GPU fast path's switches (:mod:`domain.fastpath`); all off by default.
    fastpath: FastPath = field(default_factory=FastPath)

    @property
    def pixel_budget(self) -> int:
        """Pixels of one native-size image: ``--ar`` keeps the area near this."""
        return self.width * self.height

    @property
    def capabilities(self) -> Capabilities:
        """What this model's family can do (the family was checked when the file was read)."""
        return CAPABILITIES[self.family]


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelPreset]
    default: str
    path: Path | None = None
    _aliases: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.default not in self.models:
            raise CatalogError(f"default model {self.default!r} is not defined under [models]")
        for preset in self.models.values():
            for key in (preset.name, *preset.aliases):
                owner = self._aliases.setdefault(key.lower(), preset.name)
                if owner != preset.name:
                    raise CatalogError(f"model name or alias {key!r} is used by both {owner!r} and {preset.name!r}")
        for preset in self.models.values():
            check_draft(preset, self.models)

    @property
    def names(self) -> list[str]:
        return list(self.models)

    @property
    def default_preset(self) -> ModelPreset:
        return self.models[self.default]

    def find(self, name: str | None) -> ModelPreset | None:
        """The preset for a name or alias (case-insensitive); the default for ``None``."""
        if name is None:
            return self.default_preset
        key = self._aliases.get(name.strip().lower())
        return self.models[key] if key else None

    def get(self, name: str | None) -> ModelPreset:
        """Like :meth:`find`, but raises :class:`UnknownModelError` for unknown names."""
        preset = self.find(name)
        if preset is None:
            raise UnknownModelError(str(name), self.names)
        return preset

    def search(self, text: str, limit: int = 25) -> list[ModelPreset]:
        """Presets whose name, alias or description contains ``text`` (for autocomplete)."""
        needle = text.strip().lower()
        found = [
            p for p in self.models.values()
            if not needle or needle in p.name.lower() or any(needle in a.lower() for a in p.aliases)
            or needle in p.description.lower()
        ]
        return found[:limit]


def _resolve(value: str, base: Path) -> str:
    """Make a relative local path absolute; leave Hub ids (``org/name``) alone."""
    if not value:
        return value
    candidate = base / value
    if value.startswith(("./", "../")) or (not Path(value).is_absolute() and candidate.exists()):
        return str(candidate.resolve())
    return value


def _preset(name: str, table: dict[str, Any], base: Path) -> ModelPreset:
    if "source" not in table:
        raise CatalogError(f"model {name!r} has no `source`")
    family = str(table.get("family", "sd15"))
    caps = CAPABILITIES.get(family)
    if caps is None:
        raise CatalogError(f"model {name!r}: family {family!r} is not one of {', '.join(CAPABILITIES)}")
    scheduler = str(table.get("scheduler", caps.default_sampler))
    if scheduler not in caps.samplers:
        raise CatalogError(
            f"model {name!r}: scheduler {scheduler!r} is not one of {', '.join(caps.samplers)} "
            f"(the samplers of family {family!r})"
        )
    upscale = str(table.get("upscale", "subtle"))
    if upscale not in UPSCALE_MODES:
        raise CatalogError(f"model {name!r}: upscale {upscale!r} is not one of {', '.join(UPSCALE_MODES)}")

    def resolve(value: str) -> str:
        return _resolve(value, base)

    memory = parse_memory(name, table, resolve)
    loras = parse_loras(name, table.get("loras"), resolve)
    draft = parse_draft(name, table.get("draft"), caps.samplers)
    fastpath = parse_fastpath(name, family, table.get("fastpath"), memory=memory, has_loras=bool(loras))
    try:
        preset = ModelPreset(
            name=name,
            source=_resolve(str(table["source"]), base),
            family=family,
            width=int(table.get("width", caps.native_side)),
            height=int(table.get("height", caps.native_side)),
            steps=int(table.get("steps", 30)),
            guidance=float(table.get("guidance", caps.default_guidance)),
            scheduler=scheduler,
            aliases=tuple(str(a) for a in table.get("aliases", ())),
            preview=_resolve(str(table.get("preview", "")), base),
            upscaler=_resolve(str(table.get("upscaler", "")), base),
            upscale=upscale,
            description=str(table.get("description", "")),
            memory=memory,
            loras=loras,
            draft=draft,
            fastpath=fastpath,
        )
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"model {name!r}: {exc}") from exc
    step = caps.pixel_multiple
    if preset.width <= 0 or preset.height <= 0 or preset.width % step or preset.height % step:
        raise CatalogError(
            f"model {name!r}: width and height must be positive multiples of {step} for family {family!r}, "
            f"not {preset.width}x{preset.height}"
        )
    low, high = caps.guidance_range
    if not low <= preset.guidance <= high:
        raise CatalogError(f"model {name!r}: guidance {preset.guidance:g} is outside {low:g} to {high:g} "
                           f"(family {family!r})")
    return preset


def parse_catalog(data: dict[str, Any], base: Path, path: Path | None = None) -> Catalog:
    tables = data.get("models")
    if not isinstance(tables, dict) or not tables:
        raise CatalogError("the models file defines no [models.<name>] table")
    models = {name: _preset(name, table, base) for name, table in tables.items()}
    default = str(data.get("default", next(iter(models))))
    return Catalog(models=models, default=default, path=path)


def load_catalog(path: Path) -> Catalog:
    """Read a models file. Raises :class:`CatalogError` with the file name on any problem."""
    return parse_catalog(read_toml(path, "models", CatalogError), path.parent.resolve(), path)
