"""How fast `sora stitch` is next to the bundled ffmpeg's own concat of the same inputs.

    python benchmarks/stitch.py [--seconds 20] [--size 1280x720] [--copies 6] [--repeat 3]

Makes one H.264+AAC clip with ffmpeg's test sources and joins `--copies` of it:
- cut, stream copy: `stitch()` against `ffmpeg -f concat -c copy` (plain, and with
  +faststart, which stitch always writes), ratio = ffmpeg time / stitch time (goal >= 0.9);
- crossfade (a re-encode): frames per second;
- `sora --help` start-up time.
All figures come from this run; each timing is the median of --repeat runs taken in turns.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(fn, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict, repeat: int, before) -> dict[str, float]:
    """Median time of each function, run in turns so that load from other processes on the
    machine falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            before()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--fps", type=float, default=30)
    ap.add_argument("--copies", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    from sora_cli import console
    from sora_cli.edit import stitch
    from sora_cli.video_io import ffmpeg_exe, probe

    console.set_quiet(True)
    ff = ffmpeg_exe()
    with tempfile.TemporaryDirectory(prefix="sora-bench-") as work:
        work = Path(work)
        clip = work / "clip.mp4"
        t0 = time.perf_counter()
        subprocess.run([ff, "-v", "error", "-y",
                        "-f", "lavfi", "-i", f"testsrc2=size={args.size}:rate={args.fps:g}:"
                                             f"duration={args.seconds:g}",
                        "-f", "lavfi", "-i", f"sine=frequency=440:duration={args.seconds:g}",
                        "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23",
                        "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(clip)],
                       check=True)
        info = probe(clip)
        inputs = [clip] * args.copies
        size_mb = clip.stat().st_size * args.copies / 1e6
        print(f"inputs: {args.copies} x {info.duration:g} s {info.width}x{info.height} "
              f"@ {info.fps:g} fps with audio, {size_mb:.1f} MB in all "
              f"(made in {time.perf_counter() - t0:.1f} s)")

        listing = work / "list.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in inputs))
        out = work / "out.mp4"

        def ffmpeg_concat(*extra: str) -> None:
            subprocess.run([ff, "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i",
                            str(listing), "-c", "copy", *extra, str(out)], check=True)

        def sora_cut() -> None:
            stitch(inputs, out, overwrite=True)

        sora_cut()  # warm the page cache and check the result once
        joined = probe(out)
        assert joined.frames == info.frames * args.copies, (joined.frames, info.frames)
        t = interleaved({"plain": ffmpeg_concat,
                         "faststart": lambda: ffmpeg_concat("-movflags", "+faststart"),
                         "sora": sora_cut}, args.repeat, before=lambda: out.unlink(True))
        t_plain, t_fast, t_sora = t["plain"], t["faststart"], t["sora"]
        print(f"cut (stream copy), {joined.frames} frames, {joined.duration:g} s:")
        print(f"  ffmpeg -f concat -c copy               {t_plain * 1000:8.1f} ms")
        print(f"  ffmpeg -f concat -c copy +faststart    {t_fast * 1000:8.1f} ms")
        print(f"  sora stitch (probe, check, +faststart) {t_sora * 1000:8.1f} ms")
        print(f"  speed ratio vs plain concat:      {t_plain / t_sora:.2f}x  (goal >= 0.9x)")
        print(f"  speed ratio vs +faststart concat: {t_fast / t_sora:.2f}x")

        short = work / "short.mp4"
        subprocess.run([ff, "-v", "error", "-y", "-i", str(clip), "-t", "2", "-c", "copy",
                        str(short)], check=True)
        t_x = timed(lambda: stitch([short, short, short], out, transition="crossfade",
                                   overlap=0.5, overwrite=True), 1)
        frames = probe(out).frames
        print(f"crossfade (re-encode) of 3 x 2 s at {info.width}x{info.height}: "
              f"{frames} frames in {t_x:.2f} s = {frames / t_x:.0f} frames/s")

    help_times = []
    for _ in range(5):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sora_cli", "--help"], check=True,
                       capture_output=True)
        help_times.append(time.perf_counter() - t0)
    print(f"sora --help: median {statistics.median(help_times) * 1000:.0f} ms, "
          f"min {min(help_times) * 1000:.0f} ms over 5 runs (goal < 500 ms)")


if __name__ == "__main__":
    main()
