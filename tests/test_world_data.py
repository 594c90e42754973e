"""Datasets and commands of the world: WorldClips streams, VideoFolder, `sora world show`,
`sora world vocab`, `sora data render` (captions.jsonl rows, resume)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sora_cli.video_io import probe, read_video, write_video
from sora_cli.world.dataset import VideoFolder, WorldClips
from sora_cli.world.parse import parse_prompt
from sora_cli.world.render import render_scene
from sora_cli.world.scene import COLORS, MOTIONS, SETTINGS, SHAPES

ROW_FIELDS = ["id", "caption", "setting", "subjects", "weather", "camera"]
SUBJECT_FIELDS = ["color", "shape", "size", "motion", "speed"]


def test_world_clips_items_and_determinism():
    ds = WorldClips(size=32, num_frames=5, fps=8, seed=4, length=4)
    items = list(ds)
    assert [x["index"] for x in items] == [0, 1, 2, 3]
    x = items[0]
    assert x["video"].dtype == torch.uint8 and tuple(x["video"].shape) == (5, 32, 32, 3)
    assert isinstance(x["caption"], str) and set(x["scene"]) == {"setting", "subjects",
                                                                "weather", "camera"}
    again = list(WorldClips(size=32, num_frames=5, fps=8, seed=4, length=4))
    assert all(torch.equal(a["video"], b["video"]) and a["caption"] == b["caption"]
               for a, b in zip(items, again))
    other = list(WorldClips(size=32, num_frames=5, fps=8, seed=5, length=4))
    assert [a["caption"] for a in items] != [b["caption"] for b in other]


def test_world_clips_workers_get_distinct_streams():
    ds = WorldClips(size=16, num_frames=2, seed=1, length=8)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    got = sorted(x["index"] for x in loader)
    assert got == list(range(8))                      # every clip once, none twice
    single = {x["index"]: x["caption"] for x in ds}
    assert all(single[x["index"]] == x["caption"] for x in loader)


def test_world_clips_ddp_ranks(monkeypatch):
    import torch.distributed as dist
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(dist, "get_rank", lambda r=rank: r)
        monkeypatch.setattr(dist, "get_world_size", lambda: 2)
        seen.append([x["index"] for x in WorldClips(size=16, num_frames=1, seed=0, length=6)])
    assert seen == [[0, 2, 4], [1, 3, 5]]


def test_sora_world_show_writes_the_reference_clip(sora, tmp_path):
    out = tmp_path / "ref.mp4"
    r = sora("world", "show", "A small yellow star falls through outer space.", "-o", out,
             "--size", "64", "--seconds", "2", "--fps", "8", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["scene"]["setting"] == "space" and info["frames"] == 17
    meta = probe(out)
    assert (meta.width, meta.height, meta.frames) == (64, 64, 17) and meta.fps == 8
    assert meta.sora["scene"]["subjects"][0]["shape"] == "star"
    frames = read_video(out).frames.astype(int)
    expect = render_scene(parse_prompt("A small yellow star falls through outer space."), 64, 17, 8)
    assert np.abs(frames - expect).mean() < 3          # H.264 of the same frames
    # exists -> refused, -y replaces; nonsense prompt -> one line, exit 1, nothing written
    r = sora("world", "show", "a red ball", "-o", out, "--size", "64")
    assert r.returncode == 1 and "already exists" in r.stderr
    assert sora("world", "show", "a red ball", "-o", out, "--size", "64", "-y").returncode == 0
    bad = tmp_path / "bad.mp4"
    r = sora("world", "show", "a magenta ball", "-o", bad, "--size", "64")
    assert r.returncode == 1 and "magenta" in r.stderr and "Traceback" not in r.stderr
    assert not bad.exists()
    r = sora("world", "show", "a red ball", "-o", bad, "--size", "63")
    assert r.returncode == 2 and not bad.exists()
    r = sora("world", "show", "  ", "-o", bad)
    assert r.returncode == 2 and "the prompt is empty" in r.stderr and not bad.exists()


def test_sora_world_vocab(sora):
    r = sora("world", "vocab", "--json")
    assert r.returncode == 0
    v = json.loads(r.stdout)
    assert list(v["settings"]) == list(SETTINGS) and set(v["shapes"]) == set(SHAPES)
    assert {c: tuple(d["rgb"]) for c, d in v["colors"].items()} == COLORS
    assert set(v["motions"]) == set(MOTIONS)
    text = sora("world", "vocab").stdout
    assert "outer space" in text and "grey" in text and "zoom_in" in text


def test_sora_data_render_writes_clips_and_resumes(sora, tmp_path):
    out = tmp_path / "data"
    r = sora("data", "render", "--count", "3", "--seed", "7", "--size", "32", "--fps", "4",
             "--seconds", "1", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["written"] == 3
    rows = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    for row in rows:
        assert list(row) == ROW_FIELDS
        assert all(list(s) == SUBJECT_FIELDS for s in row["subjects"])
        assert parse_prompt(row["caption"]).canonical() == {k: row[k] for k in ROW_FIELDS[2:]}
        info = probe(out / f"{row['id']}.mp4")
        assert (info.width, info.height, info.frames) == (32, 32, 5)
    first = (out / f"{rows[0]['id']}.mp4").stat().st_mtime_ns

    # A kill mid-way: the last clip lost, a torn line at the end of captions.jsonl.
    (out / f"{rows[2]['id']}.mp4").unlink()
    with open(out / "captions.jsonl", "a") as fh:
        fh.write('{"id": "0000')
    r = sora("data", "render", "--count", "5", "--seed", "7", "--size", "32", "--fps", "4",
             "--seconds", "1", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert (info["written"], info["skipped"]) == (3, 2)
    again = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()]
    assert sorted(x["id"] for x in again) == [f"{i:06d}" for i in range(5)]
    assert {x["id"]: x for x in again}[rows[2]["id"]] == rows[2]     # deterministic
    assert (out / f"{rows[0]['id']}.mp4").stat().st_mtime_ns == first  # not re-rendered
    # Other settings into the same folder are refused.
    r = sora("data", "render", "--count", "5", "--seed", "8", "--size", "32", "--out", out)
    assert r.returncode == 1 and "other settings" in r.stderr
    # The folder loads as a dataset.
    ds = VideoFolder(out, num_frames=5, size=32)
    assert len(ds) == 5 and tuple(ds[0]["video"].shape) == (5, 32, 32, 3)


def test_video_folder_of_user_videos(tmp_path):
    rng = np.random.default_rng(0)
    write_video(tmp_path / "a.mp4", rng.integers(0, 255, (6, 48, 80, 3), dtype=np.uint8), 8)
    write_video(tmp_path / "b.mp4", rng.integers(0, 255, (3, 64, 64, 3), dtype=np.uint8), 8)
    (tmp_path / "captions.jsonl").write_text(
        json.dumps({"id": "a", "caption": "noise", "source": "camera", "extra": 1}) + "\n"
        + json.dumps({"id": "b", "caption": "more noise"}) + "\n")
    ds = VideoFolder(tmp_path, num_frames=4, size=(32, 48))
    a, b = ds[0], ds[1]
    assert tuple(a["video"].shape) == (4, 32, 48, 3) and a["caption"] == "noise"
    assert tuple(b["video"].shape) == (4, 32, 48, 3)
    assert torch.equal(b["video"][2], b["video"][3])      # short clip: last frame repeated
    (tmp_path / "captions.jsonl").write_text(json.dumps({"id": "zzz", "caption": "x"}) + "\n")
    from sora_cli.errors import SoraError
    with pytest.raises(SoraError, match="zzz"):
        VideoFolder(tmp_path, 4, 32)


def _level_clip(path, levels, fps):
    """A clip whose frame k is one flat grey level, levels[k]: which source frame a decoded
    frame shows can be read back from its mean."""
    frames = np.stack([np.full((32, 32, 3), v, np.uint8) for v in levels])
    return write_video(path, frames, fps)


def test_video_folder_resamples_each_clip_to_the_training_rate_and_cuts_windows(tmp_path):
    # 1 s at 24 fps: frame k at level 8k; 1 s at 2 fps: two frames; 0.5 s at 4 fps
    _level_clip(tmp_path / "fast.mp4", [8 * k for k in range(24)], 24)
    _level_clip(tmp_path / "slow.mp4", [40, 200], 2)
    _level_clip(tmp_path / "short.mp4", [100, 150], 4)
    (tmp_path / "captions.jsonl").write_text("".join(
        json.dumps({"id": i, "caption": f"clip {i}"}) + "\n" for i in ("fast", "slow", "short")))
    ds = VideoFolder(tmp_path, num_frames=2, size=16, fps=4)
    # at 4 fps: fast and slow last 4 frames (two windows each), short 2 (one window)
    assert len(ds) == 5
    means = [[round(float(f.float().mean())) for f in ds[i]["video"]] for i in range(5)]
    captions = [ds[i]["caption"] for i in range(5)]
    assert captions == ["clip fast"] * 2 + ["clip slow"] * 2 + ["clip short"]
    # fast: the frames at 0, 0.25, 0.5, 0.75 s are source frames 0, 6, 12, 18
    want = [[0, 48], [96, 144], [40, 40], [200, 200], [100, 150]]
    for got, exp in zip(means, want):
        assert all(abs(g - e) <= 3 for g, e in zip(got, exp)), (means, want)
    assert all(tuple(ds[i]["video"].shape) == (2, 16, 16, 3) for i in range(5))
    # without a rate, each clip keeps its own frames: fast is 12 windows of 2
    assert len(VideoFolder(tmp_path, num_frames=2, size=16)) == 12 + 1 + 1
    # slow runs below 4 fps, and every clip is shorter than 5 frames at 4 fps: training says so
    first, *warned = ds.describe()
    assert first == f"{tmp_path}: 3 clips, 5 windows of 2 frames at 4 fps"
    assert len(warned) == 1 and warned[0].startswith("1 of 3 clips run at fewer than 4 fps")
    assert VideoFolder(tmp_path, num_frames=5, size=16, fps=4).describe()[1].startswith(
        "3 of 3 clips are shorter than one window (5 frames at 4 fps)")


def test_a_window_starting_between_source_frames_starts_with_the_frame_then_on_screen(
        tmp_path):
    # 10 fps cut into 4 fps windows of 5: window 1 starts at 1.25 s, where frame 12 (from
    # 1.2 s) is on screen; an input seek alone would drop it and start at frame 13
    _level_clip(tmp_path / "ten.mp4", [4 * k for k in range(50)], 10)
    (tmp_path / "captions.jsonl").write_text(json.dumps({"id": "ten", "caption": "x"}) + "\n")
    ds = VideoFolder(tmp_path, num_frames=5, size=16, fps=4)
    full = [round(float(f.mean())) for f in read_video(tmp_path / "ten.mp4", rate=4).frames]
    assert len(ds) == 4 and len(full) == 20
    for i in range(4):
        got = [round(float(f.float().mean())) for f in ds[i]["video"]]
        assert all(abs(g - e) <= 3 for g, e in zip(got, full[5 * i:5 * i + 5])), (i, got, full)
    assert [round(v / 4) for v in full[5:10]] == [12, 15, 17, 20, 22]


def test_captions_name_their_clips_plainly_or_say_what_is_wrong(tmp_path):
    from sora_cli.errors import SoraError

    _level_clip(tmp_path / "phone.mp4", [10, 20], 4)
    (tmp_path / "phone.mp4").rename(tmp_path / "IMG_0042.MOV")
    _level_clip(tmp_path / "b.mp4", [10, 20], 4)
    (tmp_path / "sub").mkdir()

    def rows(*rs):
        (tmp_path / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))

    rows({"id": "IMG_0042", "caption": "any case"}, {"id": "b.mp4", "caption": "id is a name"},
         {"id": 7, "caption": "by file", "file": "b.mp4"})
    ds = VideoFolder(tmp_path, 2, 16, fps=4)
    assert [p.name for _, p, _ in ds.rows] == ["IMG_0042.MOV", "b.mp4", "b.mp4"]
    # a clip with two captions is allowed, and the log says it weighs double
    assert "captions.jsonl:3 names b.mp4 again (first on line 2): such a clip is trained on " \
        "once per caption" in " ".join(ds.describe())
    for row, words in [({"id": "b", "caption": "x", "file": "gone.mp4"}, "no such clip"),
                       ({"id": "b", "caption": "x", "file": "sub"}, "is a folder, not a clip"),
                       ({"id": "b", "caption": "x", "file": 7}, '"file" must be a file name'),
                       ({"id": "zz", "caption": "x"}, "no clip for id 'zz'"),
                       ({"id": "b", "caption": "  "}, "the caption is empty")]:
        rows({"id": "b", "caption": "fine"}, row)
        with pytest.raises(SoraError, match="captions.jsonl:2: ") as exc:
            VideoFolder(tmp_path, 2, 16, fps=4)
        assert words in str(exc.value)
    (tmp_path / "captions.jsonl").write_bytes('{"id": "b", "caption": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(SoraError, match="is not UTF-8 text .*save it as UTF-8"):
        VideoFolder(tmp_path, 2, 16, fps=4)


def test_video_folder_names_a_bad_clip_before_training(tmp_path):
    from sora_cli.errors import SoraError

    _level_clip(tmp_path / "a.mp4", [10, 20], 4)
    (tmp_path / "b.mp4").write_text("not a video")
    rows = [{"id": "a", "caption": "fine"}, {"id": "b", "caption": "broken"}]
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SoraError, match=r"captions.jsonl:2: .*b\.mp4"):
        VideoFolder(tmp_path, 2, 16, fps=4)
    from PIL import Image
    Image.new("RGB", (16, 16)).save(tmp_path / "c.png")
    rows[1] = {"id": "c", "caption": "a still", "file": "c.png"}
    (tmp_path / "captions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SoraError, match=r"captions.jsonl:2: c.png is a still image"):
        VideoFolder(tmp_path, 2, 16, fps=4)
    (tmp_path / "captions.jsonl").write_text(json.dumps({"id": "a", "caption": 3}) + "\n")
    with pytest.raises(SoraError, match=r"captions.jsonl:1: the caption must be text"):
        VideoFolder(tmp_path, 2, 16, fps=4)
    (tmp_path / "captions.jsonl").write_text("\n")
    with pytest.raises(SoraError, match="lists no videos"):
        VideoFolder(tmp_path, 2, 16, fps=4)
    (tmp_path / "captions.jsonl").unlink()
    with pytest.raises(SoraError, match="no captions.jsonl in .*write one line per video"):
        VideoFolder(tmp_path, 2, 16, fps=4)


def test_motion_twins_are_the_same_scenes_moving_otherwise():
    from sora_cli.train.data import WorldRenders
    from sora_cli.world.sampler import OPPOSITE

    ds = WorldRenders(32, 5, 2, seed=0, twins=True)
    plain = WorldRenders(32, 5, 2, seed=0)
    opposite = moved = 0
    for k in range(24):
        a, b = ds[2 * k], ds[2 * k + 1]
        assert torch.equal(a["video"], plain[k]["video"]) and a["caption"] == plain[k]["caption"]
        sa, sb = a["scene"], b["scene"]
        assert {key: sa[key] for key in ("setting", "weather", "camera")} == \
               {key: sb[key] for key in ("setting", "weather", "camera")}
        assert len(sa["subjects"]) == len(sb["subjects"])
        for x, y in zip(sa["subjects"], sb["subjects"]):
            assert (x["color"], x["shape"], x["size"]) == (y["color"], y["shape"], y["size"])
            assert x["motion"] != y["motion"]
            opposite += OPPOSITE.get(x["motion"]) == y["motion"]
        if sa["subjects"]:
            moved += 1
            assert a["caption"] != b["caption"] and not torch.equal(a["video"], b["video"])
        assert torch.equal(ds[2 * k + 1]["video"], b["video"])     # deterministic
        assert ds.clips.caption(k, twin=True) == b["caption"]       # without rendering
    assert moved >= 18 and opposite >= 10


def test_sora_data_render_renders_again_a_clip_that_is_there_but_broken(sora, tmp_path):
    # a clip cut short (a full disk, a copy stopped half way) is not done: resume redoes it
    out = tmp_path / "data"
    args = ["data", "render", "--seed", "3", "--size", "32", "--fps", "4", "--seconds", "1",
            "--out", out]
    r = sora(*args, "--count", "3", "-q")
    assert r.returncode == 0, r.stderr
    whole = (out / "000000.mp4").read_bytes()
    good = (out / "000002.mp4").stat().st_mtime_ns
    (out / "000000.mp4").write_bytes(whole[:100])                 # `truncate -s 100`
    clip = (out / "000001.mp4").read_bytes()
    (out / "000001.mp4").write_bytes(clip[:len(clip) // 2])       # the header whole, the data not
    r = sora(*args, "--count", "4")
    assert r.returncode == 0, r.stderr
    assert "3 clips written (2 of them again: they were there but cut short or damaged), " \
           "1 already there" in " ".join(r.stderr.split()), r.stderr
    r = sora(*args, "--count", "4", "--json")
    info = json.loads(r.stdout)
    assert (info["written"], info["rerendered"], info["skipped"]) == (0, 0, 4)
    assert (out / "000000.mp4").read_bytes() == whole              # the same clip as before
    assert (out / "000002.mp4").stat().st_mtime_ns == good          # a whole one is kept
    for i in range(4):
        assert probe(out / f"{i:06d}.mp4").frames == 5
    rows = [json.loads(x) for x in (out / "captions.jsonl").read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == [f"{i:06d}" for i in range(4)]
