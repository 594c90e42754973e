"""Generation speed and memory: real-time factor, peak memory, a per-stage profile, the DiT's
share of this CPU's matmul peak, and `sora --help` start-up time.

    python benchmarks/generate.py                       # models/default, 4 s, 10 s and 60 s
    python benchmarks/generate.py --model tiny --lengths 4 10 60 --steps 2

Every figure is measured in this run:
- per length, a fresh process loads the bundle and makes one video exactly as
  `sora generate` does (watermark, H.264, C2PA signing); real-time factor = generation wall
  seconds / video seconds (model loading reported apart), peak memory = that process's
  ru_maxrss. The 60 s / 10 s memory ratio shows whether long videos stream (target <= 1.2);
- a profile of one 4 s generation, timing the pipeline's stages from the outside (each stage's
  own time, nested stages subtracted);
- the DiT's FLOP rate (FLOPs counted with torch's FlopCounterMode on the very inputs the
  sampler fed it, over the measured forward time) against the fp32 matmul peak of this CPU,
  measured with a large matmul at the same thread count;
- `sora --help` wall time, the median of several runs, and what leaving without Python's
  teardown saves a command that loaded torch (`sora models`, with and without it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from functools import wraps
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "a red ball bouncing on a beach"


# -- the bundle ------------------------------------------------------------------------------

def resolve_model(model: str, explicit: bool, scratch: Path) -> tuple[str, str]:
    """(model to use, note). A missing default bundle falls back to a random-weight tiny one
    so the benchmark's plumbing still runs; an explicitly named one that is missing is an error."""
    from sora_cli.bundle import find_bundle
    from sora_cli.errors import SoraError

    try:
        return str(find_bundle(model)), ""
    except SoraError as exc:
        if explicit:
            sys.exit(f"error: {exc}")
        note = (f"NOTE: bundle '{model}' not found ({exc}); benchmarking a random-weight tiny "
                f"bundle (64x64 px) instead: its figures test the plumbing, not the default "
                f"model. Pass --model NAME|FOLDER for a real one.")
        return str(tiny_random_bundle(scratch / "tiny")), note


def tiny_random_bundle(folder: Path) -> Path:
    import torch

    from sora_cli.bundle import BundleConfig, export_bundle
    from sora_cli.nn.dit import DiT, DiTConfig
    from sora_cli.nn.text import TextEncoder, build_clip, tiny_text_config
    from sora_cli.nn.vae import VAEConfig, VideoVAE

    torch.manual_seed(0)
    vae = VideoVAE(VAEConfig(z_channels=8, channels=(8, 16, 32), temporal_channels=32))
    tcfg = tiny_text_config()
    text = TextEncoder(build_clip(tcfg), tcfg)
    dit = DiT(DiTConfig(in_channels=8, width=64, depth=2, heads=2, text_dim=tcfg.width,
                        pooled_dim=tcfg.embed_dim))
    cfg = BundleConfig(name="tiny-random", fps=8, frame_size=(64, 64), clip_frames=17)
    return Path(export_bundle(folder, vae, text, dit, cfg))


# -- one length in a fresh process -----------------------------------------------------------

def child(args) -> None:
    """Runs in its own process: load, generate one video, report times and peak memory."""
    t0 = time.perf_counter()
    from sora_cli import console
    from sora_cli.generation import GenerateOptions, generate, load_pipeline

    console.set_quiet(True)
    t1 = time.perf_counter()
    opts = GenerateOptions(duration=args.child, seed=0, steps=args.steps, model=args.model,
                           device=args.device, overwrite=True)
    pipe = load_pipeline(opts)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        res = generate(args.prompt, Path(tmp) / "out.mp4", opts, pipe=pipe)[0]
    t3 = time.perf_counter()
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"length": args.child, "import_s": t1 - t0, "load_s": t2 - t1,
                      "generate_s": t3 - t2, "video_s": res["duration"], "frames": res["frames"],
                      "size": f"{res['width']}x{res['height']}", "steps": pipe.settings.steps,
                      "maxrss_mb": me}))


def run_length(args, length: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(length),
           "--model", args.model, "--device", args.device, "--prompt", args.prompt]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"error: the {length:g} s run failed:\n{r.stderr.strip()[-2000:]}")
    row = json.loads(r.stdout.strip().splitlines()[-1])
    row["process_s"] = wall
    return row


# -- per-stage profile -----------------------------------------------------------------------

class Profiler:
    """Inclusive and exclusive (own) time per stage; stages nest on a stack."""

    def __init__(self):
        self.own = defaultdict(float)
        self.total = defaultdict(float)
        self.calls = defaultdict(int)
        self.stack: list[list] = []
        self.sync = lambda: None  # torch.cuda.synchronize on a GPU: kernels run async

    def enter(self, name: str) -> None:
        self.sync()
        self.stack.append([name, time.perf_counter(), 0.0])

    def exit(self, name: str) -> None:
        self.sync()
        top, t0, nested = self.stack.pop()
        assert top == name, (top, name)
        took = time.perf_counter() - t0
        self.total[name] += took
        self.own[name] += took - nested
        self.calls[name] += 1
        if self.stack:
            self.stack[-1][2] += took

    def wrap(self, name: str, fn):
        @wraps(fn)
        def timed(*a, **k):
            self.enter(name)
            try:
                return fn(*a, **k)
            finally:
                self.exit(name)
        return timed

    def wrap_iter(self, name: str, fn):
        """A generator function whose every step (each next()) is timed as `name`."""
        @wraps(fn)
        def timed(*a, **k):
            self.enter(name)
            try:
                it = iter(fn(*a, **k))
            finally:
                self.exit(name)
            while True:
                self.enter(name)
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    self.exit(name)
                yield item
        return timed


def profile_one(args, seconds: float = 4.0) -> dict:
    """One generation with every stage timed from outside the library."""
    import torch

    import sora_cli.provenance as provenance
    import sora_cli.sampling as sampling
    import sora_cli.video_io as video_io
    import sora_cli.watermark as watermark
    from sora_cli import console
    from sora_cli.generation import GenerateOptions, generate, load_pipeline

    console.set_quiet(True)
    prof = Profiler()
    opts = GenerateOptions(duration=seconds, seed=0, steps=args.steps, model=args.model,
                           device=args.device, overwrite=True)
    t0 = time.perf_counter()
    pipe = load_pipeline(opts)
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        for i in range(args.warmup):
            generate(args.prompt, Path(tmp) / f"warmup{i}.mp4", opts, pipe=pipe)
    pipe._text_cache.clear()  # the profiled run encodes its prompts, as a fresh one does
    if str(pipe.device).startswith("cuda"):
        prof.sync = torch.cuda.synchronize

    saved = (sampling.sample, video_io.write_video, watermark.embed_watermark,
             provenance.make_finalizer)
    sampling.sample = prof.wrap("DiT sampling", sampling.sample)
    video_io.write_video = prof.wrap("encode/write", video_io.write_video)
    watermark.embed_watermark = prof.wrap("watermark", watermark.embed_watermark)

    def make_finalizer(*a, **k):
        return prof.wrap("signing", saved[3](*a, **k))
    provenance.make_finalizer = make_finalizer
    pipe._text = prof.wrap("text encoding", pipe._text)
    pipe.decode_latents = prof.wrap_iter("VAE decode", pipe.decode_latents)

    # DiT forwards: timed by hooks; the inputs of each distinct shape kept for FLOP counting
    shapes: dict[tuple, list] = {}

    def pre(module, a, k):
        key = tuple(tuple(x.shape) for x in a if torch.is_tensor(x))
        if key not in shapes:
            shapes[key] = [a, k, 0]
        shapes[key][2] += 1
        prof.enter("DiT forward")

    def post(module, a, k, out):
        prof.exit("DiT forward")

    dit = pipe.bundle.dit
    # a high-noise expert has the DiT's architecture: its forwards count (and cost) the same
    hooks = [h for m in (dit, pipe.bundle.dit_high) if m is not None
             for h in (m.register_forward_pre_hook(pre, with_kwargs=True),
                       m.register_forward_hook(post, with_kwargs=True))]
    try:
        with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
            prof.enter("total")
            res = generate(args.prompt, Path(tmp) / "out.mp4", opts, pipe=pipe)[0]
            prof.exit("total")
    finally:
        for h in hooks:
            h.remove()
        (sampling.sample, video_io.write_video, watermark.embed_watermark,
         provenance.make_finalizer) = saved

    from torch.utils.flop_counter import FlopCounterMode

    flops = 0
    with torch.no_grad():
        for a, k, count in shapes.values():
            with FlopCounterMode(display=False) as fc:
                dit(*a, **k)
            flops += fc.get_total_flops() * count
    cfg = dit.cfg
    return {"load_s": load_s, "prof": prof, "video_s": res["duration"], "dit_flops": flops,
            "dit_calls": sum(c for _a, _k, c in shapes.values()),
            "dit_inputs": [list(k[0]) for k in shapes],
            "dit_params": sum(p.numel() for p in dit.parameters()),
            "dit_cfg": f"width {cfg.width}, depth {cfg.depth}, heads {cfg.heads}, "
                       f"patch {cfg.patch_size}",
            "dtype": str(next(dit.parameters()).dtype).replace("torch.", ""),
            "steps": pipe.settings.steps, "size": f"{res['width']}x{res['height']}",
            "device": str(pipe.device)}


def matmul_peak(device: str, reps: int = 6) -> tuple[float, str, int]:
    """(FLOP/s, dtype, n): the best of several n x n matmuls in the precision the pipeline
    computes in on `device`: fp32 on CPUs without native bf16 (there bf16 is emulated and
    ~40x slower, and the pipeline stays in fp32), bf16 where it is native."""
    import torch

    from sora_cli.nn.precision import native_bf16

    dtype = torch.bfloat16 if native_bf16(device) else torch.float32
    n = 8192 if device.startswith("cuda") else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.mm(a, b)
    sync()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best, str(dtype).replace("torch.", ""), n


def help_startup(runs: int = 7) -> list[float]:
    script = Path(sys.executable).with_name("sora")
    cmd = [str(script), "--help"] if script.exists() else [sys.executable, "-m", "sora_cli", "--help"]
    subprocess.run(cmd, capture_output=True)  # warm the file cache
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


FULL_TEARDOWN = "from sora_cli.cli import main; main()"


def exit_cost(model: str, runs: int = 3) -> tuple[list[float], list[float]]:
    """Wall seconds of `sora models MODEL` (it loads torch and the bundle) through the entry
    point, which leaves without Python's teardown, and through main(), which tears down: the
    same command, alternating, so the difference is the teardown."""
    fast_cmd = [sys.executable, "-m", "sora_cli", "models", model]
    full_cmd = [sys.executable, "-c", FULL_TEARDOWN, "models", model]
    subprocess.run(fast_cmd, capture_output=True, check=True)  # warm the file cache
    fast, full = [], []
    for _ in range(runs):
        for cmd, times in ((fast_cmd, fast), (full_cmd, full)):
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, check=True)
            times.append(time.perf_counter() - t0)
    return fast, full


# -- report ----------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="bundle name or folder (default: default)")
    ap.add_argument("--lengths", type=float, nargs="+", default=[4.0, 10.0, 60.0],
                    help="video lengths in seconds, one fresh process each (default 4 10 60)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default: model's)")
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto (default auto)")
    ap.add_argument("--prompt", default=PROMPT)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch/OpenMP threads (default: torch's, one per core)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed generations before the profiled one (default 1)")
    ap.add_argument("--help-runs", type=int, default=7, help="runs of `sora --help`")
    ap.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        child(args)
        return

    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    scratch = Path(tempfile.mkdtemp(prefix="sora-bench-model-"))
    args.model, note = resolve_model(args.model or "default", args.model is not None, scratch)
    if note:
        print(note)
    print(f"model {args.model}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    print(f"prompt {args.prompt!r}, steps {args.steps or 'model default'}, device {args.device}")

    print("\n== real-time factor and peak memory (one fresh process per length)")
    print(f"{'video':>7} {'frames':>6} {'size':>9} {'steps':>5} {'load s':>7} "
          f"{'gen s':>7} {'RTF':>6} {'RTF+load':>8} {'peak MB':>8}")
    rows = {}
    for length in args.lengths:
        r = run_length(args, length)
        rows[length] = r
        rtf = r["generate_s"] / r["video_s"]
        cold = (r["import_s"] + r["load_s"] + r["generate_s"]) / r["video_s"]
        print(f"{r['video_s']:>6.1f}s {r['frames']:>6} {r['size']:>9} {r['steps']:>5} "
              f"{r['load_s']:>7.2f} {r['generate_s']:>7.2f} {rtf:>6.2f} {cold:>8.2f} "
              f"{r['maxrss_mb']:>8.0f}", flush=True)
    print("RTF = generation wall s / video s (bundle already loaded); RTF+load adds import and "
          "bundle loading (a one-shot `sora generate`). Target: 4 s clip RTF <= 1.0, aim 0.5.")
    if 10.0 in rows and 60.0 in rows:
        ratio = rows[60.0]["maxrss_mb"] / rows[10.0]["maxrss_mb"]
        print(f"peak memory 60 s / 10 s: {ratio:.3f} (target <= 1.2: "
              f"{'met' if ratio <= 1.2 else 'NOT met'})")

    print(f"\n== profile of one 4 s generation (own time of each stage; after {args.warmup} "
          f"untimed warm-up generation(s) in the same process)")
    p = profile_one(args, 4.0)
    prof = p["prof"]
    total = prof.total["total"]
    print(f"bundle load {p['load_s']:.2f} s (not in the total); {p['size']}, {p['steps']} steps, "
          f"DiT {p['dtype']}")
    stages = ["text encoding", "DiT sampling", "VAE decode", "watermark", "encode/write",
              "signing"]
    accounted = 0.0
    for name in stages:
        own = prof.own[name]
        if name == "DiT sampling":  # the DiT forwards are nested in it: shown on their own line
            own += prof.total["DiT forward"]
        accounted += own
        print(f"  {name:<14} {own:7.3f} s  {100 * own / total:5.1f}%  ({prof.calls[name]} calls)")
        if name == "DiT sampling":
            fw = prof.total["DiT forward"]
            print(f"    DiT forward  {fw:7.3f} s  {100 * fw / total:5.1f}%  "
                  f"({prof.calls['DiT forward']} calls)")
    other = total - accounted
    print(f"  {'other':<14} {other:7.3f} s  {100 * other / total:5.1f}%  (settings, policy, "
          f"latent bookkeeping)")
    print(f"  {'total':<14} {total:7.3f} s  RTF {total / p['video_s']:.2f}")

    peak, peak_dtype, n = matmul_peak(p["device"])
    print(f"\n== DiT share of the {peak_dtype} matmul peak of this {p['device'].upper()}")
    fw = prof.total["DiT forward"]
    achieved = p["dit_flops"] / fw if fw > 0 else 0.0
    print(f"matmul peak ({n}^3 {peak_dtype}, best of 6, {torch.get_num_threads()} threads): "
          f"{peak / 1e9:.1f} GFLOP/s")
    print(f"DiT: {p['dit_cfg']}, {p['dit_params'] / 1e6:.2f} M params; {p['dit_calls']} forwards "
          f"on inputs {p['dit_inputs']}")
    print(f"DiT FLOPs {p['dit_flops'] / 1e9:.2f} GFLOP in {fw:.3f} s = {achieved / 1e9:.1f} "
          f"GFLOP/s = {100 * achieved / peak:.1f}% of the matmul peak")

    print("\n== start-up")
    times = help_startup(args.help_runs)
    print(f"sora --help: median {statistics.median(times) * 1000:.0f} ms over {len(times)} runs "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}; target < 500 ms)")
    fast, full = exit_cost(args.model)
    fast_s, full_s = statistics.median(fast), statistics.median(full)
    print(f"sora models {args.model} (imports torch, loads the bundle): median {fast_s:.2f} s "
          f"through the entry point, {full_s:.2f} s with Python's teardown "
          f"({full_s - fast_s:.2f} s, x{full_s / fast_s:.2f}; "
          f"{len(fast)} runs each, alternating)")
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end (other work on this machine "
          f"slows every figure)")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
