"""How the jobs of buttons read: "Image #2", "Variations (Strong) by", the upscale method, the recipe."""

from __future__ import annotations

from bot.render import JobView, Recipe, job_content, job_detail, recipe_content
from domain.spec import JobKind, JobState


def view(**changes: object) -> JobView:
    values: dict[str, object] = dict(job_id=1, user_id=42, kind=JobKind.UPSCALE, state=JobState.SUCCEEDED,
                                     prompt="a fox --seed 7", lane="fast", gpu_ms=1200)
    values.update(changes)
    return JobView(**values)  # type: ignore[arg-type]


def test_each_kind_of_button_job_is_named_like_midjourney() -> None:
    assert job_detail(JobKind.UPSCALE, image_number=2, upscale_mode="subtle") == "Image #2"
    assert job_detail(JobKind.UPSCALE, upscale_mode="creative") == "Upscaled (Creative) by"
    assert job_detail(JobKind.VARY, strength=0.75) == "Variations (Strong) by"
    assert job_detail(JobKind.VARY, strength=0.35) == "Variations (Subtle) by"
    assert job_detail(JobKind.REROLL) == job_detail(JobKind.IMAGINE) == ""
    assert job_content(view(detail="Image #2")).startswith("**a fox --seed 7** - Image #2 <@42> (fast · GPU 1.2 s)")


def test_a_finished_upscale_says_how_it_was_made() -> None:
    lanczos = job_content(view(upscale_method="lanczos"))
    assert lanczos.splitlines()[1] == "-# Upscaled (Lanczos: no upscaler configured)"
    assert "Real-ESRGAN" in job_content(view(upscale_method="esrgan"))
    assert "Upscaled" not in job_content(view(upscale_method="esrgan", state=JobState.RUNNING))


def test_the_recipe_names_every_setting_and_no_link() -> None:
    recipe = Recipe(prompt="a fox --seed 7", model="sd15", sampler="euler_a", steps=30, guidance=7.5, seed=7,
                    width=1024, height=1024, upscales=(("esrgan", 2, 512, 512),))
    text = recipe_content(recipe)
    for part in ("`a fox --seed 7`", "Model: sd15", "Sampler: euler_a", "Steps: 30", "Guidance: 7.5", "Seed: 7",
                 "Size: 1024×1024", "Upscaled ×2 from 512×512 (Subtle: Real-ESRGAN)", "#1 of that grid"):
        assert part in text, part
    assert "http" not in text and len(text) < 2000
    varied = recipe_content(Recipe(prompt="x" * 5000, model="m", sampler="s", steps=1, guidance=1, seed=1, width=8,
                                   height=8, variation_strength=0.75))
    assert "variation" in varied and "strength 0.75" in varied and len(varied) < 2000


def test_canvas_jobs_are_named_like_midjourney_and_their_recipe_says_where_they_came_from() -> None:
    assert job_detail(JobKind.ZOOM, zoom=2.0) == "Zoom Out 2x by"
    assert job_detail(JobKind.ZOOM, zoom=1.25) == "Zoom Out 1.25x by"
    assert job_detail(JobKind.PAN, pan="left") == "Pan Left by"
    assert job_detail(JobKind.SQUARE, zoom=1.0) == "Make Square by"
    assert job_detail(JobKind.REGION) == "Vary (Region) by"
    text = recipe_content(Recipe(prompt="a fox --seed 7", model="m", sampler="s", steps=8, guidance=7, seed=7,
                                 width=256, height=256, canvas=("Vary (Region) of cells 1, 5", 256, 256)))
    assert "It descends from Vary (Region) of cells 1, 5 of a 256×256 image" in text
    assert "#1 of that grid" not in text


async def test_every_view_is_within_discords_limits() -> None:
    """Discord takes at most 5 rows of at most 5 buttons, each custom_id at most 100 characters, no duplicates."""
    from bot.components import cancel_view, grid_view, upscale_view

    biggest = 2**63 - 1  # the largest job id PostgreSQL makes
    for view in (grid_view(biggest, upscaled={1, 4}), upscale_view(biggest, square=False), cancel_view(biggest)):
        rows = view.to_components()
        assert 1 <= len(rows) <= 5
        ids = [button["custom_id"] for row in rows for button in row["components"]]
        assert all(1 <= len(row["components"]) <= 5 for row in rows)
        assert all(len(custom_id) <= 100 for custom_id in ids) and len(set(ids)) == len(ids)
