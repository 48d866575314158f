"""A worker checks the models of its queues when it starts: one that cannot load is one clear line, and its
queues are not served; the others are."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.imagine.test_cli import imagine
from tests.support.checkpoints import write_sd15_checkpoint
from tests.support.services import make_settings, settings_env, start_worker

MODELS = """\
default = "tiny"

[models.tiny]
source = "{tiny}"
family = "sd15"

[models.wrong-family]
source = "{tiny}"
family = "flux"

[models.no-weights]
source = "{broken}"
family = "sd15"

[models.no-config]
source = "{checkpoint}"
config = "{missing}"
family = "sd15"
"""


def _models_file(tiny_models: Path, folder: Path) -> Path:
    tiny = tiny_models.parent / "tiny-sd"
    broken = folder / "no-weights"
    shutil.copytree(tiny, broken)
    for weights in (broken / "text_encoder").glob("*.safetensors"):
        weights.unlink()
    checkpoint = write_sd15_checkpoint(tiny, folder / "tiny-sd.safetensors")
    path = folder / "models.toml"
    path.write_text(MODELS.format(tiny=tiny, broken=broken, checkpoint=checkpoint, missing=folder / "no-config"))
    return path


def test_a_model_that_cannot_load_is_reported_and_its_queues_are_not_served(
    database_url: str, redis_url: str, tiny_models: Path, tmp_path: Path
) -> None:
    models = _models_file(tiny_models, tmp_path)
    (tmp_path / "data").mkdir()
    settings = make_settings(database_url=database_url, redis_url=redis_url, models_file=models,
                             data_dir=tmp_path / "data")
    worker = start_worker(settings)
    try:
        output = worker.output()
    finally:
        worker.stop()
    reported = [line for line in output.splitlines() if "cannot be loaded" in line]
    assert len(reported) == 3, output
    assert "model wrong-family cannot be loaded: " in reported[0]
    assert "holds a StableDiffusionPipeline pipeline, not one of family 'flux'" in reported[0]
    assert reported[0].endswith("; its queues are not served")
    assert "model no-weights cannot be loaded: its text_encoder weights are missing" in reported[1]
    assert f"model no-config cannot be loaded: its config folder {tmp_path / 'no-config'} does not exist; set " \
        "`config` to a local diffusers folder of this model" in reported[2]
    queues = output.split("[queues]", 1)[1]
    assert "tiny.fast" in queues and "tiny.relax" in queues
    assert "wrong-family." not in queues and "no-weights." not in queues and "no-config." not in queues


def test_a_worker_with_no_loadable_model_stops_with_one_line(
    database_url: str, redis_url: str, tiny_models: Path, tmp_path: Path
) -> None:
    models = _models_file(tiny_models, tmp_path)
    settings = make_settings(database_url=database_url, redis_url=redis_url, models_file=models,
                             data_dir=tmp_path / "data")
    env = settings_env(settings)
    env["WORKER_QUEUES"] = "wrong-family.fast,no-weights.fast"
    result = imagine("worker", env=env)
    assert result.returncode == 2
    assert "imagine: no model of this worker's queues can be loaded" in result.stderr
    assert "Traceback" not in result.stderr
