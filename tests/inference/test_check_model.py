"""check_model: what the worker reports at start-up about a model that cannot load, before loading anything."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from domain.catalog import Catalog, ModelPreset
from inference.modelcheck import check_model
from tests.imagine.test_cli import imagine
from tests.support.fakehub import FakeHub
from tests.support.services import REPO as ROOT


def test_every_tiny_model_looks_loadable(catalog: Catalog) -> None:
    assert {name: check_model(catalog.get(name)) for name in catalog.names} == dict.fromkeys(catalog.names)


def test_a_folder_of_another_family_is_named(preset: ModelPreset) -> None:
    wrong = replace(preset, family="flux", scheduler="euler")
    assert check_model(wrong) == (
        f"{preset.source} holds a StableDiffusionPipeline pipeline, not one of family 'flux' (FluxPipeline)"
    )


def test_checking_imports_no_torch() -> None:
    from tests.test_layering import loaded_after_import

    assert not loaded_after_import("inference.modelcheck, imagine.runner") & {"torch", "diffusers"}


def test_missing_weights_and_missing_files(preset: ModelPreset, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(preset.source, copy)
    for weights in (copy / "unet").glob("*.safetensors"):
        weights.unlink()
    assert check_model(_at(preset, str(copy))) == f"its unet weights are missing from {copy / 'unet'}"
    other = tmp_path / "other"
    shutil.copytree(preset.source, other)
    shutil.rmtree(other / "vae")
    assert check_model(_at(preset, str(other))) == f"its vae folder is missing from {other}"
    problem = check_model(_at(preset, str(tmp_path / "nothing-here")))
    assert problem is not None and problem.startswith(f"no pipeline at {tmp_path / 'nothing-here'}")
    assert check_model(_at(preset, str(tmp_path / "model.safetensors"))) == (
        f"there is no checkpoint file at {tmp_path / 'model.safetensors'}"
    )
    klein = replace(preset, family="flux2", scheduler="euler", source=str(tmp_path / "klein.safetensors"))
    assert check_model(klein) == (
        "family 'flux2' cannot load a single-file checkpoint; use a diffusers folder or Hub id"
    )


def _at(preset: ModelPreset, source: str) -> ModelPreset:
    return replace(preset, source=source)


# -- a single-file checkpoint without `config`: diffusers takes its configs from the Hub, or the Hub's cache ------

V1_REPO = "stable-diffusion-v1-5/stable-diffusion-v1-5"
CONFIG_FIX = ("set `config` to a local folder with the family's pipeline configs (a diffusers folder of this model: "
              "its model_index.json and component configs; no weights needed)")
CHECK = ("import json, sys; from domain.catalog import load_catalog; from inference.modelcheck import check_model; "
         "from pathlib import Path; "
         "print(json.dumps(check_model(load_catalog(Path(sys.argv[1])).get(sys.argv[2]))))")


@pytest.fixture(scope="module")
def no_config_models(tiny_models_file: Path) -> Path:
    """A models file beside the tiny models with ``tiny`` (the folder) and ``tiny-file``: the same model as one
    checkpoint, with no ``config``."""
    from tests.support.checkpoints import write_sd15_checkpoint

    folder = tiny_models_file.parent
    checkpoint = write_sd15_checkpoint(folder / "tiny-sd", folder / "no-config" / "tiny-sd.safetensors")
    tiny = tomllib.loads(tiny_models_file.read_text())["models"]["tiny"]
    table = {key: value for key, value in tiny.items() if key not in ("aliases", "draft", "loras")}
    models = {"tiny": table, "tiny-file": {**table, "source": str(checkpoint)}}
    lines = ['default = "tiny"\n']
    for name, values in models.items():
        lines.append(f"\n[models.{name}]\n")
        lines += [f"{key} = {json.dumps(value)}\n" for key, value in values.items()]
    path = folder / "no-config.toml"
    path.write_text("".join(lines))
    return path


HUB_REPO = "imagine-tests/tiny-sd"
HUB_FETCH = f"download it into the Hugging Face cache first (`hf download {HUB_REPO}`)"


@pytest.fixture(scope="module")
def hub_models(tiny_models_file: Path) -> Path:
    """A models file whose ``tiny`` is the Hub model :data:`HUB_REPO` (the tiny SD 1.5, served by a fake Hub)."""
    tiny = tomllib.loads(tiny_models_file.read_text())["models"]["tiny"]
    table = {key: value for key, value in tiny.items() if key not in ("aliases", "draft", "loras", "preview",
                                                                      "upscaler")}
    lines = ['default = "tiny"\n', "\n[models.tiny]\n"]
    lines += [f"{key} = {json.dumps(value)}\n" for key, value in {**table, "source": HUB_REPO}.items()]
    path = tiny_models_file.parent / "hub-models.toml"
    path.write_text("".join(lines))
    return path


def test_a_hub_model_in_the_cache_is_checked_without_asking_the_hub(hub_models: Path, tmp_path: Path) -> None:
    home = str(tmp_path / "hf")
    with FakeHub() as hub:
        hub.add(HUB_REPO, _tiny_folder(hub_models))
        assert _check(hub_models, "tiny", {"HF_HOME": home, "HF_ENDPOINT": hub.url}) is None
        assert hub.gets(HUB_REPO, "model_index.json") == 1  # not cached yet: read from the Hub
        asked = _of_repo(hub)
        assert _check(hub_models, "tiny", {"HF_HOME": home, "HF_ENDPOINT": hub.url}) is None
        assert _of_repo(hub) == asked  # cached: the Hub was not asked about the model again
    # With nothing listening at HF_ENDPOINT (a machine that lost its network), the cached model still passes.
    assert _check(hub_models, "tiny", {"HF_HOME": home, "HF_ENDPOINT": "http://127.0.0.1:9"}) is None


def _of_repo(hub: FakeHub) -> list[tuple[str, str]]:
    """The requests about :data:`HUB_REPO` (huggingface_hub asks the Hub other things of its own)."""
    return [(method, path) for method, path in hub.requests if HUB_REPO in path]


def test_a_hub_model_neither_cached_nor_reachable_is_refused_after_one_request(
    hub_models: Path, tmp_path: Path
) -> None:
    with FakeHub(unavailable=True) as hub:
        problem = _check(hub_models, "tiny", {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url})
        assert _of_repo(hub) == [("HEAD", f"/{HUB_REPO}/resolve/main/model_index.json")]  # no retries
    assert problem is not None
    assert problem.startswith(f"{HUB_REPO} is not in the local Hugging Face cache, and the Hugging Face Hub cannot "
                              "be reached (Server error '503 Service Unavailable'"), problem
    assert problem.endswith(f"); check this machine's network and HF_ENDPOINT, or {HUB_FETCH}"), problem
    refused = _check(hub_models, "tiny", {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert refused is not None and "cannot be reached ([Errno 111] Connection refused)" in refused, refused


def test_a_hub_model_not_cached_with_the_hub_offline_is_refused(hub_models: Path, tmp_path: Path) -> None:
    assert _check(hub_models, "tiny", {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}) == (
        f"{HUB_REPO} is not in the local Hugging Face cache, with HF_HUB_OFFLINE set; {HUB_FETCH}, "
        "or unset HF_HUB_OFFLINE"
    )


def test_a_hub_repo_that_does_not_exist_is_named(hub_models: Path, tmp_path: Path) -> None:
    with FakeHub() as hub:  # serves no repo: RepoNotFound
        problem = _check(hub_models, "tiny", {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url})
    assert problem is not None and problem.startswith(f"no pipeline at {HUB_REPO} ("), problem
    assert "Repository Not Found" in problem or "404" in problem, problem


def _hub_cache(home: Path, repo: str, configs: Path) -> Path:
    """An HF_HOME whose Hub cache holds ``configs`` as ``repo``'s snapshot of ``main``, laid out as
    ``huggingface_hub`` stores a download; returns the snapshot folder."""
    commit = "0" * 40
    cached = home / "hub" / f"models--{repo.replace('/', '--')}"
    (cached / "refs").mkdir(parents=True)
    (cached / "refs" / "main").write_text(commit)
    return shutil.copytree(configs, cached / "snapshots" / commit)


def _check(models: Path, name: str, env: dict[str, str]) -> str | None:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHECK, str(models), name], env={**base, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: str | None = json.loads(done.stdout)
    return result


def test_offline_with_the_configs_nowhere_is_refused_and_would_fail_to_load(
    no_config_models: Path, tmp_path: Path
) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    assert _check(no_config_models, "tiny-file", env) == (
        f"it has no `config`, and the pipeline configs diffusers reads for it ({V1_REPO} on the Hugging Face Hub) "
        f"are not in the local cache, with HF_HUB_OFFLINE set; {CONFIG_FIX}"
    )
    result = imagine("generate", "a fox --model tiny-file --seed 7", "--out", str(tmp_path / "grid.png"),
                     env={"MODELS_FILE": str(no_config_models), **env})
    assert result.returncode != 0 and not (tmp_path / "grid.png").exists()  # the refusal is what loading does


def test_offline_with_the_configs_in_the_hub_cache_passes_and_loads(no_config_models: Path, tmp_path: Path) -> None:
    from tests.support.checkpoints import copy_configs

    home = tmp_path / "hf"
    _hub_cache(home, V1_REPO, copy_configs(_tiny_folder(no_config_models), tmp_path / "configs"))
    env = {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    assert _check(no_config_models, "tiny-file", env) is None
    out = tmp_path / "grid.png"
    result = imagine("generate", "a fox --model {tiny-file, tiny} --seed 7", "--out", str(out),
                     env={"MODELS_FILE": str(no_config_models), **env})
    assert result.returncode == 0, result.stderr
    with Image.open(out) as from_file, Image.open(tmp_path / "grid-2.png") as from_folder:
        assert from_file.tobytes() == from_folder.tobytes()  # the cached configs and the file's weights: the model


def test_a_partly_cached_snapshot_is_refused(no_config_models: Path, tmp_path: Path) -> None:
    from tests.support.checkpoints import copy_configs

    home = tmp_path / "hf"
    snapshot = _hub_cache(home, V1_REPO, copy_configs(_tiny_folder(no_config_models), tmp_path / "configs"))
    shutil.rmtree(snapshot / "unet")  # as a download of model_index.json alone leaves it
    assert _check(no_config_models, "tiny-file", {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1"}) == (
        "it has no `config`, and the pipeline configs diffusers reads for it are only partly in the local Hugging "
        f"Face cache ({V1_REPO} has no unet config (no unet/*.json)); {CONFIG_FIX}"
    )


def test_an_unreachable_hub_is_refused(no_config_models: Path, tmp_path: Path) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "http://127.0.0.1:9"}  # nothing listens there
    problem = _check(no_config_models, "tiny-file", env)
    assert problem is not None
    assert problem.startswith("it has no `config`, and the pipeline configs diffusers reads for it cannot be "
                              f"fetched from the Hugging Face Hub ({V1_REPO}: ")
    assert problem.endswith(f"); {CONFIG_FIX}")


def _tiny_folder(models: Path) -> Path:
    return models.parent / "tiny-sd"


#: Keys and shapes that tell each model type apart, as the published checkpoints have them.
_UNET = "model.diffusion_model."
_XL_BASE = {"conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": [1280]}
_SD3 = {"joint_blocks.0.context_block.adaLN_modulation.1.bias": [9216]}
_FLUX = {_UNET + "double_blocks.0.img_attn.norm.key_norm.scale": [128], _UNET + "img_in.weight": [3072, 64]}
_GUIDANCE = {_UNET + "guidance_in.in_layer.bias": [3072]}
CHECKPOINT_SHAPES: dict[str, dict[str, list[int]]] = {
    "v1": {_UNET + "input_blocks.0.0.weight": [320, 4, 3, 3],
           _UNET + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": [320, 768]},
    "v2": {_UNET + "input_blocks.0.0.weight": [320, 4, 3, 3],
           _UNET + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024]},
    "inpainting": {_UNET + "input_blocks.0.0.weight": [320, 9, 3, 3]},
    "inpainting_v2": {_UNET + "input_blocks.0.0.weight": [320, 9, 3, 3],
                      _UNET + "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight": [320, 1024]},
    "xl_base": {_UNET + "input_blocks.0.0.weight": [320, 4, 3, 3], **_XL_BASE},
    "xl_inpaint": {_UNET + "input_blocks.0.0.weight": [320, 9, 3, 3], **_XL_BASE},
    "xl_refiner": {"conditioner.embedders.0.model.transformer.resblocks.9.mlp.c_proj.bias": [1280]},
    "playground-v2-5": {"edm_mean": [1, 4, 1, 1], **_XL_BASE},
    "sd3": {**_SD3, "pos_embed": [1, 36864, 1536]},
    "sd35_medium": {**_SD3, "pos_embed": [1, 147456, 1536]},
    "sd35_large": {"joint_blocks.37.x_block.mlp.fc1.weight": [9728, 2432]},
    "flux-dev": {**_FLUX, **_GUIDANCE},
    "flux-schnell": _FLUX,
    "flux-fill": {**_FLUX, **_GUIDANCE, _UNET + "img_in.weight": [3072, 384]},
    "flux-depth": {**_FLUX, **_GUIDANCE, _UNET + "img_in.weight": [3072, 128]},
    "z-image-turbo": {"layers.0.adaLN_modulation.0.weight": [256, 256]},
}


def test_the_default_config_repos_are_those_diffusers_picks() -> None:
    import torch
    from diffusers.loaders.single_file_utils import DIFFUSERS_DEFAULT_PIPELINE_PATHS, infer_diffusers_model_type

    from inference.modelcheck import DEFAULT_CONFIG_REPOS, default_model_type

    assert set(CHECKPOINT_SHAPES) == set(DEFAULT_CONFIG_REPOS)
    for model_type, shapes in CHECKPOINT_SHAPES.items():
        checkpoint = {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
        assert infer_diffusers_model_type(checkpoint) == model_type  # the shapes above are what diffusers reads
        assert default_model_type(shapes) == model_type
        assert DIFFUSERS_DEFAULT_PIPELINE_PATHS[model_type]["pretrained_model_name_or_path"] == \
            DEFAULT_CONFIG_REPOS[model_type]


def test_a_ckpt_may_be_any_of_its_familys_types(no_config_models: Path, tmp_path: Path) -> None:
    """A ``.ckpt`` is a pickle: its keys are not read, so the configs of any SD 1.x type will do, and all are named."""
    pickled = no_config_models.parent / "no-config" / "tiny-sd.ckpt"
    pickled.write_bytes(b"PK\x03\x04" + bytes(64))  # a zip of pickles, as torch.save writes: no JSON header
    models = no_config_models.parent / "no-config-ckpt.toml"
    models.write_text(no_config_models.read_text().replace("tiny-sd.safetensors", "tiny-sd.ckpt"))
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    problem = _check(models, "tiny-file", env)
    assert problem is not None and (f"({V1_REPO} or stabilityai/stable-diffusion-2-1 or "
                                    "stable-diffusion-v1-5/stable-diffusion-inpainting or "
                                    "stabilityai/stable-diffusion-2-inpainting on the Hugging Face Hub)") in problem
    from tests.support.checkpoints import copy_configs

    _hub_cache(tmp_path / "hf", "stabilityai/stable-diffusion-2-1",
               copy_configs(_tiny_folder(no_config_models), tmp_path / "configs"))
    assert _check(models, "tiny-file", env) is None
