"""The `sora` command itself, run as a user runs it (a subprocess): help without heavy
imports, --version, results on stdout, exit codes 0/1/2, one-line errors, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import ffmpeg_clip, run_cli
from sora_cli import __version__

HEAVY = ("torch", "torchvision", "open_clip")

HELP_PROBE = textwrap.dedent("""
    import json, sys
    import typer
    from sora_cli.cli import app, main

    def paths(cmd, prefix):
        yield prefix
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from paths(sub, prefix + [name])

    heavy = {}
    for argv in paths(typer.main.get_command(app), []):
        try:
            main(argv + ["--help"])
        except SystemExit as exc:
            assert exc.code == 0, (argv, exc.code)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in %r)
        if loaded:
            heavy[" ".join(argv) or "sora"] = loaded[:3]
    print(json.dumps(heavy))
""" % (HEAVY,))


def test_help_of_every_command_loads_no_torch_or_open_clip():
    proc = subprocess.run([sys.executable, "-c", HELP_PROBE], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert heavy == {}, f"--help imported heavy modules: {heavy}"


def test_help_and_version(sora):
    top = sora("--help")
    assert top.returncode == 0 and "stitch" in top.stdout and "inspect" in top.stdout
    assert sora().returncode == 0  # bare `sora` shows help
    version = sora("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"sora-cli {__version__}"
    for cmd in ("stitch", "inspect"):
        assert sora(cmd, "--help").returncode == 0


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Inputs shared by the CLI tests (made once: every test checks it writes nothing)."""
    tmp_path = tmp_path_factory.mktemp("clips")
    ffmpeg_clip(tmp_path / "a.mp4", seconds=1, fps=10, audio=True)
    ffmpeg_clip(tmp_path / "b.mp4", seconds=1, fps=10, size="80x80", source="testsrc2")
    (tmp_path / "notes.mp4").write_text("meeting notes, not a video\n")
    whole = ffmpeg_clip(tmp_path / "whole.mp4", seconds=2, size="128x96",
                        extra=["-crf", "0"]).read_bytes()
    (tmp_path / "cut.mp4").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "whole.mp4").unlink()
    (tmp_path / "afile").write_text("a file where a folder should be")
    (tmp_path / "text.png").write_text("a note saved under an image's name")
    import imageio.v3 as iio
    iio.imwrite(tmp_path / "still.png", np.full((48, 64, 3), 90, np.uint8))
    (tmp_path / "exists.mp4").write_bytes((tmp_path / "a.mp4").read_bytes())
    return tmp_path


def test_stitch_and_inspect_succeed(clips, sora, tmp_path):
    clips_in = clips
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes((clips / name).read_bytes())
    clips = tmp_path
    done = sora("stitch", "a.mp4", "b.mp4", "-o", "out.mp4", cwd=clips)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "out.mp4  (2.00 s)"
    as_json = sora("stitch", "a.mp4", "b.mp4", "a.mp4", "-o", "x.mp4", "--transition",
                   "crossfade", "--overlap", "0.5", "--json", "-q", cwd=clips)
    assert as_json.returncode == 0 and as_json.stderr == ""
    result = json.loads(as_json.stdout)
    assert result["output"] == "x.mp4" and result["frames"] == 30 - 2 * 5
    assert result["duration"] == pytest.approx(2.0, abs=0.1)
    report = sora("inspect", "x.mp4", "--json", "--sheet", "s.png", "--gif", "p.gif",
                  cwd=clips)
    assert report.returncode == 0, report.stderr
    assert len(report.stdout.strip().splitlines()) == 1
    data = json.loads(report.stdout)
    assert data["frames"] == 20 and data["sora"]["transition"] == "crossfade"
    assert (clips / "s.png").stat().st_size > 0 and (clips / "p.gif").stat().st_size > 0
    human = sora("inspect", "a.mp4", cwd=clips)
    assert human.returncode == 0 and "10 frames at 10 fps" in human.stdout
    still = sora("inspect", clips_in / "still.png")
    assert still.returncode == 0 and "a still image" in still.stdout, still.stderr
    assert "aac" in human.stdout


BAD = [
    # (arguments, exit code, words the one-line message must contain)
    (["stitch", "a.mp4", "missing.mp4", "-o", "out.mp4"], 1, "no such file"),
    (["stitch", "a.mp4", "notes.mp4", "-o", "out.mp4"], 1, "not a video"),
    (["stitch", "a.mp4", "cut.mp4", "-o", "out.mp4"], 1, "truncated"),
    (["stitch", "a.mp4", "b.mp4", "-o", "nodir/out.mp4"], 1, "create it first"),
    (["stitch", "a.mp4", "b.mp4", "-o", "afile/out.mp4"], 1, "is a file, not a folder"),
    (["stitch", "a.mp4", "b.mp4", "-o", "."], 2, "is a folder: name a file in it, e.g."),
    (["stitch", "a.mp4", "b.mp4", "-o", "exists.mp4"], 1, "already exists"),
    (["stitch", "a.mp4", "-o", "out.mp4"], 2, "two clips"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "-t", "crossfade", "--overlap", "1.5"],
     1, "overlap"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "-t", "crossfade", "--overlap", "0"],
     2, "overlap"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "--size", "0x48"], 2, "size"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "--size", "-64x48"], 2, "size"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "--size", "big"], 2, "size"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "--fps", "0"], 2, "fps"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "--fps", "-3"], 2, "fps"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "--crf", "99"], 2, "crf"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "-t", "wipe"], 2, "transition"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.avi"], 2, ".mp4"),
    (["stitch", "a.mp4", "b.mp4", "-o", "out.mp4", "--overlap", "abc"], 2, "overlap"),
    (["stitch", "a.mp4", "b.mp4"], 2, "output"),
    (["inspect", "missing.mp4"], 1, "no such file"),
    (["inspect", "notes.mp4"], 1, "not a video"),
    (["inspect", "cut.mp4"], 1, "truncated"),
    (["inspect", "a.mp4", "--sheet", "nodir/s.png"], 1, "folder"),
    (["inspect", "a.mp4", "--sheet", "s.png", "--gif", "nodir/p.gif"], 1, "folder"),
    (["inspect", "a.mp4", "--gif", "p.png"], 2, ".gif"),
    (["inspect", "text.png"], 1, "not a video or image"),
    (["stitch", "a.mp4", "still.png", "-o", "out.mp4"], 1, "sora animate still.png"),
    (["animate", "text.png", "-o", "out.mp4"], 1, "damaged or not an image file (PNG, JPEG"),
    (["animate", ".", "-o", "out.mp4"], 1, ". is a folder: give an image file in it"),
    (["extend", "a.mp4", "a red ball", "--fit", "stretch", "-o", "out.mp4"], 2, "--fit must be"),
    (["animate", "still.png", "--fit", "stretch", "-o", "out.mp4"], 2, "--fit must be"),
    (["no-such-command"], 2, "no-such-command"),
    # a prompt without quotes, split by the shell: say how to type it
    (["generate", "a", "red", "ball"], 2, "put it in quotes, e.g. sora generate 'a red ball'"),
    (["extend", "a.mp4", "it's", "raining"], 2, 'e.g. sora extend a.mp4 "it\'s raining"'),
]


@pytest.mark.parametrize("args,code,words", BAD, ids=[" ".join(b[0])[:60] for b in BAD])
def test_bad_input_is_one_line_and_leaves_nothing(clips, args, code, words):
    before = sorted(p.name for p in clips.iterdir())
    proc = run_cli(*args, cwd=clips)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert words.lower() in lines[0].lower()
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert sorted(p.name for p in clips.iterdir()) == before  # nothing written, no temp


def test_debug_shows_the_traceback(clips):
    proc = run_cli("--debug", "stitch", "a.mp4", "missing.mp4", "-o", "o.mp4", cwd=clips)
    assert proc.returncode == 1 and "Traceback" in proc.stderr


ENTRY_PROBE = textwrap.dedent("""
    import atexit, sys
    import torch  # as a command that loaded it: the exit skips Python's teardown
    from sora_cli.cli import entry

    atexit.register(lambda: print("exit handlers ran", flush=True))
    sys.argv = ["sora", *sys.argv[1:]]
    entry()
    print("not reached")
""")


@pytest.mark.parametrize("argv, code, stream, text", [
    (["world", "vocab"], 0, "stdout", "beach"),
    (["generate", ""], 2, "stderr", "error: the prompt is empty"),
    (["generate", "a red ball", "--duration", "nope"], 2, "stderr", "error: Invalid value"),
])
def test_the_entry_point_after_torch_keeps_exit_codes_output_and_exit_handlers(argv, code,
                                                                               stream, text):
    proc = subprocess.run([sys.executable, "-c", ENTRY_PROBE, *argv], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert text in getattr(proc, stream)
    assert "exit handlers ran" in proc.stdout and "not reached" not in proc.stdout


def test_a_status_line_shows_while_loading_in_a_terminal_only(monkeypatch):
    # the seconds of imports before the first progress bar get a spinner line in a terminal;
    # a pipe, a log file or --quiet get nothing
    import io

    from rich.console import Console

    from sora_cli import console

    for terminal, quiet, shown in ((True, False, True), (False, False, False), (True, True, False)):
        out = io.StringIO()
        monkeypatch.setattr(console, "_err", Console(file=out, force_terminal=terminal))
        monkeypatch.setattr(console, "_quiet", quiet)
        with console.status("loading model default"):
            pass
        assert ("loading model default" in out.getvalue()) is shown, (terminal, quiet)


def test_an_image_past_the_pixel_limit_is_one_line(tmp_path, monkeypatch):
    # Pillow refuses images of more than twice Image.MAX_IMAGE_PIXELS (a 20000x15000 PNG by
    # default); lowered here so a small real PNG crosses it
    from PIL import Image

    from sora_cli.errors import SoraError
    from sora_cli.generation import read_image

    path = tmp_path / "wide.png"
    Image.new("RGB", (300, 200), (200, 40, 40)).save(path)
    assert read_image(path).shape == (200, 300, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    with pytest.raises(SoraError) as exc:
        read_image(path)
    assert str(exc.value) == (f"{path} has more pixels than images are read with here (about "
                              "0 megapixels): scale it down first")


def test_file_names_with_a_colon_are_files_not_ffmpeg_protocols(tmp_path):
    # ffmpeg reads "ab:" and "pipe:" as protocols; the user means the files of those names
    (tmp_path / "sub").mkdir()
    for name in ("ab:cd.mp4", "pipe:x.mp4", "sub/ab:cd.mp4"):
        ffmpeg_clip(tmp_path / name, seconds=1, fps=10)
    for name in ("ab:cd.mp4", "sub/ab:cd.mp4"):
        shown = run_cli("inspect", "--json", name, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["path"] == name and report["duration"] == pytest.approx(1.0, abs=0.1)
    for how in ([], ["--size", "80x48"]):   # a stream copy, and a re-encode through a graph
        joined = run_cli("stitch", "ab:cd.mp4", "pipe:x.mp4", *how, "-o", "out:put.mp4", "-y",
                         cwd=tmp_path)
        assert joined.returncode == 0, joined.stderr
        assert joined.stdout.startswith("out:put.mp4 "), joined.stdout
        checked = run_cli("inspect", "--json", "--verify", "out:put.mp4", cwd=tmp_path)
        assert checked.returncode == 0, checked.stderr
        report = json.loads(checked.stdout)
        assert report["duration"] == pytest.approx(2.0, abs=0.1), how
    # the concat listing quotes names: a ' in one must not end its line early
    ffmpeg_clip(tmp_path / "it's:q.mp4", seconds=1, fps=10)
    joined = run_cli("stitch", "it's:q.mp4", "sub/ab:cd.mp4", "-o", "sub/o'k:1.mp4",
                     cwd=tmp_path)
    assert joined.returncode == 0, joined.stderr
    assert joined.stdout.startswith("sub/o'k:1.mp4 ") and "(2.00 s)" in joined.stdout


def test_user_text_is_printed_as_given_not_as_emoji_or_markup(tmp_path, capsys, monkeypatch):
    name = ":fire: [bold]x[/bold].mp4"
    proc = run_cli("inspect", name, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: no such file: {name}", proc.stderr

    from sora_cli import console

    monkeypatch.setattr(console, "_quiet", False)
    console.warn("t/[red]clips[/red] :fire: has no clips")
    console.log("reading [bold]x[/bold]")
    err = capsys.readouterr().err
    assert "warning: t/[red]clips[/red] :fire: has no clips\n" in err
    assert "reading [bold]x[/bold]\n" in err


def _shell(command: str, cwd) -> subprocess.CompletedProcess:
    """`sora` inside a shell line, for what only a shell sets up: closed or full streams, pipes."""
    sora_cmd = f"{sys.executable} -m sora_cli"
    return subprocess.run(["bash", "-c", command.replace("sora ", sora_cmd + " ", 1)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_closed_or_full_standard_streams_are_no_traceback(tmp_path):
    # stdout closed by the caller: the result has nowhere to go, the command still succeeds
    r = _shell("sora check 'a red ball on a beach' >&-", tmp_path)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    # stderr closed, or full: a message that cannot be shown is no failure of the command
    r = _shell("sora check 'a red ball on a beach' 2>&-", tmp_path)
    assert (r.returncode, r.stdout) == (0, "allowed\n")
    # (an error line that cannot be shown still sets the exit code)
    r = _shell("sora check 'a red ball on a beach' --policy nowhere.json 2>/dev/full; echo $?",
               tmp_path)
    assert r.stdout == "1\n"
    # a result that cannot be written is the command's failure, in one line
    r = _shell("sora check 'a red ball on a beach' >/dev/full", tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == ["error: cannot write the result to standard output: "
                                     "No space left on device"]


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path):
    (tmp_path / "many.txt").write_text("".join(f"a red ball number {i}\n" for i in range(5000)))
    r = _shell("sora check --file many.txt | head -1; echo ${PIPESTATUS[0]}", tmp_path)
    # as a tool killed by SIGPIPE: 128 + 13, nothing on stderr
    assert r.stdout.splitlines() == ["allowed\ta red ball number 0", "141"]
    assert r.stderr == ""


def test_a_storyboard_from_a_pipe_needs_a_name_for_its_video(tmp_path):
    # its default name is the file's with .mp4: /dev/stdin.mp4 was written into /dev, and
    # bash's <(...) failed only after the whole film was drawn
    for source in ("/dev/stdin", "<(printf '1: a red ball bouncing on a beach\\n')", "-"):
        r = _shell(f"printf '1: a red ball bouncing on a beach\\n' | sora story {source}",
                   tmp_path)
        assert r.returncode == 2, r.stderr
        name = "/dev/fd/" if source.startswith("<") else source
        assert r.stderr.startswith(f"error: a storyboard read from stdin or a pipe ({name}")
        assert r.stderr.endswith("needs -o to name the video\n")
    assert list(tmp_path.iterdir()) == []


def test_a_video_or_image_from_a_pipe_is_refused_in_one_line(tmp_path):
    # a video is read more than once (probe, then frames): a pipe read "empty (0 bytes)"
    clip = ffmpeg_clip(tmp_path / "c.mp4", seconds=0.5)
    cases = {"cat c.mp4 | sora extend /dev/stdin -o x.mp4": "/dev/stdin is a pipe or a device",
             "sora inspect <(cat c.mp4)": "/dev/fd/",
             "cat c.mp4 | sora inspect -": "videos are not read from stdin (-)",
             "cat c.mp4 | sora stitch - c.mp4 -o s.mp4": "videos are not read from stdin (-)",
             "sora animate - -o a.mp4": "- is stdin, a pipe or a device"}
    for command, words in cases.items():
        r = _shell(command, tmp_path)
        assert r.returncode == 1 and r.stderr.startswith("error: "), (command, r.stderr)
        assert words in r.stderr and len(r.stderr.splitlines()) == 1, (command, r.stderr)
    assert [p.name for p in tmp_path.iterdir()] == [clip.name]


def test_check_dash_reads_the_prompts_from_stdin(tmp_path):
    # it screened the text "-" and said "allowed", whatever came on stdin
    r = _shell("echo 'a naked person on a beach' | sora check -", tmp_path)
    assert r.returncode == 1 and r.stdout.startswith("refused (sexual)"), r.stdout
    r = _shell("echo 'a red ball on a beach' | sora check - --json", tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["allowed"] == 1
