"""Model bundles: export a tiny bundle, load it in a fresh process and make a real MP4; strict
loading (missing file, wrong shape, wrong dtype) fails with one line; lookup by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file, save_file

from sora_cli.bundle import (BundleConfig, bundle_dirs, bundle_hash, export_bundle, find_bundle,
                             list_bundles, load_bundle)
from sora_cli.errors import SoraError
from sora_cli.nn.dit import DiT, DiTConfig
from sora_cli.nn.text import TextEncoder, build_clip, tiny_text_config
from sora_cli.nn.vae import VAEConfig, VideoVAE
from sora_cli.video_io import probe


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_parts(seed=0):
    torch.manual_seed(seed)
    vae = VideoVAE(VAEConfig(z_channels=4, channels=(8, 16, 16), temporal_channels=16, temporal_blocks=1,
                             latent_mean=[0.1, 0.0, -0.1, 0.2], latent_std=[1.0, 2.0, 0.5, 1.5]))
    clip = build_clip(tiny_text_config(width=32, layers=1, heads=2, embed_dim=16, image_size=32,
                                       vision_width=32, vision_layers=1, context_length=16))
    dit = DiT(DiTConfig(in_channels=4, width=32, depth=2, heads=2, text_dim=32, pooled_dim=16))
    with torch.no_grad():  # not the all-zero adaLN start, so samples depend on the weights
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return vae, clip, dit


def export_tiny(folder, name="tiny"):
    vae, clip, dit = tiny_parts()
    cfg = BundleConfig(name=name, fps=8.0, frame_size=(32, 64), clip_frames=9,
                       description="tiny test bundle")
    return export_bundle(folder, vae, TextEncoder(clip), dit, cfg), (vae, clip, dit)


def test_export_writes_bf16_files_and_config(tmp_path):
    folder, (vae, clip, dit) = export_tiny(tmp_path / "models" / "tiny")
    assert sorted(p.name for p in folder.iterdir()) == [
        "MODEL_CARD.md", "config.json", "dit.safetensors", "text.safetensors", "vae.safetensors"]
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["format_version"] == 2 and cfg["dtype"] == "bfloat16" and cfg["fps"] == 8.0
    assert cfg["frame_size"] == [32, 64] and cfg["vae"]["latent_std"] == [1.0, 2.0, 0.5, 1.5]
    assert cfg["dit"]["width"] == 32 and cfg["text"]["model_cfg"]["text_cfg"]["width"] == 32
    state = load_file(str(folder / "dit.safetensors"))
    assert set(state) == set(dit.state_dict())
    assert all(t.dtype == torch.bfloat16 for t in state.values())
    assert "tiny test bundle" in (folder / "MODEL_CARD.md").read_text()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left
    mask = os.umask(0)
    os.umask(mask)
    # readable by whoever the umask lets read: a shared install must be able to load it
    assert {p.stat().st_mode & 0o777 for p in folder.iterdir()} == {0o666 & ~mask}
    # re-export replaces it in place
    export_bundle(folder, vae, clip, dit, BundleConfig(name="tiny"), card_text="# custom card\n")
    assert (folder / "MODEL_CARD.md").read_text() == "# custom card\n"


def test_load_matches_exported_weights(tmp_path):
    folder, (vae, clip, dit) = export_tiny(tmp_path / "tiny")
    b = load_bundle(folder)
    assert b.config.name == "tiny" and b.config.frame_size == (32, 64)
    assert b.vae.cfg.latent_mean == [0.1, 0.0, -0.1, 0.2]
    for mine, theirs in ((b.dit, dit), (b.vae, vae), (b.text.clip, clip)):
        for (k, a), (_, c) in zip(sorted(mine.state_dict().items()), sorted(theirs.state_dict().items())):
            assert a.dtype == torch.float32
            torch.testing.assert_close(a, c.to(torch.bfloat16).float(), msg=k)
    assert not b.dit.training and not b.vae.training


SAMPLE_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from sora_cli.bundle import load_bundle
    from sora_cli.sampling import sample
    from sora_cli.nn.vae import tensor_to_video
    from sora_cli.video_io import write_video
    b = load_bundle(sys.argv[1])
    H, W = b.config.frame_size
    C, T, h, w = b.vae.latent_shape(9, H, W)
    cond, uncond = b.text(["a red ball bouncing on a beach"]), b.text([""])
    sums = []
    for seed in (1, 2):
        z = sample(b.dit, (1, C, T, h, w), cond, uncond, steps=3, guidance=3.0,
                   generator=torch.Generator().manual_seed(seed))
        sums.append(float(z.double().sum()))
        if seed == 1:
            with torch.no_grad():
                video = b.vae.decode(b.vae.denormalize_latents(z), chunk=1)
            frames = tensor_to_video(video)[0]
            write_video(sys.argv[2], frames, b.config.fps)
    print(json.dumps({"hash": b.hash, "sums": sums, "frames": len(frames)}))
""")


def test_fresh_process_loads_and_samples_a_clip(tmp_path):
    folder, _ = export_tiny(tmp_path / "models" / "tiny")
    env = {**os.environ, "SORA_HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    runs = []
    for out in ("a.mp4", "b.mp4"):
        proc = subprocess.run([sys.executable, "-c", SAMPLE_SCRIPT, "tiny", str(tmp_path / out)],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    for out in ("a.mp4", "b.mp4"):
        info = probe(tmp_path / out)
        assert (info.width, info.height, info.frames) == (64, 32, 9) and info.fps == pytest.approx(8)
    assert runs[0] == runs[1]                                   # same seed, same latents
    assert runs[0]["sums"][0] != runs[0]["sums"][1]             # another seed, others
    assert runs[0]["hash"] == bundle_hash(folder) and len(runs[0]["hash"]) == 16


def corrupt(folder, fname, fn):
    state = load_file(str(folder / fname))
    fn(state)
    save_file(state, str(folder / fname))


@pytest.mark.parametrize("damage,message", [
    (lambda f: (f / "vae.safetensors").unlink(), "vae.safetensors is missing"),
    (lambda f: (f / "config.json").unlink(), "config.json is missing"),
    (lambda f: corrupt(f, "dit.safetensors", lambda s: s.__setitem__(
        "final.weight", torch.zeros(3, 32, dtype=torch.bfloat16))), "'final.weight' has shape [3, 32]"),
    (lambda f: corrupt(f, "dit.safetensors", lambda s: s.__setitem__(
        "final.bias", s["final.bias"].float())), "'final.bias' is float32, config.json says bfloat16"),
    (lambda f: corrupt(f, "text.safetensors", lambda s: s.pop("ln_final.weight")), "lacks 1 text tensors"),
    (lambda f: corrupt(f, "vae.safetensors", lambda s: s.__setitem__("extra", torch.zeros(1))),
     "does not describe (first: extra)"),
    (lambda f: (f / "dit.safetensors").write_bytes(b"not a safetensors file"), "not a readable safetensors"),
    (lambda f: (f / "config.json").write_text(json.dumps(
        {**json.loads((f / "config.json").read_text()), "format_version": 99})), "format version 99"),
])
def test_strict_loading_errors(tmp_path, damage, message):
    folder, _ = export_tiny(tmp_path / "tiny")
    damage(folder)
    with pytest.raises(SoraError) as err:
        load_bundle(folder)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_reports_damaged_bundle_in_one_line(tmp_path, sora):
    folder, _ = export_tiny(tmp_path / "tiny")
    ok = sora("models", str(folder), "--json")
    assert ok.returncode == 0, ok.stderr
    info = json.loads(ok.stdout)
    assert info["name"] == "tiny" and info["params"]["dit"] > 0 and info["hash"] == bundle_hash(folder)
    corrupt(folder, "dit.safetensors", lambda s: s.__setitem__("x_embed.weight", torch.zeros(2, 2, dtype=torch.bfloat16)))
    bad = sora("models", str(folder))
    assert bad.returncode == 1 and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "x_embed.weight" in lines[0]
    assert "Traceback" not in bad.stderr
    missing = sora("models", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [
        f"error: no model bundle at {tmp_path / 'nowhere'}"]


def test_lookup_by_name(tmp_path, monkeypatch, sora):
    monkeypatch.setenv("SORA_HOME", str(tmp_path / "home"))
    assert bundle_dirs()[-1] == tmp_path / "home" / "models"
    with pytest.raises(SoraError, match="model 'tiny' not found"):
        find_bundle("tiny")
    folder, _ = export_tiny(tmp_path / "home" / "models" / "tiny")
    assert find_bundle("tiny") == folder
    assert find_bundle(str(folder)) == folder
    assert [b["name"] for b in list_bundles() if b["path"] == str(folder)] == ["tiny"]
    listed = sora("models", "--json", env={"SORA_HOME": str(tmp_path / "home")})
    assert listed.returncode == 0 and "tiny" in [b["name"] for b in json.loads(listed.stdout)["bundles"]]
    with pytest.raises(SoraError, match="config.json is missing"):
        find_bundle(tmp_path)                                  # a folder, not a bundle
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()                                # an unrelated ./tiny folder
    assert find_bundle("tiny") == folder                       # a bare name is still a name
    h = bundle_hash("tiny")
    assert h == bundle_hash(folder)
    (folder / "MODEL_CARD.md").write_text("changed card")       # the card is not part of the hash
    assert bundle_hash(folder) == h
    corrupt(folder, "vae.safetensors", lambda s: s["conv_in.weight" if "conv_in.weight" in s
                                                   else "encoder.conv_in.weight"].mul_(2))
    assert bundle_hash(folder) != h


def test_nonfinite_weights_are_refused_naming_the_file_and_tensor(tmp_path, sora):
    folder, _ = export_tiny(tmp_path / "tiny")
    corrupt(folder, "dit.safetensors", lambda s: s["final.bias"].__setitem__(0, float("inf")))
    with pytest.raises(SoraError) as err:
        load_bundle(folder)
    assert str(err.value) == (f"bundle {folder}: dit.safetensors: tensor 'final.bias' holds NaN "
                              "or infinite values (the file is damaged: export or copy the "
                              "bundle again)")
    # the user's repro: a block of 0xff bytes in the middle of the weights is NaNs
    folder, _ = export_tiny(tmp_path / "flip")
    data = bytearray((folder / "vae.safetensors").read_bytes())
    mid = len(data) // 2
    data[mid:mid + 2000] = b"\xff" * 2000
    (folder / "vae.safetensors").write_bytes(bytes(data))
    bad = sora("models", str(folder))
    assert bad.returncode == 1 and bad.stdout == ""
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "vae.safetensors: tensor '" in lines[0], bad.stderr
    assert "holds NaN or infinite values" in lines[0]


def _edit_config(folder, edit):
    cfg = json.loads((folder / "config.json").read_text())
    cfg = edit(cfg) or cfg
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(frame_size=[0, 0]),
     "frame_size must be [height, width], whole numbers from 16 to 4096 (got [0, 0])"),
    (lambda c: c.update(fps=-8), "fps must be a positive number (got -8)"),
    (lambda c: c.update(fps="abc"), 'fps must be a positive number (got "abc")'),
    (lambda c: c.update(fps=1000), "fps must be at most 120 (got 1000)"),
    (lambda c: c["flow"].update(sampler="bogus"),
     'flow.sampler must be "euler" or "heun" (got "bogus")'),
    (lambda c: c["flow"].update(steps=0), "flow.steps must be a whole number from 1 to 1000 (got 0)"),
    (lambda c: c["flow"].update(steps=2.5), "flow.steps must be a whole number from 1 to 1000"),
    (lambda c: c["flow"].update(guidance=None), "flow.guidance must be a number from 0 to 50"),
    (lambda c: c["flow"].update(candidates=True), "flow.candidates must be a whole number"),
    (lambda c: c["flow"].update(motion_plan_t=0.5, motion_plan_min_t=0.6),
     "flow.motion_plan_min_t must be at most flow.motion_plan_t (0.5) (got 0.6)"),
    (lambda c: c["vae"].update(latent_std=[1.0, 0.0, 1.0, 1.0]),
     "vae.latent_std must be positive numbers (got 0 for channel 1)"),
    (lambda c: c["vae"].update(latent_mean=[0.0]),
     "vae.latent_mean must hold one number per latent channel (4), got 1"),
    (lambda c: c["dit"].update(depth=0), "dit.depth must be a positive whole number (got 0)"),
    (lambda c: c.update(flow=[]), "flow must be a JSON object (got a list)"),
    (lambda c: c.update(vocabulary="World"), 'vocabulary must be "world" or "" (got "World")'),
    (lambda c: c.update(clip_frames=-1), "clip_frames must be a positive whole number (got -1)"),
])
def test_config_values_are_checked_at_load(tmp_path, edit, message):
    folder, _ = export_tiny(tmp_path / "tiny")
    _edit_config(folder, edit)
    with pytest.raises(SoraError) as err:
        load_bundle(folder)
    assert str(err.value).startswith(f"bundle {folder}: config.json: {message}"), str(err.value)
    assert "\n" not in str(err.value)


def test_a_config_that_is_not_an_object_is_one_line_to_load_and_listed(tmp_path, sora):
    home = tmp_path / "home"
    folder, _ = export_tiny(home / "models" / "listy")
    _edit_config(folder, lambda c: [c])
    bad = sora("models", str(folder))
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        f"error: bundle {folder}: config.json must hold a JSON object, not a list"]
    listed = sora("models", "--json", env={"SORA_HOME": str(home)})   # listing does not crash
    assert listed.returncode == 0, listed.stderr
    assert "listy" in [b["name"] for b in json.loads(listed.stdout)["bundles"]]


def test_the_not_found_hint_names_a_folder_that_is_searched(tmp_path, monkeypatch):
    import re
    import shlex

    monkeypatch.setenv("SORA_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SoraError) as err:
        find_bundle("mine")
    message = str(err.value)
    for d in bundle_dirs():
        assert str(d) in message
    assert "give the bundle's folder as a path" in message
    # following the hint makes the name findable, from any working folder
    export = re.search(r"--export ([^`]+)`", message).group(1)
    folder, _ = export_tiny(shlex.split(export)[0])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert find_bundle("mine") == folder
