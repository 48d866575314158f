"""Single-file (original-layout) checkpoints, SD 1.5 and SDXL: they load with no network from a local ``config``
folder, draw what the same model's diffusers folder draws, and a missing or broken ``config`` folder is one line at
start-up."""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from domain.catalog import ModelPreset, parse_catalog
from inference.modelcheck import check_model
from tests.imagine.test_cli import imagine
from tests.support.checkpoints import (
    CLIP,
    CLIP_XL,
    OPEN_CLIP_XL,
    UNET,
    VAE,
    copy_configs,
    write_sd15_checkpoint,
    write_sdxl_checkpoint,
    write_tiny_sdxl,
)

#: Hub access fails at once: anything that tried the network would fail the test instead of waiting.
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}


@pytest.fixture(scope="module")
def single_file(tiny_models_file: Path) -> tuple[Path, Path]:
    """The tiny SD 1.5 as one checkpoint, and a copy of its folder with no weights (its ``config`` folder)."""
    folder = tiny_models_file.parent / "tiny-sd"
    out = tiny_models_file.parent / "single-file"
    checkpoint = write_sd15_checkpoint(folder, out / "tiny-sd.safetensors")
    return checkpoint, copy_configs(folder, out / "tiny-sd-config")


@pytest.fixture(scope="module")
def single_file_models(tiny_models_file: Path, single_file: tuple[Path, Path]) -> Path:
    """A models file beside the tiny models with ``tiny`` (the folder) and ``tiny-file`` (the checkpoint and its
    config folder, relative paths as an operator writes them): the same model with the same defaults."""
    tiny = tomllib.loads(tiny_models_file.read_text())["models"]["tiny"]
    table = {key: value for key, value in tiny.items() if key not in ("aliases", "draft", "loras")}
    base = tiny_models_file.parent
    checkpoint, config = (f"./{path.relative_to(base)}" for path in single_file)
    models = {"tiny": table, "tiny-file": {**table, "source": checkpoint, "config": config}}
    lines = ['default = "tiny"\n']
    for name, values in models.items():
        lines.append(f"\n[models.{name}]\n")
        lines += [f"{key} = {json.dumps(value)}\n" for key, value in values.items()]
    path = base / "single-file.toml"
    path.write_text("".join(lines))
    return path


def test_the_file_has_the_original_layout(single_file: tuple[Path, Path]) -> None:
    with safe_open(str(single_file[0]), framework="pt") as file:
        keys = set(file.keys())
        assert file.get_tensor(VAE + "decoder.mid.attn_1.q.weight").ndim == 4  # a 1x1 convolution
    assert all(key.startswith((UNET, VAE, CLIP)) for key in keys)
    assert {UNET + "input_blocks.0.0.weight", UNET + "input_blocks.2.0.op.weight",
            UNET + "output_blocks.1.1.conv.weight", UNET + "middle_block.1.proj_in.weight",
            UNET + "input_blocks.1.0.in_layers.2.weight", VAE + "decoder.up.3.upsample.conv.weight",
            CLIP + "text_model.embeddings.position_embedding.weight"} <= keys


def test_diffusers_single_file_loader_gives_back_the_folders_weights_offline(
    tiny_models_file: Path, single_file: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants
    from diffusers import StableDiffusionPipeline

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets
    checkpoint, config = single_file
    loaded = StableDiffusionPipeline.from_single_file(str(checkpoint), config=str(config), local_files_only=True)
    folder = StableDiffusionPipeline.from_pretrained(tiny_models_file.parent / "tiny-sd", local_files_only=True)
    for component in ("unet", "vae", "text_encoder"):
        want = getattr(folder, component).state_dict()
        got = getattr(loaded, component).state_dict()
        assert set(got) == set(want), component
        assert [key for key in want if not torch.equal(got[key], want[key])] == [], component


def test_generate_on_the_checkpoint_draws_the_folders_grid_with_the_hub_offline(
    single_file_models: Path, tmp_path: Path
) -> None:
    env = {"MODELS_FILE": str(single_file_models), **OFFLINE}
    out = tmp_path / "grid.png"
    # One process, two grids (a permutation prompt): the checkpoint's, then the folder's.
    result = imagine("generate", "a fox --model {tiny-file, tiny} --seed 7", "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr
    with Image.open(out) as from_file, Image.open(tmp_path / "grid-2.png") as from_folder:
        assert from_file.size == from_folder.size
        assert from_file.tobytes() == from_folder.tobytes()
        assert len(set(from_folder.getdata())) > 100  # a random model's noise, not a blank grid


@pytest.fixture(scope="module")
def checkpoint_preset(single_file_models: Path) -> ModelPreset:
    return parse_catalog(tomllib.loads(single_file_models.read_text()), single_file_models.parent).get("tiny-file")


def test_a_complete_config_folder_looks_loadable(checkpoint_preset: ModelPreset) -> None:
    assert check_model(checkpoint_preset) is None


def test_a_missing_or_broken_config_folder_is_named(checkpoint_preset: ModelPreset, tmp_path: Path) -> None:
    fix = "set `config` to a local diffusers folder of this model (its model_index.json and component configs)"
    config = Path(checkpoint_preset.memory.config)
    missing = tmp_path / "no-such-folder"
    assert check_model(_with_config(checkpoint_preset, missing)) == (
        f"its config folder {missing} does not exist; {fix}"
    )
    no_index = shutil.copytree(config, tmp_path / "no-index")
    (no_index / "model_index.json").unlink()
    problem = check_model(_with_config(checkpoint_preset, no_index))
    assert problem is not None and problem.startswith(f"its config folder {no_index} has no readable model_index.json")
    no_scheduler = shutil.copytree(config, tmp_path / "no-scheduler")
    shutil.rmtree(no_scheduler / "scheduler")
    assert check_model(_with_config(checkpoint_preset, no_scheduler)) == (
        f"its config folder {no_scheduler} has no scheduler config (no scheduler/*.json); {fix}"
    )
    other = shutil.copytree(config, tmp_path / "other-family")
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline"}))
    assert check_model(_with_config(checkpoint_preset, other)) == (
        f"its config folder {other} holds a FluxPipeline pipeline, not one of family 'sd15' "
        f"(StableDiffusionPipeline); {fix}"
    )


def _with_config(preset: ModelPreset, config: Path) -> ModelPreset:
    return replace(preset, memory=replace(preset.memory, config=str(config)))


# -- SDXL ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdxl_single_file(tiny_models_file: Path) -> tuple[Path, Path, Path]:
    """A tiny SDXL folder (:func:`write_tiny_sdxl`: its second text encoder wider than the first, as SDXL's), the
    same model as one original-layout checkpoint, and its folder without weights (the ``config`` folder)."""
    base = tiny_models_file.parent
    folder = write_tiny_sdxl(base / "tiny-sdxl-wide")
    checkpoint = write_sdxl_checkpoint(folder, base / "single-file" / "tiny-sdxl.safetensors")
    return folder, checkpoint, copy_configs(folder, base / "single-file" / "tiny-sdxl-config")


@pytest.fixture(scope="module")
def sdxl_single_file_models(tiny_models_file: Path, sdxl_single_file: tuple[Path, Path, Path]) -> Path:
    """A models file with ``xl`` (the tiny SDXL folder) and ``xl-file`` (its checkpoint and config folder), both
    with the tiny SDXL's defaults."""
    tiny = tomllib.loads(tiny_models_file.read_text())["models"]["tiny-xl"]
    table = {key: value for key, value in tiny.items() if key not in ("aliases", "draft", "loras")}
    base = tiny_models_file.parent
    folder, checkpoint, config = (f"./{path.relative_to(base)}" for path in sdxl_single_file)
    models = {"xl": {**table, "source": folder}, "xl-file": {**table, "source": checkpoint, "config": config}}
    lines = ['default = "xl"\n']
    for name, values in models.items():
        lines.append(f"\n[models.{name}]\n")
        lines += [f"{key} = {json.dumps(value)}\n" for key, value in values.items()]
    path = base / "sdxl-single-file.toml"
    path.write_text("".join(lines))
    return path


def test_the_sdxl_file_has_the_original_layout(sdxl_single_file: tuple[Path, Path, Path]) -> None:
    with safe_open(str(sdxl_single_file[1]), framework="pt") as file:
        keys = set(file.keys())
        width_2 = file.get_tensor(OPEN_CLIP_XL + "positional_embedding").shape[-1]
        assert file.get_tensor(OPEN_CLIP_XL + "transformer.resblocks.1.attn.in_proj_weight").shape == (
            3 * width_2, width_2)  # q, k and v in one
    assert all(key.startswith((UNET, VAE, CLIP_XL, OPEN_CLIP_XL)) for key in keys)
    assert {UNET + "label_emb.0.0.weight", UNET + "label_emb.0.2.weight", UNET + "middle_block.1.proj_in.weight",
            CLIP_XL + "text_model.embeddings.position_embedding.weight", OPEN_CLIP_XL + "token_embedding.weight",
            OPEN_CLIP_XL + "text_projection", OPEN_CLIP_XL + "ln_final.weight",
            OPEN_CLIP_XL + "transformer.resblocks.0.mlp.c_fc.weight"} <= keys


def test_diffusers_loads_the_sdxl_file_with_the_folders_weights_offline(
    sdxl_single_file: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants
    from diffusers import StableDiffusionXLPipeline

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets
    folder, checkpoint, config = sdxl_single_file
    loaded = StableDiffusionXLPipeline.from_single_file(str(checkpoint), config=str(config), local_files_only=True)
    pipe = StableDiffusionXLPipeline.from_pretrained(folder, local_files_only=True)
    for component in ("unet", "vae", "text_encoder", "text_encoder_2"):
        want = getattr(pipe, component).state_dict()
        got = getattr(loaded, component).state_dict()
        assert set(got) == set(want), component
        assert [key for key in want if not torch.equal(got[key], want[key])] == [], component


def test_generate_on_the_sdxl_checkpoint_draws_the_folders_grid_with_the_hub_offline(
    sdxl_single_file_models: Path, tmp_path: Path
) -> None:
    catalog = parse_catalog(tomllib.loads(sdxl_single_file_models.read_text()), sdxl_single_file_models.parent)
    assert check_model(catalog.get("xl-file")) is None
    out = tmp_path / "grid.png"
    result = imagine("generate", "a fox --model {xl-file, xl} --seed 7", "--out", str(out),
                     env={"MODELS_FILE": str(sdxl_single_file_models), **OFFLINE})
    assert result.returncode == 0, result.stderr
    with Image.open(out) as from_file, Image.open(tmp_path / "grid-2.png") as from_folder:
        assert from_file.size == from_folder.size
        assert from_file.tobytes() == from_folder.tobytes()
        assert len(set(from_folder.getdata())) > 100  # a random model's noise, not a blank grid
