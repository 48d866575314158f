"""Job buttons: custom ids read back, the checks on a click, and the child job each action makes."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from domain.actions import (
    ALREADY_FINISHED,
    JOB_GONE,
    NOT_OURS,
    STRONG_STRENGTH,
    SUBTLE_STRENGTH,
    Action,
    ButtonError,
    ButtonRef,
    Edit,
    SourceImage,
    check_cancel,
    check_parent,
    child_spec,
    source_index,
)
from domain.catalog import ModelPreset, parse_catalog
from domain.errors import DomainError
from domain.spec import JobKind, JobSpec, JobState

PRESET = parse_catalog({"models": {"m": {"source": "x/m", "width": 512, "height": 512, "upscaler": "x.pth"}}},
                       Path(".")).get("m")
PARENT = JobSpec(prompt="a fox", model="m", width=512, height=512, seed=100, steps=30, guidance_scale=7.0,
                 sampler="euler", aspect="1:1", notes=("--sref is not supported here; it was ignored.",))
TILE = SourceImage(key="jobs/7/1.png", seed=101, width=512, height=512)


def child(action: Action, *, parent: JobSpec = PARENT, kind: JobKind = JobKind.IMAGINE,
          source: SourceImage = TILE, preset: ModelPreset = PRESET) -> tuple[JobKind, JobSpec]:
    return child_spec(parent, kind, action, source=source, new_seed=555, preset=preset)


# -- custom ids ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref", [
    ButtonRef(1, Action.UPSCALE, 1), ButtonRef(42, Action.VARY, 4), ButtonRef(42, Action.REROLL),
    *(ButtonRef(9, action) for action in Action if not action.takes_tile),
])
def test_custom_ids_read_back(ref: ButtonRef) -> None:
    assert ButtonRef.parse(ref.custom_id) == ref


def test_the_longest_custom_id_fits_discords_100_characters() -> None:
    longest = max((ButtonRef(2**63 - 1, a, 4 if a.takes_tile else None) for a in Action),
                  key=lambda r: len(r.custom_id))
    assert len(longest.custom_id) <= 100
    assert ButtonRef.parse(longest.custom_id) == longest


@pytest.mark.parametrize("custom_id", [
    "", "job:", "foo:1:upscale:1", "job:abc:upscale:1", "job:1:explode", "job:1:explode:1",
    "job:1:upscale",           # U buttons name a tile
    "job:1:reroll:2",          # 🔄 does not
    "job:1:cancel:1",          # nor Cancel
    "job:0:reroll", "job:9223372036854775808:reroll", "job:12345678901234567890:reroll",
    "job:1:upscale:1:2", "job:1:upscale:123", "job:-1:reroll", " job:1:reroll",
])
def test_anything_this_bot_did_not_make_is_refused(custom_id: str) -> None:
    with pytest.raises(ButtonError) as error:
        ButtonRef.parse(custom_id)
    assert str(error.value) == NOT_OURS


def test_a_tile_out_of_range_parses_and_is_refused_by_name() -> None:
    ref = ButtonRef.parse("job:5:upscale:9")
    with pytest.raises(ButtonError, match=r"no image #9 in that grid; choose 1 to 4"):
        source_index(ref, JobKind.IMAGINE, 4)
    with pytest.raises(ButtonError, match=r"no image #0"):
        source_index(ButtonRef.parse("job:5:vary:0"), JobKind.IMAGINE, 4)


# -- checks on a click ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("state", "says"), [
    (JobState.FAILED, "failed"), (JobState.CANCELLED, "cancelled"),
    (JobState.QUEUED, "hasn't finished"), (JobState.RUNNING, "hasn't finished"),
])
def test_only_a_finished_job_has_images_to_work_from(state: JobState, says: str) -> None:
    with pytest.raises(ButtonError, match=says):
        check_parent(state)
    check_parent(JobState.SUCCEEDED)


def test_only_the_jobs_member_may_cancel_it_and_only_before_it_ends() -> None:
    for state in (JobState.QUEUED, JobState.RUNNING):
        check_cancel(owner_id=7, user_id=7, state=state)
    with pytest.raises(ButtonError) as error:
        check_cancel(owner_id=7, user_id=8, state=JobState.QUEUED)
    assert str(error.value) == "Only <@7> can cancel this job."
    for state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
        with pytest.raises(ButtonError) as error:
            check_cancel(owner_id=7, user_id=7, state=state)
        assert str(error.value) == ALREADY_FINISHED == "This job has already finished."
    with pytest.raises(ValueError, match="makes no job"):
        child(Action.CANCEL)


def test_each_action_works_on_its_own_kind_of_message() -> None:
    assert source_index(ButtonRef(1, Action.UPSCALE, 2), JobKind.IMAGINE, 4) == 1
    assert source_index(ButtonRef(1, Action.VARY, 4), JobKind.VARY, 4) == 3
    assert source_index(ButtonRef(1, Action.REROLL), JobKind.REROLL, 4) == 0
    assert source_index(ButtonRef(1, Action.UPSCALE_CREATIVE), JobKind.UPSCALE, 1) == 0
    assert source_index(ButtonRef(1, Action.RECIPE), JobKind.UPSCALE, 1) == 0
    with pytest.raises(ButtonError, match=NOT_OURS):
        source_index(ButtonRef(1, Action.VARY_STRONG), JobKind.IMAGINE, 4)
    with pytest.raises(ButtonError, match=NOT_OURS):
        source_index(ButtonRef(1, Action.UPSCALE, 1), JobKind.UPSCALE, 1)
    with pytest.raises(ButtonError, match=JOB_GONE):
        source_index(ButtonRef(1, Action.UPSCALE, 1), JobKind.IMAGINE, 0)


# -- the child job -------------------------------------------------------------------------------------------

def test_u2_upscales_the_tile_twice_with_the_models_upscaler() -> None:
    kind, spec = child(Action.UPSCALE)
    assert kind is JobKind.UPSCALE
    assert (spec.init_image, spec.seed, spec.images) == ("jobs/7/1.png", 101, 1)
    assert (spec.upscale_factor, spec.upscale_mode, spec.strength) == (2, "subtle", None)
    assert (spec.width, spec.height) == (512, 512)  # the source's size: the result is twice that
    assert (spec.prompt, spec.model, spec.sampler, spec.steps, spec.guidance_scale) == ("a fox", "m", "euler", 30, 7.0)
    assert spec.notes == ()  # the parent's notes were about its own prompt
    creative = dataclasses.replace(PRESET, upscale="creative")
    assert child(Action.UPSCALE, preset=creative)[1].upscale_mode == "creative"


def test_v1_varies_the_tile_strongly_with_a_new_seed() -> None:
    kind, spec = child(Action.VARY)
    assert kind is JobKind.VARY
    assert (spec.init_image, spec.seed, spec.strength, spec.images) == ("jobs/7/1.png", 555, STRONG_STRENGTH, 4)
    assert (spec.width, spec.height, spec.upscale_factor) == (512, 512, None)


def test_reroll_keeps_the_spec_and_draws_a_new_seed() -> None:
    kind, spec = child(Action.REROLL)
    assert kind is JobKind.REROLL
    assert spec == PARENT.replace(seed=555, notes=())


def test_a_reroll_of_variations_varies_the_same_source_again() -> None:
    _, variations = child(Action.VARY)
    kind, spec = child(Action.REROLL, parent=variations, kind=JobKind.VARY, source=TILE)
    assert kind is JobKind.VARY
    assert spec == variations.replace(seed=555)


def test_after_an_upscale_each_button_makes_its_job() -> None:
    _, upscale = child(Action.UPSCALE)
    upscaled = SourceImage(key="jobs/8/0.png", seed=101, width=1024, height=1024)

    def after(action: Action) -> tuple[JobKind, JobSpec]:
        return child(action, parent=upscale, kind=JobKind.UPSCALE, source=upscaled)

    kind, strong = after(Action.VARY_STRONG)
    assert kind is JobKind.VARY and strong.strength == STRONG_STRENGTH and strong.init_image == "jobs/8/0.png"
    assert (strong.width, strong.height, strong.images) == (512, 512, 4)  # drawn at the model's size again
    assert after(Action.VARY_SUBTLE)[1].strength == SUBTLE_STRENGTH
    kind, subtle = after(Action.UPSCALE_SUBTLE)
    assert kind is JobKind.UPSCALE and (subtle.upscale_mode, subtle.width, subtle.seed) == ("subtle", 1024, 101)
    assert after(Action.UPSCALE_CREATIVE)[1].upscale_mode == "creative"
    with pytest.raises(ValueError, match="recipe"):
        after(Action.RECIPE)


def test_variations_of_a_wide_upscale_keep_its_shape_at_the_models_size() -> None:
    wide = SourceImage(key="jobs/8/0.png", seed=1, width=1792, height=1024)
    _, spec = child(Action.VARY_SUBTLE, parent=PARENT.replace(aspect="7:4"), kind=JobKind.UPSCALE, source=wide)
    assert spec.width > spec.height and spec.width * spec.height <= 1.2 * PRESET.pixel_budget
    assert spec.width % 8 == 0 and spec.height % 8 == 0


# -- the canvas buttons and the upscales under an upscale -------------------------------------------------------

UPSCALED = SourceImage(key="jobs/8/0.png", seed=101, width=1024, height=1024)
UPSCALE_SPEC = PARENT.replace(seed=101, init_image=TILE.key, images=1, upscale_factor=2, upscale_mode="creative")


def canvas_child(action: Action, edit: Edit | None = None, source: SourceImage = UPSCALED) -> tuple[JobKind, JobSpec]:
    return child_spec(UPSCALE_SPEC, JobKind.UPSCALE, action, source=source, new_seed=555, preset=PRESET, edit=edit)


def test_zoom_out_2x_is_a_zoom_grid_at_the_budget_with_the_source_in_the_centre() -> None:
    kind, spec = canvas_child(Action.ZOOM_2X)
    assert kind is JobKind.ZOOM and (spec.width, spec.height, spec.images) == (512, 512, 4)
    assert spec.source_box == (128, 128, 256, 256) and spec.zoom == 2.0
    assert (spec.init_image, spec.seed, spec.upscale_factor, spec.upscale_mode) == (UPSCALED.key, 555, None, None)
    assert spec.prompt == "a fox" and spec.notes == ()


def test_pans_and_make_square_are_canvas_jobs_with_the_side_recorded() -> None:
    kind, spec = canvas_child(Action.PAN_LEFT)
    assert kind is JobKind.PAN and spec.pan == "left" and spec.width > spec.height
    assert spec.source_box is not None and spec.source_box[0] + spec.source_box[2] == spec.width
    divisor = math.gcd(spec.width, spec.height)
    assert spec.aspect == f"{spec.width // divisor}:{spec.height // divisor}"
    wide = SourceImage(key="k", seed=1, width=1536, height=1024)
    kind, spec = canvas_child(Action.SQUARE, source=wide)
    assert kind is JobKind.SQUARE and spec.width == spec.height and spec.zoom == 1.0 and spec.aspect == "1:1"
    with pytest.raises(DomainError, match="already square"):
        canvas_child(Action.SQUARE)


def test_custom_zoom_and_vary_region_take_their_values_from_the_modal() -> None:
    kind, spec = canvas_child(Action.ZOOM_CUSTOM, Edit(zoom=1.25, aspect=(16, 9)))
    assert kind is JobKind.ZOOM and spec.zoom == 1.25 and spec.width > spec.height
    kind, spec = canvas_child(Action.VARY_REGION, Edit(cells=(1, 2)))
    assert kind is JobKind.REGION and spec.region == (1, 2) and (spec.width, spec.height) == (512, 512)
    assert spec.source_box is None and spec.init_image == UPSCALED.key


def test_an_edited_prompt_replaces_the_words_but_keeps_model_size_and_source() -> None:
    edited = PARENT.replace(prompt="a wolf", negative_prompt="snow", model="other", aspect="16:9", seed=101)
    kind, spec = canvas_child(Action.ZOOM_2X, Edit(prompt=edited))
    assert (spec.prompt, spec.negative_prompt, spec.model, spec.seed) == ("a wolf", "snow", "m", 555)
    assert any("--model" in note for note in spec.notes) and any("--ar" in note for note in spec.notes)
    noted = edited.replace(notes=("--sref is not supported here; it was ignored.",))
    assert canvas_child(Action.ZOOM_2X, Edit(prompt=noted))[1].notes[0].startswith("--sref")
    kind, varied = child_spec(PARENT, JobKind.IMAGINE, Action.VARY, source=TILE, new_seed=555, preset=PRESET,
                              edit=Edit(prompt=PARENT.replace(prompt="a wolf", seed=7)))
    assert (kind, varied.prompt, varied.seed) == (JobKind.VARY, "a wolf", 7)  # a seed the member typed is used


def test_a_reroll_of_a_canvas_grid_draws_the_same_canvas_again() -> None:
    _, zoomed = canvas_child(Action.ZOOM_2X)
    kind, again = child_spec(zoomed, JobKind.ZOOM, Action.REROLL, source=TILE, new_seed=9, preset=PRESET)
    assert kind is JobKind.ZOOM and again == zoomed.replace(seed=9)


def test_upscale_4x_quadruples_and_redo_repeats_the_upscale_with_a_new_seed() -> None:
    kind, spec = canvas_child(Action.UPSCALE_4X, source=TILE)
    assert kind is JobKind.UPSCALE and (spec.upscale_factor, spec.upscale_mode) == (4, "subtle")
    kind, spec = canvas_child(Action.REDO_UPSCALE, source=TILE)
    assert (spec.upscale_factor, spec.upscale_mode, spec.seed, spec.init_image) == (2, "creative", 555, TILE.key)
    with pytest.raises(ButtonError, match="8192 pixels a side"):
        canvas_child(Action.UPSCALE_4X, source=SourceImage(key="k", seed=1, width=4096, height=2048))


def test_canvas_actions_belong_under_an_upscale_only() -> None:
    for action in (Action.ZOOM_2X, Action.PAN_UP, Action.VARY_REGION, Action.UPSCALE_4X, Action.REDO_UPSCALE):
        assert source_index(ButtonRef(1, action), JobKind.UPSCALE, 1) == 0
        with pytest.raises(ButtonError):
            source_index(ButtonRef(1, action), JobKind.IMAGINE, 4)
    assert source_index(ButtonRef(1, Action.UPSCALE, 3), JobKind.ZOOM, 4) == 2  # U3 on a zoomed grid
