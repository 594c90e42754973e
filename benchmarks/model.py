"""Model throughput at the default sizes, against this machine's measured matmul peaks.

Prints: the bf16 and fp32 matmul peaks (one large matmul each, measured in this run), DiT
forward (the generate shape: 9 latent frames x 64 tokens, batch 2 for CFG) and DiT
training-step throughput (17-frame clips = 5 latent frames) in samples/s, tokens/s and achieved
FLOP/s with their fraction of each peak (FLOPs counted by torch's FlopCounterMode), and VAE
encode / decode throughput in frames/s at 256 px. The models run in the precision training
and generation use (--precision auto: bf16 autocast only where bf16 is native).

    python benchmarks/model.py [--threads N] [--device cpu|cuda] [--precision auto|bf16|fp32]
                               [--train-batch 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def timed(fn, warmup: int = 2, min_time: float = 3.0, min_iters: int = 3) -> float:
    """Median seconds per call of fn() after warmup."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def flops_of(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def matmul_peak(device: str, dtype, n: int = 2048) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def run():
        a @ b
        sync(device)
    return 2 * n ** 3 / timed(run, warmup=1, min_time=2.0, min_iters=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = args.device
    from sora_cli.nn.dit import DiT, DiTConfig
    from sora_cli.nn.vae import VAEConfig, VideoVAE
    from sora_cli.sampling import flow_loss
    from sora_cli.train.loop import native_bf16

    torch.manual_seed(0)
    vcfg, dcfg = VAEConfig(), DiTConfig()
    vae = VideoVAE(vcfg).to(dev).eval()
    dit = DiT(dcfg).to(dev)
    hw = args.size // vcfg.spatial_factor
    tokens_per_frame = (hw // dcfg.patch_size) ** 2
    text_len = 32
    out: dict = {"device": dev, "threads": torch.get_num_threads(),
                 "dit_params_m": round(sum(p.numel() for p in dit.parameters()) / 1e6, 2),
                 "vae_params_m": round(sum(p.numel() for p in vae.parameters()) / 1e6, 2)}
    bf16 = native_bf16(dev) if args.precision == "auto" else args.precision == "bf16"
    out["precision"] = "bf16" if bf16 else "fp32"
    # emulated bf16 (AVX2-only CPUs) is ~30x slower: a smaller matmul keeps this short
    n = 2048 if native_bf16(dev) else 1024
    peak = matmul_peak(dev, torch.bfloat16, n)
    peak32 = matmul_peak(dev, torch.float32)
    out["bf16_matmul_peak_tflops"] = round(peak / 1e12, 4)
    out["fp32_matmul_peak_tflops"] = round(peak32 / 1e12, 4)
    ac = torch.autocast("cuda" if dev.startswith("cuda") else "cpu", dtype=torch.bfloat16,
                        enabled=bf16)

    def cond(b):
        return (torch.randn(b, text_len, dcfg.text_dim, device=dev),
                torch.ones(b, text_len, dtype=torch.bool, device=dev),
                torch.randn(b, dcfg.pooled_dim, device=dev))

    # DiT forward at the generate shape: 4 s at 8 fps = 33 frames = 9 latent frames, CFG batch 2
    tl = 9
    x = torch.randn(2, dcfg.in_channels, tl, hw, hw, device=dev)
    t = torch.rand(2, tl, device=dev)
    tok, mask, pooled = cond(2)
    dit.eval()

    def fwd():
        with torch.no_grad(), ac:
            dit(x, t, tok, mask, pooled)
        sync(dev)
    sec = timed(fwd)
    fl = flops_of(fwd)
    out["dit_forward"] = {"shape": list(x.shape), "ms": round(sec * 1e3, 2),
                          "samples_per_s": round(2 / sec, 2),
                          "tokens_per_s": round(2 * tl * tokens_per_frame / sec),
                          "gflop": round(fl / 1e9, 2), "tflops": round(fl / sec / 1e12, 3),
                          "fraction_of_bf16_peak": round(fl / sec / peak, 3),
                          "fraction_of_fp32_peak": round(fl / sec / peak32, 3)}

    # DiT training step (forward + backward + AdamW) on 17-frame clips = 5 latent frames
    b, tl = args.train_batch, 5
    x0 = torch.randn(b, dcfg.in_channels, tl, hw, hw, device=dev)
    known = torch.zeros(b, tl, dtype=torch.bool, device=dev)
    tok, mask, pooled = cond(b)
    dit.train()
    opt = torch.optim.AdamW(dit.parameters(), lr=1e-4)

    def step():
        with ac:
            loss = flow_loss(dit, x0, (tok, mask, pooled), known)
            loss = loss[0] if isinstance(loss, tuple) else loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(dev)
    sec = timed(step, min_time=4.0)
    fl = flops_of(step)
    out["dit_train_step"] = {"batch": b, "latent_frames": tl, "ms": round(sec * 1e3, 1),
                             "samples_per_s": round(b / sec, 2),
                             "tokens_per_s": round(b * tl * tokens_per_frame / sec),
                             "gflop": round(fl / 1e9, 2), "tflops": round(fl / sec / 1e12, 3),
                             "fraction_of_bf16_peak": round(fl / sec / peak, 3),
                             "fraction_of_fp32_peak": round(fl / sec / peak32, 3)}

    # VAE: encode a 17-frame training clip, decode the 33 frames of a 4 s clip
    clip = torch.rand(1, 3, 17, args.size, args.size, device=dev) * 2 - 1

    def enc():
        with torch.no_grad(), ac:
            vae.encode(clip)
        sync(dev)
    sec = timed(enc)
    out["vae_encode"] = {"frames": 17, "size": args.size, "ms": round(sec * 1e3, 1),
                         "frames_per_s": round(17 / sec, 1)}
    z = torch.randn(1, vcfg.z_channels, 9, hw, hw, device=dev)

    def dec():
        with torch.no_grad(), ac:
            vae.decode(z)
        sync(dev)
    sec = timed(dec)
    fl = flops_of(dec)
    out["vae_decode"] = {"frames": 33, "size": args.size, "ms": round(sec * 1e3, 1),
                         "frames_per_s": round(33 / sec, 1),
                         "fraction_of_bf16_peak": round(fl / sec / peak, 3),
                         "fraction_of_fp32_peak": round(fl / sec / peak32, 3)}

    if args.json:
        print(json.dumps(out))
        return
    def frac(r):
        return (f"{r['fraction_of_bf16_peak']:.1%} of the bf16 peak, "
                f"{r['fraction_of_fp32_peak']:.1%} of the fp32 peak")
    print(f"device {dev}, {out['threads']} threads, models in {out['precision']}; "
          f"DiT {out['dit_params_m']}M params, VAE {out['vae_params_m']}M params")
    print(f"matmul peaks (this run): bf16 {peak / 1e9:.1f} GFLOP/s, fp32 {peak32 / 1e9:.1f} "
          "GFLOP/s")
    f = out["dit_forward"]
    print(f"DiT forward {f['shape']}: {f['ms']:.1f} ms, {f['samples_per_s']} samples/s, "
          f"{f['tokens_per_s']} tokens/s, {f['tflops'] * 1e3:.1f} GFLOP/s = {frac(f)}")
    s = out["dit_train_step"]
    print(f"DiT train step, batch {s['batch']} x {s['latent_frames']} latent frames: "
          f"{s['ms']:.0f} ms, {s['samples_per_s']} samples/s, {s['tokens_per_s']} tokens/s, "
          f"{s['tflops'] * 1e3:.1f} GFLOP/s = {frac(s)}")
    e, d = out["vae_encode"], out["vae_decode"]
    print(f"VAE encode 17 frames at {e['size']}px: {e['ms']:.0f} ms ({e['frames_per_s']} "
          f"frames/s); decode 33 frames: {d['ms']:.0f} ms ({d['frames_per_s']} frames/s, "
          f"{frac(d)})")


if __name__ == "__main__":
    main()
