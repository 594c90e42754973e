"""`sora batch` with the tiny real bundle: rows that fail alone, files it may and may not
replace, resuming after the flags changed, the manifest kept current, CSV job files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sora_cli.video_io import probe

FAST = ["--steps", "2", "--no-credentials"]
ENV = {"OMP_NUM_THREADS": "1"}


def rows_of(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]


def jsonl(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_row_with_an_absolute_output_fails_alone(sora, tiny_bundle, tmp_path):
    outside = tmp_path / "abs.mp4"
    jobs = jsonl(tmp_path / "j.jsonl",
                 {"prompt": "a red ball", "duration": 0.5, "output": "a.mp4"},
                 {"prompt": "a red ball", "duration": 0.5, "output": str(outside)},
                 {"prompt": "a blue ball", "duration": 0.5})
    out = tmp_path / "out"
    r = sora("batch", jobs, "-o", out, "--model", tiny_bundle, *FAST, env=ENV)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    rows = rows_of(out)
    assert [row["status"] for row in rows] == ["done", "failed", "done"]
    assert "inside the batch folder" in rows[1]["error"] and rows[1]["output"] is None
    assert not outside.exists()
    assert probe(out / "0003-a-blue-ball-s2.mp4").frames == 4


def test_files_the_batch_did_not_make_are_replaced_only_with_y(sora, tiny_bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "ball.mp4").write_bytes(b"mine")                  # a row's own output name
    (out / "0002-a-blue-ball-s1.mp4").write_bytes(b"mine too")  # a default name
    jobs = jsonl(tmp_path / "j.jsonl",
                 {"prompt": "a red ball", "duration": 0.5, "output": "ball.mp4"},
                 {"prompt": "a blue ball", "duration": 0.5})
    cmd = ["batch", jobs, "-o", out, "--model", tiny_bundle, *FAST]
    r = sora(*cmd, env=ENV)
    assert r.returncode == 1, r.stderr
    assert [row["error"] for row in rows_of(out)] == [
        "ball.mp4 exists (use -y to replace it)",
        "0002-a-blue-ball-s1.mp4 exists (use -y to replace it)"]
    assert (out / "ball.mp4").read_bytes() == b"mine"
    assert (out / "0002-a-blue-ball-s1.mp4").read_bytes() == b"mine too"
    r = sora(*cmd, "-y", env=ENV)
    assert r.returncode == 0, r.stderr
    assert probe(out / "ball.mp4").frames == probe(out / "0002-a-blue-ball-s1.mp4").frames == 4


def test_changed_flags_remake_the_items_and_replace_the_batchs_own_files(sora, tiny_bundle,
                                                                         tmp_path):
    jobs = tmp_path / "p.txt"
    jobs.write_text("a red ball\na blue ball\n")
    out = tmp_path / "out"

    def run(*flags):
        r = sora("batch", jobs, "-o", out, "--model", tiny_bundle, "--json", *FAST, *flags,
                 env=ENV)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert run("-d", "0.5", "--seed", "5")["done"] == 2
    first = [row["id"] for row in rows_of(out)]
    # same names (the seed is unchanged): the batch's own videos are remade in place
    summary = run("-d", "1", "--seed", "5")
    assert (summary["done"], summary["skipped"], summary["failed"]) == (2, 0, 0)
    rows = rows_of(out)
    assert [row["output"] for row in rows] == ["0001-a-red-ball-s5.mp4",
                                               "0002-a-blue-ball-s6.mp4"]
    assert all(probe(out / row["output"]).frames == 8 for row in rows)
    assert not set(first) & {row["id"] for row in rows}
    summary = run("-d", "1", "--seed", "9")
    assert summary["done"] == 2 and probe(out / "0002-a-blue-ball-s10.mp4").sora["seed"] == 10
    summary = run("-d", "1", "--seed", "9")
    assert (summary["done"], summary["skipped"]) == (0, 2)


def test_rows_with_values_of_the_wrong_type_fail_alone_in_one_line(sora, tiny_bundle, tmp_path):
    from sora_cli.batch import parse_jobs

    rows = [{"prompt": "a red ball", "steps": 2.5},
            {"prompt": "a red ball", "steps": "12"},
            {"prompt": "a red ball", "guidance": "abc"},
            {"prompt": "a red ball", "size": 256},
            {"prompt": "a red ball", "literal": "no"},
            {"prompt": "a red ball", "seed": True},
            {"prompt": "a red ball", "negative": None},
            {"prompt": "a red ball", "duration": 1, "seconds": 2},
            {"prompt": "a red ball", "seed": -3},          # the right type, out of range
            {"prompt": "a red ball", "size": "1x1"},
            {"prompt": "a red ball", "steps": 1.0, "duration": 0.5, "literal": False}]
    items = parse_jobs("\n".join(json.dumps(r) for r in rows))
    assert [item.error for item in items[:8]] == [
        'line 1: "steps" must be a whole number (got 2.5)',
        'line 2: "steps" must be a whole number (got "12")',
        'line 3: "guidance" must be a number (got "abc")',
        'line 4: "size" must be a string such as "256x256" (got 256)',
        'line 5: "literal" must be true or false (got "no")',
        'line 6: "seed" must be a whole number (got true)',
        'line 7: "negative" must be a string (got null)',
        'line 8: give "duration" or "seconds", not both']
    assert items[10].error is None and items[10].options["steps"] == 1

    out = tmp_path / "out"
    r = sora("batch", jsonl(tmp_path / "j.jsonl", *rows), "-o", out, "--model", tiny_bundle,
             *FAST, env=ENV)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    made = rows_of(out)
    assert [row["status"] for row in made] == ["failed"] * 10 + ["done"]
    assert all("\n" not in row["error"] for row in made[:10])
    # range checks shared with the flags name the row's key and line, not the flag
    assert made[8]["error"] == 'line 9: "seed" must be an integer from 0 to 2**63 - 1, got -3'
    assert made[9]["error"].startswith('line 10: "size" must be between 16 and 4096')
    assert probe(out / made[10]["output"]).sora["steps"] == 1


def test_manifest_jsonl_is_current_as_each_item_finishes(tiny_bundle, tmp_path):
    from sora_cli.generation import GenerateOptions, batch

    jobs = tmp_path / "p.txt"
    jobs.write_text("a red ball\na blue ball\n")
    out = tmp_path / "out"
    seen = []

    def on_item(item, row):
        seen.append([(r["index"], r["status"]) for r in rows_of(out)])

    opts = GenerateOptions(duration=0.5, steps=2, credentials=False, model=str(tiny_bundle),
                           device="cpu")
    batch(jobs, out, opts, on_item=on_item)
    assert seen == [[(0, "done")], [(0, "done"), (1, "done")]]
    assert not list(out.glob("manifest.rank*"))


def test_a_video_that_landed_just_before_a_kill_is_the_batchs_own(tmp_path):
    # The item is logged as started before it runs; killed after its file was renamed into
    # place but before its row was written, the re-run may still replace that file.
    from sora_cli.batch import made_outputs, parse_jobs, run_batch

    items = parse_jobs("a red ball\na blue ball\n")
    out = tmp_path / "out"

    def write_then_killed(item, seed, output):
        output.write_bytes(b"first run")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(items, out, write_then_killed)
    assert made_outputs(out) == {"0001-a-red-ball-s0.mp4"}
    (out / "0002-a-blue-ball-s1.mp4").write_bytes(b"the user's")

    def write(item, seed, output):
        output.write_bytes(b"second run")
        return {"duration": 0.5}

    summary = run_batch(items, out, write)
    assert (summary.done, summary.failed) == (1, 1)
    assert (out / "0001-a-red-ball-s0.mp4").read_bytes() == b"second run"
    assert (out / "0002-a-blue-ball-s1.mp4").read_bytes() == b"the user's"


def test_a_killed_rerun_with_new_flags_still_knows_the_earlier_runs_files(tmp_path):
    # Run 2 (new settings, same file names) is killed after its first item; manifest.jsonl,
    # rewritten after that item, must still list run 1's second video so run 3 remakes it.
    from sora_cli.batch import parse_jobs, run_batch

    out = tmp_path / "out"

    def items(settings):
        jobs = parse_jobs("a red ball\na blue ball\n")
        for item in jobs:
            item.settings = settings
        return jobs

    def write(label):
        def run_item(item, seed, output):
            if label == "killed" and item.index == 1:
                raise KeyboardInterrupt
            output.write_bytes(label.encode())
            return {"duration": 1}
        return run_item

    old, new = items({"duration": 0.5}), items({"duration": 1.0})
    assert run_batch(old, out, write("first")).done == 2
    with pytest.raises(KeyboardInterrupt):
        run_batch(new, out, write("killed"))
    assert [r["id"] for r in rows_of(out)] == [new[0].id, old[1].id]
    summary = run_batch(items({"duration": 1.0}), out, write("third"))
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, 0)
    assert (out / "0002-a-blue-ball-s1.mp4").read_bytes() == b"third"
    assert [r["status"] for r in rows_of(out)] == ["done", "done"]


@pytest.mark.parametrize("name, text", [
    ("jobs.csv", "a red ball\na blue ball\n"),                 # named .csv
    ("jobs.txt", "# made in a spreadsheet\nprompt,duration\na red ball,2\n"),
    ("jobs.txt", '"prompt";"seed"\n"a red ball";3\n'),
])
def test_csv_job_files_are_refused_with_a_hint(sora, tmp_path, name, text):
    from sora_cli.batch import read_jobs
    from sora_cli.errors import SoraError

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SoraError, match="looks like CSV.*JSON rows"):
        read_jobs(path)
    r = sora("batch", path, "-o", tmp_path / "out")
    assert r.returncode == 1 and r.stderr == f"error: {path} looks like CSV, which batch " \
        "does not read (its header line would become a prompt); give one prompt a line, or " \
        'JSON rows such as {"prompt": "a red ball", "duration": 2}\n', r.stderr
    assert not (tmp_path / "out").exists()
    if not name.endswith(".csv"):  # a header is found on stdin too
        r = sora("batch", "-", "-o", tmp_path / "out", input=text)
        assert r.returncode == 1 and r.stderr.startswith("error: <stdin> looks like CSV")


def test_a_prompt_that_mentions_prompt_is_not_csv():
    from sora_cli.batch import parse_jobs, _looks_like_csv

    text = "prompt, a red ball on a beach\n"
    assert not _looks_like_csv("jobs.txt", text) and len(parse_jobs(text)) == 1


def test_a_batch_under_a_real_two_process_torchrun_shares_the_items_and_one_manifest(
        tiny_bundle, tmp_path):
    import os
    import subprocess
    import sys

    jobs = tmp_path / "p.txt"
    jobs.write_text("a red ball\na blue ball\na green ball\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **ENV}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "sora_cli", "batch", str(jobs), "-o", str(out), "--model", str(tiny_bundle),
           "--duration", "0.5", "--device", "cpu", *FAST]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    rows = rows_of(out)
    # rank r takes items r, r + 2, ...; rank 0 reports the whole batch
    assert [(r["index"], r["status"], r["rank"]) for r in rows] == \
        [(0, "done", 0), (1, "done", 1), (2, "done", 0)]
    assert all(probe(out / r["output"]).sora["prompt"] == r["prompt"] for r in rows)
    assert "3 done, 0 already done" in p.stdout and not list(out.glob("manifest.rank*"))
    assert not (out / ".manifest.lock").exists()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0 and "0 done, 3 already done" in p.stdout, p.stdout
    # while another batch holds the folder, no rank starts: rank 1 took its own lock before
    from sora_cli.batch import RUNNING, _lock

    held, _ = _lock(out / RUNNING)
    try:
        (out / "0002-a-blue-ball-s1.mp4").unlink()     # work that a running rank would redo
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    finally:
        held.close()
    assert p.returncode != 0
    assert p.stderr.count(f"error: another sora batch is running in {out} (process "
                          f"{os.getpid()})") == 2, p.stderr
    assert not (out / "0002-a-blue-ball-s1.mp4").exists()


def test_every_rank_brings_manifest_jsonl_up_to_date_as_its_items_finish(tmp_path):
    # rank 1 of 2, alone here: what it finishes shows in manifest.jsonl at once, beside what
    # rank 0 has logged so far, without waiting for rank 0's merge at the end
    import numpy as np

    from sora_cli.batch import parse_jobs, run_batch
    from sora_cli.video_io import write_video

    items = parse_jobs("one\ntwo\nthree\nfour\n")
    out = tmp_path / "out"
    out.mkdir()
    rank0 = {"id": items[0].id, "index": 0, "output": "zero.mp4", "status": "done",
             "finished_at": 1.0, "rank": 0}
    (out / "manifest.rank0.jsonl").write_text(json.dumps(rank0) + "\n")
    write_video(out / "zero.mp4", np.zeros((2, 64, 64, 3), np.uint8), 8)

    def run_item(item, seed, path):
        write_video(path, np.full((2, 64, 64, 3), 40 * item.index, np.uint8), 8)
        return {"duration": 0.25}

    seen = []
    run_batch(items, out, run_item, rank=1, world_size=2,
              on_item=lambda item, row: seen.append([(r["index"], r["rank"])
                                                     for r in rows_of(out)]))
    assert seen == [[(0, 0), (1, 1)], [(0, 0), (1, 1), (3, 1)]]
    assert (out / "manifest.rank1.jsonl").exists()   # merged for good by rank 0 alone


def _writer(label: str):
    def run_item(item, seed, output):
        output.write_bytes(f"{label} {item.prompt} {seed}".encode())
        return {"duration": 1}
    return run_item


def test_a_row_inserted_above_done_ones_does_not_make_them_again(tmp_path):
    # Items were known by their position: one row added at the top of a job file made every
    # row again. Rows with their own seed are the same videos wherever they stand.
    from sora_cli.batch import parse_jobs, run_batch

    out = tmp_path / "out"
    first = ['{"prompt": "a red ball", "seed": 5}', '{"prompt": "a blue car", "seed": 7}',
             '{"prompt": "a blue car", "seed": 7}']        # the same video twice: two items
    assert run_batch(parse_jobs("\n".join(first)), out, _writer("one")).done == 3
    made = {r["output"]: (out / r["output"]).read_bytes() for r in rows_of(out)}
    assert sorted(made) == ["0001-a-red-ball-s5.mp4", "0002-a-blue-car-s7.mp4",
                            "0003-a-blue-car-s7.mp4"]
    # above them: another red ball of seed 5 (a longer one) whose default name is the first's
    moved = parse_jobs("\n".join(['{"prompt": "a red ball", "seed": 5, "duration": 2}',
                                  *first]))
    summary = run_batch(moved, out, _writer("two"))
    assert (summary.done, summary.skipped) == (1, 3)
    rows = rows_of(out)
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["output"] for r in rows] == ["0001-a-red-ball-s5-2.mp4", *made]
    assert all((out / name).read_bytes() == data for name, data in made.items())
    assert (out / "0001-a-red-ball-s5-2.mp4").read_bytes() == b"two a red ball 5"
    # a prompt list's item takes its seed from its place: moved, it is another video
    assert run_batch(parse_jobs("a green fish\na red ball"), tmp_path / "p",
                     _writer("one")).done == 2
    summary = run_batch(parse_jobs("a red ball\na green fish"), tmp_path / "p", _writer("two"))
    assert (summary.done, summary.skipped) == (2, 0)


def test_a_second_batch_on_the_same_folder_is_refused_while_one_runs(tmp_path):
    # Two at once made the same videos twice, failed them as existing files, and left a
    # manifest saying "failed" for every good video, which each later run repeated.
    from sora_cli.batch import parse_jobs, run_batch
    from sora_cli.errors import SoraError

    out = tmp_path / "out"
    errors = []

    def start_another(item, seed, output):
        try:
            run_batch(parse_jobs("a red ball"), out, _writer("two"))
        except SoraError as exc:
            errors.append(str(exc))
        return _writer("one")(item, seed, output)

    assert run_batch(parse_jobs("a red ball"), out, start_another).done == 1
    assert errors == [f"another sora batch is running in {out} (process {os.getpid()}): "
                      "wait for it to end, or give another --out-dir"]
    assert run_batch(parse_jobs("a red ball"), out, _writer("three")).skipped == 1
    assert sorted(p.name for p in out.iterdir()) == ["0001-a-red-ball-s0.mp4", "manifest.jsonl"]


def test_rows_that_are_json_but_not_objects_and_control_characters_in_names(tmp_path):
    from sora_cli.batch import parse_jobs, run_batch

    items = parse_jobs('"a red ball"\n["a blue ball"]\n"Stop!" said the ball\n'
                       '{"prompt": "a cyan star", "output": "a\\u0000b.mp4"}\n'
                       '{"prompt": "a pink fish", "seed": 6, "steps": 2.5}\n')
    assert [i.prompt for i in items[::2]] == ["a red ball", '"Stop!" said the ball',
                                              "a pink fish"]
    assert items[1].error == ('line 2: a JSON row must be an object such as '
                              '{"prompt": "a red ball"}')
    assert items[3].error == 'line 4: output "a\\u0000b.mp4" holds a control character'
    run_batch(items, tmp_path / "out", _writer("one"))
    rows = rows_of(tmp_path / "out")
    assert [r["status"] for r in rows] == ["done", "failed", "done", "failed", "failed"]
    assert rows[4]["seed"] == 6      # the row's own, though the row failed
    # a row's folder that is a file is the row's fault, not -o's
    run_batch(parse_jobs('{"prompt": "a", "output": "f.mp4"}\n'
                         '{"prompt": "b", "output": "f.mp4/b.mp4"}'), tmp_path / "o", _writer("x"))
    assert rows_of(tmp_path / "o")[1]["error"] == f"{tmp_path / 'o' / 'f.mp4'} is a file, not a folder"


def test_a_rerun_counts_refused_items_as_refused(tmp_path):
    from sora_cli.batch import parse_jobs, run_batch
    from sora_cli.guard import check_prompt

    def guarded(item, seed, output):
        check_prompt(item.prompt)
        return _writer("one")(item, seed, output)

    jobs = "a red ball\na graphic beheading with gore\n"
    summary = run_batch(parse_jobs(jobs), tmp_path, guarded)
    assert (summary.done, summary.refused) == (1, 1)
    summary = run_batch(parse_jobs(jobs), tmp_path, guarded)
    assert (summary.done, summary.skipped, summary.refused) == (0, 1, 1)


def test_manifest_text_is_written_as_it_is(tmp_path):
    from sora_cli.batch import parse_jobs, run_batch

    run_batch(parse_jobs("a red ball at the café\u2028on a beach\n"), tmp_path, _writer("one"))
    text = (tmp_path / "manifest.jsonl").read_text(encoding="utf-8")
    assert "café" in text and text.count("\n") == 1
    assert run_batch(parse_jobs("a red ball at the café\u2028on a beach\n"), tmp_path,
                     _writer("two")).skipped == 1


def test_a_folder_made_before_the_upgrade_is_not_made_again(tmp_path):
    # an older sora-cli named an item "NNNNN-" + 8 hex digits of the same hash
    from sora_cli.batch import number_repeats, parse_jobs, run_batch

    def jobs():
        items = parse_jobs("a red ball\na blue car\na red ball\n")
        for item in items:   # the two red balls are the same video: two items of one id
            item.settings = {"seed": 7, "duration": 1.0}
        return items

    out = tmp_path / "out"
    assert run_batch(jobs(), out, _writer("one")).done == 3
    rows = rows_of(out)
    for row in rows:
        row["id"] = f"{row['index']:05d}-{row['id'][:8]}"
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run_batch(jobs(), out, _writer("two"))
    assert (summary.done, summary.skipped) == (0, 3)
    expected = jobs()
    number_repeats(expected)
    assert [r["id"] for r in rows_of(out)] == [i.id for i in expected]
    assert len({r["output"] for r in rows_of(out)}) == 3


def test_a_row_moved_by_an_insertion_is_listed_once_while_the_rest_is_made(tmp_path):
    # the manifest kept an earlier video at its old place as well: the cube twice
    from sora_cli.batch import parse_jobs, run_batch

    out = tmp_path / "out"
    first = ['{"prompt": "a red ball", "seed": 1}', '{"prompt": "a blue cube", "seed": 2}']
    run_batch(parse_jobs("\n".join(first)), out, _writer("one"))
    moved = parse_jobs("\n".join(['{"prompt": "a green fish", "seed": 3}',
                                  '{"prompt": "a white bird", "seed": 4}', *first]))

    def killed_at_the_bird(item, seed, output):
        if "bird" in item.prompt:
            raise KeyboardInterrupt
        return _writer("two")(item, seed, output)

    with pytest.raises(KeyboardInterrupt):
        run_batch(moved, out, killed_at_the_bird)
    rows = rows_of(out)
    assert [(r["index"], r["prompt"]) for r in rows] == [
        (0, "a green fish"), (2, "a red ball"), (3, "a blue cube")]


def test_half_a_surrogate_pair_fails_its_row_alone(tmp_path):
    # written as it is, it stopped the whole batch with a UnicodeEncodeError
    from sora_cli.batch import _json, parse_jobs, run_batch

    items = parse_jobs('{"prompt": "a red ball \\ud800", "seed": 3}\n"a cube \\udfff"\n'
                       '{"prompt": "a blue car", "negative": "\\ud800"}\na green fish\n')
    assert [i.error for i in items] == [
        'line 1: "prompt" holds half of a UTF-16 pair, not a character',
        "line 2: the prompt holds half of a UTF-16 pair, not a character",
        'line 3: "negative" holds half of a UTF-16 pair, not a character', None]
    summary = run_batch(items, tmp_path, _writer("one"))
    assert (summary.done, summary.failed) == (1, 3)
    assert _json({"prompt": "caf\u00e9 \ud800"}) == '{"prompt": "caf\\u00e9 \\ud800"}'


def test_another_jobs_videos_in_the_folder_are_said_to_leave_the_manifest(tmp_path, capsys):
    # a second job file into the same folder took the first one's videos off the manifest in
    # silence, and a re-run of the first then failed every item as an existing file
    from sora_cli.batch import parse_jobs, run_batch

    run_batch(parse_jobs("a red ball\na blue car"), tmp_path, _writer("one"))
    run_batch(parse_jobs("a red ball\na blue car"), tmp_path, _writer("one"))
    assert "warning" not in capsys.readouterr().err
    run_batch(parse_jobs("a red ball\na green fish"), tmp_path, _writer("two"))
    err = " ".join(capsys.readouterr().err.split())
    assert f"1 video in {tmp_path} that an earlier run made is not an item of this job" in err


def test_a_lock_that_cannot_be_opened_is_one_line(tmp_path):
    from sora_cli.batch import parse_jobs, run_batch
    from sora_cli.errors import SoraError

    (tmp_path / ".batch.lock").mkdir()     # as another user's lock file in a shared folder
    with pytest.raises(SoraError, match=r"^cannot open the batch lock .*\.batch\.lock \("):
        run_batch(parse_jobs("a red ball"), tmp_path, _writer("one"))
