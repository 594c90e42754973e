"""Memory of `sora extend` against the size and the length of the clip it extends.

    python benchmarks/extend.py                     # models/default, 1 s added, 12 s sources
    python benchmarks/extend.py --model tiny --seconds 0.5 --source-seconds 30

The clip being extended is read at the model's frame rate and size as it is decoded, and
never held whole (one pass keeps its ends, a second streams it into the output), so a long
full-HD phone clip should cost about what a small one of the same length does, and a long
clip about what a short one does. Every figure is measured in this run: clips are written
with ffmpeg's test source (256x256 at 8 fps, 1920x1080 at 30 fps: 33.75x the pixels a
second, and 256x256 at 8 fps again but `--long-seconds` long), each is extended in a fresh
process exactly as `sora extend` does it (watermark, H.264, C2PA), and that process's peak
memory (ru_maxrss) and wall time are printed, with the ratios. For scale, a clip decoded
whole would take width x height x 3 x frames bytes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLIPS = {"small": ("256x256", 8, False), "full HD": ("1920x1080", 30, False),
         "long": ("256x256", 8, True)}


def child(args) -> None:
    from sora_cli.generation import GenerateOptions, extend

    opts = GenerateOptions(model=args.model, device="cpu", seed=0, steps=args.steps)
    t0 = time.perf_counter()
    res = extend(args.child, "", args.seconds, Path(args.child).with_suffix(".out.mp4"), opts,
                 only_new=False)
    print(json.dumps({"wall_s": time.perf_counter() - t0, "frames": res["frames"],
                      "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def make_clip(path: Path, size: str, fps: int, seconds: float) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi",
                    "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
                    "-pix_fmt", "yuv420p", str(path)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--seconds", type=float, default=1.0, help="Seconds added to each clip.")
    ap.add_argument("--source-seconds", type=float, default=12.0)
    ap.add_argument("--long-seconds", type=float, default=600.0)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        for name, (size, fps, long) in CLIPS.items():
            seconds = args.long_seconds if long else args.source_seconds
            src = Path(tmp) / f"{name.replace(' ', '-')}.mp4"
            make_clip(src, size, fps, seconds)
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(src),
                   "--model", args.model, "--seconds", str(args.seconds)]
            if args.steps:
                cmd += ["--steps", str(args.steps)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows[name] = json.loads(out.stdout.strip().splitlines()[-1])
            w, h = map(int, size.split("x"))
            whole = w * h * 3 * round(fps * seconds) / 2**20
            print(f"{name:8s} {size:>9s} at {fps:2d} fps, {seconds:g} s: peak "
                  f"{rows[name]['maxrss_mb']:7.0f} MB, {rows[name]['wall_s']:6.1f} s "
                  f"({rows[name]['frames']} frames out; decoded whole: {whole:,.0f} MB)")
    ratio = rows["full HD"]["maxrss_mb"] / rows["small"]["maxrss_mb"]
    print(f"peak memory, full HD / small: x{ratio:.2f}; "
          f"time: x{rows['full HD']['wall_s'] / rows['small']['wall_s']:.2f}")
    print(f"peak memory, {args.long_seconds:g} s / {args.source_seconds:g} s: "
          f"x{rows['long']['maxrss_mb'] / rows['small']['maxrss_mb']:.2f}; "
          f"time: x{rows['long']['wall_s'] / rows['small']['wall_s']:.2f}")


if __name__ == "__main__":
    main()
