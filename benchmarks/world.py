"""Rendering speed of the built-in world on ONE core (target: >= 200 frames/s at 256x256).

    python benchmarks/world.py [--clips 60] [--size 256] [--frames 17]

Renders sampled scenes (the training mix: weather, camera moves, two subjects) and prints
frames per second overall, per setting, and for the worst kinds of clip.
"""

from __future__ import annotations

import os

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--frames", type=int, default=17)
    ap.add_argument("--fps", type=float, default=8.0)
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})   # really one core
    except (AttributeError, OSError):
        pass

    from sora_cli.world.captions import make_caption
    from sora_cli.world.render import render_scene
    from sora_cli.world.sampler import sample_scene

    render_scene(sample_scene(0), args.size, 3, args.fps)   # warm-up (imports, caches)
    per_setting = defaultdict(lambda: [0, 0.0])
    per_kind = defaultdict(lambda: [0, 0.0])
    total_t = 0.0
    total_cpu = 0.0
    t_caption = 0.0
    for i in range(args.clips):
        scene = sample_scene(1000 + i)
        t0, c0 = time.perf_counter(), time.process_time()
        render_scene(scene, args.size, args.frames, args.fps)
        dt = time.perf_counter() - t0
        total_cpu += time.process_time() - c0
        t1 = time.perf_counter()
        make_caption(scene, i)
        t_caption += time.perf_counter() - t1
        total_t += dt
        per_setting[scene.setting][0] += args.frames
        per_setting[scene.setting][1] += dt
        kinds = [f"{len(scene.subjects)} subjects"]
        if scene.weather != "none":
            kinds.append(f"weather {scene.weather}")
        if scene.camera != "none":
            kinds.append("zoom" if scene.camera.startswith("zoom") else "pan")
        for k in kinds:
            per_kind[k][0] += args.frames
            per_kind[k][1] += dt
    frames = args.clips * args.frames
    fps = frames / total_t
    print(f"world render, {args.size}x{args.size}, {args.frames} frames/clip, {args.clips} clips, "
          f"1 core: {fps:.0f} frames/s ({1000 / fps:.2f} ms/frame), target 200 -> "
          f"{fps / 200:.2f}x the target")
    # CPU time is what one core spends; it is the fairer figure on a shared machine.
    print(f"by CPU time: {frames / total_cpu:.0f} frames/s ({frames / total_cpu / 200:.2f}x the target)")
    print(f"captions: {1e3 * t_caption / args.clips:.2f} ms each")
    for name, table in (("setting", per_setting), ("kind", per_kind)):
        for key, (n, t) in sorted(table.items(), key=lambda kv: kv[1][0] / kv[1][1]):
            print(f"  {name:<8} {key:<16} {n / t:7.0f} frames/s")


if __name__ == "__main__":
    main()
