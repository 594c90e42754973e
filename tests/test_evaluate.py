"""`sora eval`: the checker scores the world's own reference renders as right, scores clips
rendered from a different prompt as wrong on exactly the attribute that differs, marks what
cannot be measured, and the prompt set is fixed. Frames are 256 px (the model's size; the
checker's 3x3 cleanup is calibrated for it), 16 frames at 8 fps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sora_cli import checker as ck
from sora_cli import evaluate as ev
from sora_cli.world.parse import parse_prompt
from sora_cli.world.render import render_scene

SIZE, FRAMES, FPS = 256, 16, 8.0


def render(prompt: str, seed: int = 3, size=SIZE, frames=FRAMES, fps=FPS) -> np.ndarray:
    scene = parse_prompt(prompt)
    scene.seed = seed
    return render_scene(scene, size, frames, fps)


def score(expected: str, shown: str, seed: int = 3, **kw) -> dict:
    return ck.score_clip(render(shown, seed, **kw), kw.get("fps", FPS), parse_prompt(expected))


def test_reference_renders_score_perfectly_and_the_sheet_is_written(tmp_path):
    sheet = tmp_path / "worst.png"
    report = ev.evaluate(n=16, seed=5, reference_only=True, sheet=sheet)
    ref = report["reference"]
    for key in ck.ATTRIBUTES + ("all_checks", "fully_right"):
        assert ref[key] == 1.0, (key, ref)
    assert ref["one_subject"]["prompts"] + ref["two_subjects"]["prompts"] == 16
    assert ref["two_subjects"]["prompts"] > 0 and ref["two_subjects"]["all_checks"] == 1.0
    assert report["generated"] is None and report["model"] is None
    assert (report["width"], report["height"], report["frames"]) == (SIZE, SIZE, FRAMES)
    data = sheet.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert w > 4 * 120 and h > 8 * 120        # 8 worst clips, 4 frames each


@pytest.mark.parametrize("expected, shown, wrong", [
    ("a red ball moving left on a grass field", "a red ball moving right on a grass field", "motion"),
    ("a red ball moving left on a grass field", "a blue ball moving left on a grass field", "color"),
    ("a red ball moving left on a grass field", "a red square moving left on a grass field", "shape"),
    ("a red ball moving left on a grass field", "a red ball moving left in the desert", "setting"),
    ("a red ball moving left on a grass field",
     "a red ball moving left on a grass field while it rains", "weather"),
    ("a white star rising at night while it snows", "a white star rising at night while it rains",
     "weather"),
    ("a green car standing still in a city at night", "a green car bouncing in a city at night",
     "motion"),
    ("a yellow bird growing over the ocean", "a yellow bird shrinking over the ocean", "motion"),
    ("a purple star spinning in outer space", "a purple star resting in outer space", "motion"),
    ("a pink fish sinking underwater", "a pink fish rising underwater", "motion"),
    ("a cyan triangle bouncing in the desert", "a cyan triangle sitting in the desert", "motion"),
    ("an orange airplane flying right at night", "an orange bird flying right at night", "shape"),
    ("a brown person walking left on a snowy field", "a brown person walking left in the desert",
     "setting"),
])
def test_a_clip_of_another_prompt_fails_on_the_attribute_that_differs(expected, shown, wrong):
    assert ck.score_clip(render(expected), FPS, parse_prompt(expected))["fully_right"] is True
    r = score(expected, shown)
    # A subject of another colour is a missing subject: its shape and motion fail with it.
    failing = {"color", "shape", "motion"} if wrong == "color" else {wrong}
    for attr, values in r["checks"].items():
        # weather is not measured underwater or in space (None): never a failure there
        want = [False if attr in failing else (None if v is None and attr == "weather" else True)
                for v in values]
        assert values == want, (attr, r["checks"], r["subjects"], r["measured"]["weather"])


def test_two_subjects_are_told_apart_by_colour():
    prompt = "a red ball moving left and a blue square rising on a grass field"
    swapped = "a red ball rising and a blue square moving left on a grass field"
    assert ck.score_clip(render(prompt), FPS, parse_prompt(prompt))["fully_right"] is True
    r = score(prompt, swapped)
    assert r["checks"]["motion"] == [False, False]
    assert r["checks"]["color"] == [True, True] and r["checks"]["shape"] == [True, True]
    missing = score(prompt, "a red ball moving left on a grass field")
    assert missing["checks"]["color"] == [True, False]
    assert missing["checks"]["shape"] == [True, False] and missing["checks"]["motion"] == [True, False]


def test_unmeasurable_checks_are_none_and_left_out_of_the_figures():
    same = "two red balls bouncing on a grass field"
    r = ck.score_clip(render(same), FPS, parse_prompt(same))
    assert r["checks"]["color"] == [True, True]
    assert r["checks"]["shape"] == [None, None] and r["checks"]["motion"] == [None, None]
    dark = "a black ball rolling left at night"          # black on the night ground
    assert ck.color_conflicts("black", "night") and not ck.color_conflicts("red", "night")
    d = ck.score_clip(render(dark), FPS, parse_prompt(dark))
    assert d["checks"]["color"] == [None] and d["checks"]["motion"] == [None]
    panned = "a red ball moving left on a grass field as the camera pans right"
    p = ck.score_clip(render(panned), FPS, parse_prompt(panned))
    assert p["checks"]["motion"] == [None] and p["weather"] is None and p["setting"] is True
    s = ev.summarize([r, d, p])
    assert s["not_measurable"]["shape"] == 3 and s["not_measurable"]["motion"] == 4
    assert s["measured"]["color"] == 3 and s["color"] == 1.0
    assert s["measured"]["motion"] == 0 and s["motion"] is None


def test_the_checker_holds_at_another_frame_rate():
    prompt = "a small blue bird flying left quickly over the desert while it snows"
    r = score(prompt, prompt, frames=48, fps=24.0)
    assert r["fully_right"] is True, (r["checks"], r["subjects"])
    wrong = score(prompt, prompt.replace("left", "right"), frames=48, fps=24.0)
    assert wrong["checks"]["motion"] == [False]


def test_the_prompt_set_is_fixed_balanced_and_reads_back():
    from sora_cli.world.scene import COLORS, MOTIONS, SETTINGS, SHAPES, SPEEDS

    a = ev.eval_prompts(100, seed=0)
    assert a == ev.eval_prompts(100, seed=0)
    assert ev.eval_prompts(30, seed=0) == a[:30]
    assert ev.eval_prompts(30, seed=1) != a[:30]
    assert len(set(a)) == 100
    scenes = [parse_prompt(p) for p in a]
    subjects = [s for sc in scenes for s in sc.subjects]
    assert {sc.setting for sc in scenes} == set(SETTINGS)
    assert {s.color for s in subjects} == set(COLORS)
    assert {s.shape for s in subjects} == set(SHAPES)
    assert {s.motion for s in subjects} == set(MOTIONS)
    assert {s.speed for s in subjects} == set(SPEEDS)
    counts = [len(sc.subjects) for sc in scenes]
    assert 15 <= counts.count(2) <= 45 and counts.count(2) + counts.count(1) == 100
    assert {sc.weather for sc in scenes} == {"none", "rain", "snow"}
    assert all(sc.camera == "none" for sc in scenes)
    assert all(len({s.color for s in sc.subjects}) == len(sc.subjects) for sc in scenes)


def test_cli_reference_only_json(sora, tmp_path):
    r = sora("eval", "--reference-only", "--n", "20", "--json", "-q")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["prompts"] == 20 and len(report["clips"]) == 20
    for key in ck.ATTRIBUTES + ("all_checks", "fully_right"):
        assert report["reference"][key] >= 0.98, (key, report["reference"])


def test_cli_prompts_file_table_and_bad_input(sora, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# two prompts\na red ball bouncing on a beach\n\n"
                       "A small yellow star falls through outer space.\n")
    r = sora("eval", "--reference-only", "--prompts", prompts, "--sheet", tmp_path / "w.png")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["setting", "colour", "shape"]
    ref = next(x for x in lines if x.startswith("reference")).split()
    assert ref[1:8] == ["1.000"] * 7 and ref[8] == "2"
    assert (tmp_path / "w.png").exists()

    bad = tmp_path / "bad.txt"
    bad.write_text("a red ball bouncing on a beach\n\n# the next is line 4\na magenta ball\n")
    r = sora("eval", "--reference-only", "--prompts", bad)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: bad.txt:4: 'a magenta ball' is not about the built-in")
    assert len(r.stderr.strip().splitlines()) == 1
    # the content policy holds for measurements too, named by the line, before any work
    harm = tmp_path / "harm.txt"
    harm.write_text("a red ball bouncing on a beach\na red ball on a beach covered in gore\n")
    r = sora("eval", "--reference-only", "--prompts", harm)
    assert r.returncode == 1 and r.stderr.startswith("error: refused: harm.txt:2 asks for"), r.stderr
    r = sora("eval", "--reference-only", "--prompts", tmp_path / "missing.txt")
    assert r.returncode == 1 and "no such prompts file" in r.stderr
    r = sora("eval", "--reference-only", "--prompts", "-", input="a red ball on a beach\n",
             env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "reference" in r.stdout, r.stderr
    r = sora("eval", "--reference-only", "--n", "0")
    assert r.returncode == 2
    r = sora("eval", "--reference-only", "--n", "2", "--seed", "-5")
    assert r.returncode == 2 and r.stderr.strip() == "error: --seed must be a non-negative integer, got -5"
    (tmp_path / "afile").write_text("")
    r = sora("eval", "--reference-only", "--n", "1", "--out", tmp_path / "afile")
    assert r.returncode == 1 and "is a file, not a folder: give --out a folder" in r.stderr
    # a sheet that cannot be written is refused before any clip is made or scored
    r = sora("eval", "--model", "no-such-model", "--n", "1", "--sheet", tmp_path / "no" / "w.png")
    assert r.returncode == 1 and "output folder does not exist" in r.stderr, r.stderr


def test_eval_replaces_an_earlier_run_only_with_overwrite(sora, tmp_path):
    out, sheet = tmp_path / "ev", tmp_path / "keep.png"
    r = sora("eval", "--reference-only", "--n", "1", "--out", out, "-q")
    assert r.returncode == 0, r.stderr
    report = (out / "report.json").read_text()
    assert json.loads(report)["reference"]["prompts"] == 1 and (out / "worst.png").exists()
    sheet.write_bytes(b"precious")
    for args in (["--out", out], ["--sheet", sheet]):
        r = sora("eval", "--reference-only", "--n", "2", *args)
        assert r.returncode == 1 and "-y" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert (out / "report.json").read_text() == report and sheet.read_bytes() == b"precious"
    r = sora("eval", "--reference-only", "--n", "2", "--out", out, "--sheet", sheet, "-y", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "report.json").read_text())["reference"]["prompts"] == 2
    assert sheet.read_bytes()[:4] == b"\x89PNG"
    assert not [f for f in out.iterdir() if f.name.startswith(".")]  # no temporary left


def test_eval_runs_a_real_model_and_reports_every_line(sora, tiny_bundle, tmp_path):
    r = sora("eval", "--model", tiny_bundle, "--n", "2", "--json", "--sheet",
             tmp_path / "worst.png", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    for line in ("generated", "reference", "autoencoded"):
        assert report[line]["prompts"] == 2
        assert set(report[line]) >= {"setting", "color", "shape", "motion", "all_checks",
                                     "fully_right"}
    assert (tmp_path / "worst.png").stat().st_size > 0
    # the tiny bundle's windows are 9 frames, so its 2 s clips have a join to measure
    wj = report["window_joins"]
    assert wj["clips"] == 2 and wj["generated"] > 0 and wj["reference"] > 0
    fc = report["frame_change"]
    assert fc["clips"] == 2 and fc["generated"] > 0 and fc["reference"] > 0


def test_window_joins_follow_the_pipeline_plan_and_jumps_show_there(tiny_bundle):
    from sora_cli.evaluate import join_jump, window_joins
    from sora_cli.pipeline import VideoPipeline

    pipe = VideoPipeline.load(str(tiny_bundle), "cpu")
    assert window_joins(pipe, pipe.window * 4 - 3) == []     # one window: no join
    step = 4 * (pipe.window - pipe.context)
    joins = window_joins(pipe, 3 * step + 17)
    assert joins[:2] == [4 * pipe.window - 3, 4 * pipe.window - 3 + step]
    # a still clip reads 1; a cut at a join shows; the same cut elsewhere does not
    still = np.full((33, 16, 16, 3), 90, np.uint8)
    assert join_jump(still, [17]) == 1.0
    cut = still.copy()
    cut[17:] = 150
    assert join_jump(cut, [17]) > 50 and join_jump(cut, [9]) < 0.5
    assert join_jump(still, []) is None


def test_the_colour_lookup_table_is_the_nearest_palette_colour_within_tolerance():
    rng = np.random.default_rng(7)
    pal = rng.integers(0, 256, (9, 3)).astype(np.float32)   # integer RGB, as the world's
    pal[1] = pal[0]                          # a tie goes to the first of equal colours
    labels = [3, 1, 4, 0, 5, 9, 2, 6, 8]
    lut = ck.nearest_label_lut(pal, labels, tol=40.0)
    rgb = rng.integers(0, 256, (2000, 3))
    centre = (rgb >> 2) * 4 + 1.5            # each 6-bit cell is read at its centre
    d = ((centre[:, None, :] - pal[None].astype(np.float64)) ** 2).sum(-1)
    want = np.where(d.min(1) <= 40.0 ** 2, np.asarray(labels)[d.argmin(1)], 255)
    idx = ((rgb[:, 0] >> 2) << 12) | ((rgb[:, 1] >> 2) << 6) | (rgb[:, 2] >> 2)
    assert np.array_equal(lut[idx], want)
    assert (want == 255).any() and (want != 255).any()   # both branches are exercised
    assert not (lut == 1).any()              # the tied colour never wins
    # the checker's own tables: each world colour reads as its own name in a setting
    _, names = ck.label_frames(np.zeros((1, 1, 1, 3), np.uint8), "space")
    from sora_cli.world.scene import COLORS
    for name, c in COLORS.items():
        frame = np.asarray(c, np.uint8).reshape(1, 1, 1, 3)
        if not ck.color_conflicts(name, "space"):
            assert ck.label_frames(frame, "space")[0][0, 0, 0] == names[name], name


def test_frame_change_reads_flicker_in_8_bit_levels():
    from sora_cli.evaluate import frame_change

    still = np.full((9, 8, 8, 3), 90, np.uint8)
    assert frame_change(still) == 0.0 and frame_change(still[:1]) is None
    flicker = still.copy()
    flicker[1::2] = 100                     # every other frame 10 levels brighter
    assert frame_change(flicker) == 10.0
    ramp = np.stack([np.full((8, 8, 3), 90 + 2 * i, np.uint8) for i in range(9)])
    assert frame_change(ramp) == 2.0        # steady change reads its step, not more


def test_dit_stages_benchmark_meets_eval_at_both_ends(tiny_bundle):
    # benchmarks/dit_stages.py: finishing from t=1 is plain generation (the eval's generated
    # line, clip for clip), from t=0 and with no latent noise it is the autoencoded line
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "dit_stages.py"
    spec = importlib.util.spec_from_file_location("dit_stages", path)
    stages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stages)
    r = stages.measure(str(tiny_bundle), n=2, starts=(1.0, 0.5, 0.0), sigmas=(0.0, 0.5),
                       duration=1.0, device="cpu")
    e = ev.evaluate(str(tiny_bundle), n=2, duration=1.0, device="cpu")
    lines = r["lines"]
    names = list(lines)   # 0.5 rounded down to a time of the bundle's schedule
    assert names[0] == "finished from t=1.000" and names[1].startswith("finished from t=0.")
    assert names[2:] == ["finished from t=0.000", "autoencoded (t=0)",
                         "decoded, latent noise 0", "decoded, latent noise 0.5"]
    same = lambda a, b: all(a[k] == b[k] for k in stages.FIGURES)  # noqa: E731
    assert same(lines["finished from t=1.000"], e["generated"])
    assert abs(lines["finished from t=1.000"]["frame_change"]
               - e["frame_change"]["generated"]) < 1e-3
    for name in ("finished from t=0.000", "decoded, latent noise 0"):
        assert same(lines[name], e["autoencoded"])
        assert lines[name]["frame_change"] == lines["autoencoded (t=0)"]["frame_change"]
    noisy, clean = lines["decoded, latent noise 0.5"], lines["autoencoded (t=0)"]
    assert noisy["frame_change"] != clean["frame_change"]


def test_dit_stages_given_the_first_frame_is_animate_of_the_render(tiny_bundle):
    # the --first line holds the render's first latent clean: what `sora animate` makes of the
    # render's first frame with the same seed, clip for clip
    import importlib.util
    from pathlib import Path

    from sora_cli.checker import score_clip
    from sora_cli.pipeline import VideoPipeline
    from sora_cli.world.render import render_scene

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "dit_stages.py"
    spec = importlib.util.spec_from_file_location("dit_stages", path)
    stages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stages)
    r = stages.measure(str(tiny_bundle), n=3, starts=(1.0,), sigmas=(), duration=1.0,
                       device="cpu", first=True)
    assert list(r["lines"]) == ["finished from t=1.000", "given the first frame",
                                "autoencoded (t=0)"]
    pipe = VideoPipeline.load(str(tiny_bundle), "cpu")
    prompts = ev.eval_prompts(3, 0)
    scored, change = [], []
    for i, (prompt, scene) in enumerate(zip(prompts, ev.expected_scenes(prompts))):
        scene.seed = i
        first = render_scene(scene, (pipe.height, pipe.width), 1, pipe.fps)[0]
        frames = np.concatenate(list(pipe.animate(first, prompt, 1.0, seed=i)))
        scored.append(score_clip(frames, pipe.fps, scene))
        change.append(ev.frame_change(frames))
    want = ev.summarize(scored)
    got = r["lines"]["given the first frame"]
    assert all(got[k] == want[k] for k in stages.FIGURES), (got, want)
    # the figures of a tiny model are coarse; the flicker tells the clips apart finely
    assert abs(got["frame_change"] - np.mean(change)) < 1e-3
    assert abs(got["frame_change"] - r["lines"]["finished from t=1.000"]["frame_change"]) > 0.01


def test_long_videos_benchmark_scores_a_short_clip_as_eval_does(tiny_bundle):
    # benchmarks/long_videos.py: when the video is no longer than its 2 s ends, both ends are
    # the whole clip, so each reads sora eval's generated and reference figures exactly
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "long_videos.py"
    spec = importlib.util.spec_from_file_location("long_videos", path)
    long_videos = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(long_videos)
    lines = long_videos.measure(str(tiny_bundle), prompts=2, duration=1.0, device="cpu")
    e = ev.evaluate(str(tiny_bundle), n=2, duration=1.0, device="cpu")
    for name, line in lines.items():
        want = e["generated" if name.startswith("generated") else "reference"]
        assert {a: line[a] for a in long_videos.ATTRIBUTES} == \
            {a: want[a] for a in long_videos.ATTRIBUTES}, name
        assert line["all"] == want["all_checks"], name
