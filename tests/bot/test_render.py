"""What a job's message says in each state, always within Discord's 2,000 characters."""

from __future__ import annotations

from bot.limits import MAX_CONTENT, MessageParts, fit_message, shorten_middle
from bot.render import JobView, format_duration, format_eta, job_content
from domain.prompt import MAX_PROMPT_CHARS, parse_prompt, split_canonical
from domain.spec import JobKind, JobState
from tests.domain.prompt_catalog import make_catalog


def view(**changes: object) -> JobView:
    values: dict[str, object] = dict(job_id=1, user_id=42, kind=JobKind.IMAGINE, state=JobState.QUEUED,
                                     prompt="a fox --ar 16:9", lane="fast")
    values.update(changes)
    return JobView(**values)  # type: ignore[arg-type]


def test_each_state_reads_like_midjourney() -> None:
    queued = "**a fox --ar 16:9** - <@42> (Waiting to start, position 1 in the queue) (fast)"
    assert job_content(view(position=0)) == queued
    assert "position 3 in the queue, about 40 s)" in job_content(view(position=2, eta_s=41))
    assert job_content(view(state=JobState.RUNNING)).endswith("(Starting…) (fast)")
    assert job_content(view(state=JobState.RUNNING, progress_step=5, progress_total=20)).endswith("(25%) (fast)")
    assert job_content(view(state=JobState.RUNNING, progress_step=5, progress_total=20, eta_s=90)).endswith(
        "(25%) (fast, about 2 min left)")
    # An upscale without steps (Real-ESRGAN, Lanczos) says what it does; a creative one counts its steps.
    assert job_content(view(kind=JobKind.UPSCALE, state=JobState.RUNNING)).endswith("(Upscaling…) (fast)")
    assert job_content(view(kind=JobKind.UPSCALE, state=JobState.RUNNING, progress_step=3,
                            progress_total=4)).endswith("(75%) (fast)")
    done = job_content(view(state=JobState.SUCCEEDED, gpu_ms=2345, model="sd15", total_s=41.2))
    assert done == "**a fox --ar 16:9** - <@42> (sd15 · fast · ready in 41 s · GPU 2.3 s)"
    assert job_content(view(state=JobState.CANCELLED)).endswith("(cancelled)")
    failed = job_content(view(state=JobState.FAILED, error="The GPU ran out of memory."))
    assert failed.endswith("❌ The GPU ran out of memory. Nothing was charged.")


def test_durations_and_estimates_read_plainly() -> None:
    assert [format_duration(s) for s in (4.24, 41.4, 200, 3600 + 300)] == ["4.2 s", "41 s", "3 min 20 s", "1 h 5 min"]
    assert [format_eta(s) for s in (1, 38, 61, 7200)] == ["about 5 s", "about 40 s", "about 1 min", "about 2 h"]


def test_notes_follow_on_their_own_lines() -> None:
    text = job_content(view(notes=("`--sref` is not supported here; it was ignored.",)))
    assert text.splitlines()[1] == "-# `--sref` is not supported here; it was ignored."


def test_a_long_prompt_is_shortened_in_the_middle_of_its_text_never_its_parameters() -> None:
    params = " --ar 16:9 --seed 4294967295 --s 250 --c 20"
    text = " ".join(f"word{n}" for n in range(600))
    content = job_content(view(prompt=text + params, state=JobState.SUCCEEDED, notes=("a note",) * 300))
    assert len(content) <= MAX_CONTENT
    title = content.splitlines()[0]
    assert title.startswith("**word0 word1 ") and f"word599{params}**" in title and "…" in title
    assert content.splitlines()[-1].startswith("-# …and ") and content.splitlines()[-1].endswith("more notes")


def test_a_huge_negative_prompt_is_shortened_but_the_seed_stays() -> None:
    content = fit_message(MessageParts("a fox", " --seed 7 --no " + "x " * 1400 + "--s 20", after=" - <@1> (x)"))
    assert len(content) <= MAX_CONTENT and "--seed 7 --no x" in content and content.endswith("--s 20** - <@1> (x)")


def test_shorten_middle_cuts_between_words() -> None:
    assert shorten_middle("alpha beta gamma delta epsilon", 20) == "alpha beta…epsilon"
    assert shorten_middle("short", 20) == "short"


def test_the_longest_prompt_the_parser_takes_with_every_note_fits_and_keeps_its_seed() -> None:
    catalog = make_catalog()
    ignored = ("--hd --test --testp --upbeta --uplight --upanime --creative --video --loop --public "
               "--stealth --beta --iw 2 --weird 5 --sv 4 --sref https://x.y/a.png --profile abc --style 4a")
    repeats = " ".join(f"--ar {n}:{n + 1}" for n in range(1, 30))
    text = ("\u200b" + "an old lighthouse on a cliff ") * 60
    text = text[: MAX_PROMPT_CHARS - 40]
    prompt = (f"https://x.y/ref.png {text} --no fog, rain {ignored} {repeats} --q 5 --s 4000 --v 9 "
              "--seed 4294967295 --c 100 --stop 50 --tile --steps 150 --cfg 29.5 --sampler dpmpp_2m_karras")
    parsed = parse_prompt(prompt, catalog)
    spec = parsed.specs[0]
    assert len(spec.notes) > 30
    canonical = parsed.canonicals[0]
    for state in JobState:
        content = job_content(view(prompt=canonical, state=state, notes=spec.notes, gpu_ms=1, total_s=2,
                                   model=spec.model, position=41, eta_s=300, error="x" * 500))
        assert len(content) <= MAX_CONTENT, state
        _, params = split_canonical(canonical)
        assert params in content and "--seed 4294967295" in content
