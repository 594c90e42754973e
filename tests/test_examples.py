"""The files in examples/ parse with the readers the CLI uses, and every prompt in them is one
the content policy allows and the built-in world's parser fully understands (no unknown words),
so the default model can draw them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sora_cli.batch import read_jobs
from sora_cli.generation import GenerateOptions
from sora_cli.guard import check_prompt
from sora_cli.storyboard import load_storyboard
from sora_cli.world.parse import parse_prompt, unknown_words

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def understood(text: str):
    """The scene of a prompt that passes the policy and has no word the world does not know."""
    check_prompt(text)
    assert unknown_words(text) == [], text
    return parse_prompt(text, strict=True)


def test_prompt_list_parses_and_covers_one_two_subjects_and_weather():
    items = read_jobs(EXAMPLES / "prompts.txt")
    assert len(items) >= 10
    assert all(item.error is None and item.options == {} for item in items)
    scenes = [understood(item.prompt) for item in items]
    assert {len(s.subjects) for s in scenes} == {1, 2}
    assert {s.weather for s in scenes} >= {"none", "rain", "snow"}
    assert len({s.setting for s in scenes}) >= 7
    text = (EXAMPLES / "prompts.txt").read_text()
    assert any(line.startswith("#") for line in text.splitlines())


def test_job_rows_parse_with_valid_options_and_distinct_outputs():
    lines = [ln for ln in (EXAMPLES / "jobs.jsonl").read_text().splitlines() if ln.strip()]
    rows = [json.loads(ln) for ln in lines]          # plain JSONL, readable by any tool
    items = read_jobs(EXAMPLES / "jobs.jsonl")
    assert len(items) == len(rows) >= 5
    used = set()
    for item in items:
        assert item.error is None, item.error
        understood(item.prompt)
        options = dict(item.options)
        used |= set(options)
        if options.get("negative"):
            check_prompt(options["negative"])
            assert unknown_words(options["negative"]) == []
        options.pop("output", None)
        replace(GenerateOptions(), **options).validate()
    assert used >= {"seed", "duration", "size", "aspect", "steps", "guidance", "negative",
                    "output"}
    outputs = [item.options["output"] for item in items]
    assert len(set(outputs)) == len(outputs) and all(o.endswith(".mp4") for o in outputs)


def test_storyboards_text_and_json_are_the_same_and_the_scene_carries_over():
    text = load_storyboard(EXAMPLES / "storyboard.txt")
    js = load_storyboard(EXAMPLES / "storyboard.json")
    assert 4 <= len(text.segments) <= 6
    assert [(s.prompt, s.duration) for s in text.segments] == \
        [(s.prompt, s.duration) for s in js.segments]
    scenes = [understood(s.prompt) for s in text.segments]
    # the same subject in the same place throughout; what it does and the weather change
    assert len({s.setting for s in scenes}) == 1
    assert len({tuple((b.color, b.shape) for b in s.subjects) for s in scenes}) == 1
    assert len({s.subjects[0].motion for s in scenes}) >= 2
    assert scenes[0].weather == "none" and scenes[-1].weather != "none"


def test_storyboard_durations_either_side_and_misspelt_keys_are_refused():
    from sora_cli.errors import SoraError
    from sora_cli.storyboard import parse_storyboard

    board = parse_storyboard("4s: a red ball bouncing on a beach\n"
                             "a blue car driving left in the city | 2.5\n"
                             "3 | a white bird flying right\n"
                             "a red ball resting on a beach\n")
    assert [(s.prompt, s.duration) for s in board.segments] == [
        ("a red ball bouncing on a beach", 4.0), ("a blue car driving left in the city", 2.5),
        ("a white bird flying right", 3.0), ("a red ball resting on a beach", 4.0)]
    for text, words in (("a red ball | abc", "storyboard:1: cannot read the duration"),
                        ("a red ball | 0", "more than 0 and at most 600"),
                        ('{"segments": []}', "no segments"),
                        ('[{"prompt": "a red ball", "durations": 2}]',
                         "segment 1: unknown key(s) durations"),
                        ('{"segments": ["a red ball"], "sede": 3}', "unknown key(s) sede"),
                        # what starts like a duration and is none would be a wrong-scene segment
                        ("1s:", "storyboard:1: no prompt after the duration"),
                        ("a red ball\n-1s: a red ball", "storyboard:2: cannot read the duration"),
                        ("1m: a red ball", "cannot read the duration in '1m: a red ball'"),
                        ("1e0s: a red ball", "cannot read the duration in '1e0s: a red ball'"),
                        ("nan s: a red ball", "cannot read the duration"),
                        ("inf: a red ball", "cannot read the duration"),
                        ('[{"prompt": "a red ball", "duration": "2"}]',
                         'segment 1: duration must be a number of seconds, got "2"'),
                        ("1,5s: a red ball", "cannot read the duration"),
                        ('[{"prompt": "a red ball", "duration": true}]', "got true"),
                        ('{"segments": ["a red ball"], "seed": -1}', "seed must be an integer")):
        with pytest.raises(SoraError) as exc:
            parse_storyboard(text)
        assert words in str(exc.value), (text, exc.value)


def test_batch_script_is_valid_bash_using_the_example_files():
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    script = EXAMPLES / "batch.sh"
    r = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    body = script.read_text()
    for name in ("prompts.txt", "jobs.jsonl", "manifest.jsonl", "torchrun", "sora stitch"):
        assert name in body


def test_examples_readme_names_every_file():
    readme = (EXAMPLES / "README.md").read_text()
    for path in EXAMPLES.iterdir():
        if path.name != "README.md":
            assert path.name in readme, path.name


def run_recipe(base: Path, runs: Path, timeout: int = 600, **knobs: str):
    """examples/train_on_gpu.sh on this CPU from `base`, with the quick-trial knobs given."""
    import os
    import sys

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    env = {**os.environ, "SORA": f"{sys.executable} -m sora_cli", "BASE": str(base),
           "DEVICE": "cpu", "CPUS": "2", "TIMING": "3", "OMP_NUM_THREADS": "1",
           "OVERRUN": "1000", **knobs}   # the stages' tiny minutes are floors, not limits
    return subprocess.run([bash, str(EXAMPLES / "train_on_gpu.sh"), str(runs)], env=env,
                          capture_output=True, text=True, timeout=timeout)


def same_weights(a, b) -> bool:
    """Whether module `b` holds the same tensors as module `a` under every name of a's."""
    import torch

    theirs = b.state_dict()
    return all(torch.equal(v, theirs[k]) for k, v in a.state_dict().items())


def test_gpu_recipe_runs_end_to_end_on_a_cpu_for_the_dit(tiny_bundle, tmp_path):
    # PARTS=dit on the tiny bundle: the timing run, the step sizing, the latent cache, the DiT
    # going on from the bundle's, and the export with the bundle's own VAE and text tower
    runs = tmp_path / "runs"
    r = run_recipe(tiny_bundle, runs, PARTS="dit", DIT_BS="2", DIT_MIN="0.01", COUNT="8",
                   TIMING_CLIPS="8", TIME_SHIFT="2", TEXT_INPUTS="1",
                   FRAMES="9", WINDOW="2")   # windows of 2 latents cut from 3-latent clips
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "dit: 20 steps" in r.stdout and f"done: {runs / 'bundle'}" in r.stdout
    config = json.loads((runs / "bundle" / "config.json").read_text())
    assert config["training"]["dit"]["summary"]["step"] == 20
    assert config["name"] == tiny_bundle.name   # it can replace the bundle it went on from
    assert f"--init {tiny_bundle}" in config["training"]["dit"]["command"]
    assert not (runs / "vae").exists() and not (runs / "clip").exists()
    dit_run = json.loads((runs / "dit" / "model.json").read_text())
    assert dit_run["frames"] == 9 and dit_run["window"] == 2 and dit_run["time_shift"] == 2
    assert config["dit"]["text_inputs"] is True    # TEXT_INPUTS=1 reached the DiT

    # again from that bundle: its tower loads with the inputs on, which neither the fresh DiT of
    # the timing run nor the DiT going on from the bundle's may trip over
    r = run_recipe(runs / "bundle", tmp_path / "again", PARTS="dit", DIT_BS="2", DIT_MIN="0.01",
                   COUNT="8", TIMING_CLIPS="8", FRAMES="9")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    again = json.loads((tmp_path / "again" / "bundle" / "config.json").read_text())
    assert again["dit"]["text_inputs"] is True


def test_gpu_recipe_trains_a_clip_on_frame_grids_and_the_dit_on_its_tower(tiny_bundle, tmp_path):
    # PARTS="clip dit" VISION_FRAMES=4: the CLIP goes on from the bundle's on 2x2 frame grids,
    # the DiT goes on from the bundle's on the new text tower, and the bundle carries both
    from sora_cli.bundle import load_bundle

    runs = tmp_path / "runs"
    r = run_recipe(tiny_bundle, runs, PARTS="clip dit", VISION_FRAMES="4", CLIP_BS="8",
                   CLIP_MIN="0.01", DIT_BS="2", DIT_MIN="0.01", COUNT="4", TIMING_CLIPS="4")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "clip: 20 steps" in r.stdout and "dit: 20 steps" in r.stdout
    config = json.loads((runs / "bundle" / "config.json").read_text())
    assert config["text"]["vision_frames"] == 4
    assert '"vision_frames": 4' in config["training"]["clip"]["command"]   # in its --arch
    assert f"--clip {runs / 'clip'}" in config["training"]["dit"]["command"]
    new, old = load_bundle(runs / "bundle"), load_bundle(tiny_bundle)
    assert not same_weights(new.text.clip, old.text.clip)


def test_gpu_recipe_trains_a_new_8x_vae_and_a_patch_4_dit_on_a_cpu(tiny_bundle, tmp_path):
    # PARTS="vae dit" with VAE_ARCH and DIT_ARCH: a two-level (8x) VAE from scratch, the
    # latent cache made with it, a fresh DiT with 4x4 patches on it, and a bundle that generates
    vae_arch = {"z_channels": 4, "channels": [8, 16], "temporal_channels": 16,
                "temporal_blocks": 1}
    runs = tmp_path / "runs"
    r = run_recipe(tiny_bundle, runs, PARTS="vae dit", VAE_BS="1", VAE_VIEWS="1",
                   VAE_ARCH=json.dumps(vae_arch), DIT_ARCH='{"patch_size": 4}', DIT_BS="2",
                   VAE_MIN="0.01", DIT_MIN="0.01", COUNT="4", TIMING_CLIPS="4")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    config = json.loads((runs / "bundle" / "config.json").read_text())
    assert config["vae"]["channels"] == [8, 16] and config["dit"]["patch_size"] == 4
    assert "--init" not in config["training"]["dit"]["command"]

    from sora_cli.pipeline import VideoPipeline

    frames = np.concatenate(list(VideoPipeline.load(str(runs / "bundle"), "cpu")
                                 .generate("a red ball", 1.0, seed=0)))
    assert frames.shape[1:] == (256, 256, 3) and frames.dtype == np.uint8


def test_gpu_recipe_widens_the_bundles_latent_and_goes_on_with_its_dit(tiny_bundle, tmp_path):
    # PARTS="vae dit" WIDEN: BASE's VAE goes on with each latent channel split in two, the
    # latent cache is made with it, and BASE's DiT goes on, split to match, instead of fresh
    from sora_cli.bundle import load_bundle
    from sora_cli.pipeline import VideoPipeline

    old = load_bundle(tiny_bundle)
    wide = 2 * old.vae.cfg.z_channels
    runs = tmp_path / "runs"
    r = run_recipe(tiny_bundle, runs, PARTS="vae dit", WIDEN=str(wide), VAE_LR="1e-4",
                   VAE_BS="1", VAE_VIEWS="1", DIT_BS="2", VAE_MIN="0.01", DIT_MIN="0.01",
                   COUNT="4", TIMING_CLIPS="4")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    config = json.loads((runs / "bundle" / "config.json").read_text())
    assert config["vae"]["z_channels"] == wide and config["dit"]["in_channels"] == wide
    assert f"--init {tiny_bundle}" in config["training"]["vae"]["command"]
    assert f"--init {tiny_bundle}" in config["training"]["dit"]["command"]
    assert "--lr 0.0001" in config["training"]["vae"]["command"]
    new = load_bundle(runs / "bundle")
    # the trunk went on from BASE's (a fresh one would not correlate with it)
    import torch

    a, b = new.dit.blocks[0].attn.qkv.weight.float(), old.dit.blocks[0].attn.qkv.weight.float()
    assert torch.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.9
    frames = np.concatenate(list(VideoPipeline.load(str(runs / "bundle"), "cpu")
                                 .generate("a red ball", 1.0, seed=0)))
    assert frames.shape[1:] == (256, 256, 3) and frames.dtype == np.uint8
    # a widening without a VAE stage, or beside a VAE from scratch, is refused up front
    for knobs in ({"PARTS": "dit", "WIDEN": str(wide)},
                  {"PARTS": "vae dit", "WIDEN": str(wide), "VAE_ARCH": "{}"}):
        r = run_recipe(tiny_bundle, tmp_path / "refused", **knobs)
        assert r.returncode == 2 and "WIDEN" in r.stderr, r.stderr
        assert not (tmp_path / "refused" / "bundle").exists()


def test_gpu_recipe_trains_only_the_decoder_and_keeps_the_bundles_dit(tiny_bundle, tmp_path):
    # PARTS=decoder: the decoder of BASE's VAE (on noisy latents here), exported with BASE's DiT and
    # settings as they are; a new VAE and a decoder-only run in one go are refused
    from sora_cli.bundle import load_bundle

    runs = tmp_path / "runs"
    knobs = {"VAE_BS": "1", "DEC_MIN": "0.01", "LATENT_NOISE": "0.3"}
    r = run_recipe(tiny_bundle, runs, PARTS="decoder", **knobs)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "decoder: 20 steps" in r.stdout and f"done: {runs / 'bundle'}" in r.stdout
    new, old = load_bundle(runs / "bundle"), load_bundle(tiny_bundle)
    assert new.config.name == old.config.name and new.config.flow == old.config.flow
    assert new.config.training["dit"] == old.config.training["dit"]
    assert "--decoder-only --latent-noise 0.3" in new.config.training["vae"]["command"]
    assert same_weights(new.dit, old.dit)
    assert not same_weights(new.vae, old.vae)
    assert not (runs / "dit").exists() and not (runs / "latents").exists()

    r = run_recipe(tiny_bundle, tmp_path / "both", timeout=60, PARTS="vae decoder", **knobs)
    assert r.returncode == 2 and "do not go together" in r.stderr
    assert not (tmp_path / "both" / "time-vae").exists()


def test_gpu_recipe_trains_the_decoder_and_the_dit_in_one_run(tiny_bundle, tmp_path):
    # PARTS="decoder dit": the decoder keeps BASE's encoder, so the latent cache and the DiT keep
    # BASE's latent space, and the bundle takes both new parts
    from sora_cli.bundle import load_bundle

    runs = tmp_path / "runs"
    r = run_recipe(tiny_bundle, runs, PARTS="decoder dit", VAE_BS="1", DEC_MIN="0.01",
                   DIT_BS="2", DIT_MIN="0.01", COUNT="4", TIMING_CLIPS="4")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "] decoder: 20 steps" in r.stdout and "] dit: 20 steps" in r.stdout
    new, old = load_bundle(runs / "bundle"), load_bundle(tiny_bundle)
    assert "--decoder-only" in new.config.training["vae"]["command"]
    assert f"--vae {tiny_bundle}" in new.config.training["dit"]["command"]
    for part in ("vae", "dit"):
        assert not same_weights(getattr(new, part), getattr(old, part)), part
    assert same_weights(new.vae.encoder, old.vae.encoder)


def test_gpu_recipe_stops_a_stage_that_overruns_its_minutes_and_still_exports(tiny_bundle,
                                                                             tmp_path):
    # a DiT far slower than its timing run (here: OVERRUN 0.5 caps it at half its minutes)
    # stops with a checkpoint, and the bundle is exported from it rather than lost
    from sora_cli.bundle import load_bundle

    runs = tmp_path / "runs"
    r = run_recipe(tiny_bundle, runs, PARTS="dit", DIT_BS="2", DIT_MIN="0.01", COUNT="4",
                   TIMING_CLIPS="4", OVERRUN="0.5")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "] dit: 20 steps" in r.stdout and f"done: {runs / 'bundle'}" in r.stdout
    assert json.loads((runs / "dit" / "train.json").read_text())["max_minutes"] == 0.005
    stopped_at = json.loads((runs / "dit" / "latest.json").read_text())["step"]
    assert 0 < stopped_at < 20
    new, old = load_bundle(runs / "bundle"), load_bundle(tiny_bundle)
    assert not same_weights(new.dit, old.dit)


def test_gpu_recipe_trains_an_expert_and_keeps_it_beside_a_retrained_dit(tiny_bundle, tmp_path):
    # PARTS=expert: a high-noise expert from BASE's DiT, shipped beside it; then PARTS=dit from
    # that bundle retrains the main DiT and keeps the expert (same latent space)
    from sora_cli.bundle import load_bundle

    knobs = {"DIT_BS": "2", "COUNT": "8", "TIMING_CLIPS": "8", "EXPERT_MIN": "0.01",
             "DIT_MIN": "0.01", "MIN_T": "0.6", "EXPERT_T": "0.7"}
    runs = tmp_path / "runs"
    r = run_recipe(tiny_bundle, runs, PARTS="expert", **knobs)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "expert: 20 steps" in r.stdout and "] dit:" not in r.stdout
    new, old = load_bundle(runs / "bundle"), load_bundle(tiny_bundle)
    assert new.config.flow.expert_t == 0.7 and new.dit_high is not None
    assert same_weights(new.dit, old.dit)
    assert "--min-t 0.6" in new.config.training["dit_high"]["command"]
    assert f"--init {tiny_bundle}" in new.config.training["dit_high"]["command"]

    again = tmp_path / "again"
    r = run_recipe(runs / "bundle", again, PARTS="dit", **knobs)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    kept = load_bundle(again / "bundle")
    assert kept.config.flow.expert_t == 0.7
    assert same_weights(kept.dit_high, new.dit_high)
    assert not same_weights(kept.dit, new.dit)

    r = run_recipe(tiny_bundle, tmp_path / "bad", timeout=60, PARTS="vae expert", **knobs)
    assert r.returncode == 2 and "add dit to PARTS" in r.stderr
    assert not (tmp_path / "bad" / "time-vae").exists()


def test_a_json_storyboard_file_is_json_whatever_it_starts_with():
    from sora_cli.errors import SoraError
    from sora_cli.storyboard import parse_storyboard

    # read as text, it was a 4 s segment whose prompt had the quotes
    with pytest.raises(SoraError, match='b.json: expected a list of segments'):
        parse_storyboard('"a red ball bouncing on a beach"', "b.json")
    with pytest.raises(SoraError, match=r"Extra data; a \.json storyboard is read as JSON"):
        parse_storyboard("4s: a red ball bouncing on a beach", "b.json")
    # text that starts like a number of seconds only as a word does is a prompt
    board = parse_storyboard("infinite space: a white star\n3 red balls: bouncing\n")
    assert [s.prompt for s in board.segments] == ["infinite space: a white star",
                                                  "3 red balls: bouncing"]


def test_storyboards_and_job_files_saved_with_a_bom_read_as_written(tmp_path):
    # Notepad and PowerShell write UTF-8 with a byte order mark; read as text it made the
    # first JSON row a prompt
    from sora_cli.errors import SoraError
    from sora_cli.storyboard import load_storyboard
    from sora_cli.textfile import read_text_arg

    board = tmp_path / "board.json"
    board.write_bytes(b'\xef\xbb\xbf[{"prompt": "a red ball", "duration": 0.5}]')
    assert [(s.prompt, s.duration) for s in load_storyboard(board).segments] == [("a red ball", 0.5)]
    lines = tmp_path / "board.txt"
    lines.write_bytes("\ufeff1s: a red ball\n".encode())
    assert [(s.prompt, s.duration) for s in load_storyboard(lines).segments] == [("a red ball", 1.0)]
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_bytes(b'\xef\xbb\xbf{"prompt": "a red ball"}\n')
    assert read_text_arg(jobs, "job file", "")[0] == '{"prompt": "a red ball"}\n'
    with pytest.raises(SoraError, match="job file .* is a folder: give the file in it"):
        read_text_arg(tmp_path, "job file", "")


def test_batch_sh_reads_a_manifest_with_quotes_and_names_in_it(tmp_path):
    # The plain-shell reader cut a prompt at its first \" ("a \")
    from sora_cli.batch import parse_jobs, run_batch

    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    jobs = ['{"prompt": "a red ball called \\"Bo\\" at the café", "output": "sub/bo.mp4"}',
            "a graphic beheading with gore", 'a blue car, path C:\\\\cars\\\\']

    def run_item(item, seed, output):
        from sora_cli.guard import check_prompt

        check_prompt(item.prompt)
        output.write_bytes(b"video")
        return {"duration": 1}

    out = tmp_path / "out"
    run_batch(parse_jobs("\n".join(jobs)), out, run_item)
    # as an older sora-cli wrote it: non-ASCII text as JSON escapes
    manifest = out / "manifest.jsonl"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("é", "\\u00e9"))
    r = subprocess.run([bash, str(EXAMPLES / "batch.sh"), "--read", str(manifest)],
                       capture_output=True, text=True, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        'done     sub/bo.mp4  <- a red ball called "Bo" at the café',
        "refused  a graphic beheading with gore",
        "done     0003-a-blue-car-path-c-cars-s2.mp4  <- a blue car, path C:\\\\cars\\\\",
        "2 videos done"]
