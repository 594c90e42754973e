"""How well and how fast the prompt policy (sora_cli/guard.py) sorts a labelled prompt set.

    python benchmarks/guard.py [--data benchmarks/data/policy_prompts.jsonl] [--policy FILE]
                               [--repeat 5] [--json]

The set is hand-written: ordinary prompts of the built-in world, tricky allowed ones (innocent
uses of risky words: "a red ball shot out of a cannon", "killer whale", "Scunthorpe") and
disallowed ones in every category, many obfuscated (l33t, inserted symbols, spaced letters,
Unicode look-alikes). Prints, all measured in this run:
- false-refusal rate (allowed prompts refused; target <= 2%) and missed-refusal rate (disallowed
  prompts allowed; target 0), and how often a refusal names the labelled category;
- per category: prompts, refused, missed, named another category;
- speed: policy load + compile time, prompts/s (median of --repeat passes, word cache cleared
  before each), and the wall time of one `sora check` in a fresh process.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sora_cli import guard  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "benchmarks/data/policy_prompts.jsonl")
    ap.add_argument("--policy", type=Path, default=None, help="extra user policy file")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines()
            if line.strip()]

    t0 = time.perf_counter()
    extra = [args.policy] if args.policy else None
    policy = guard.load_policy(guard.builtin_policy_path(), extra)  # uncached: a cold load
    load_ms = (time.perf_counter() - t0) * 1e3

    verdicts = [policy.screen(r["prompt"]) for r in rows]
    allowed_rows = [(r, v) for r, v in zip(rows, verdicts) if r["allowed"]]
    refused_rows = [(r, v) for r, v in zip(rows, verdicts) if not r["allowed"]]
    false_refusals = [(r, v) for r, v in allowed_rows if not v.allowed]
    missed = [(r, v) for r, v in refused_rows if v.allowed]
    wrong_category = [(r, v) for r, v in refused_rows
                      if not v.allowed and v.category != r["category"]]
    caught = len(refused_rows) - len(missed)

    per_cat: dict[str, Counter] = {}
    for r, v in refused_rows:
        c = per_cat.setdefault(r["category"], Counter())
        c["prompts"] += 1
        c["refused"] += not v.allowed
        c["missed"] += v.allowed
        c["other category"] += (not v.allowed and v.category != r["category"])
    refused_allowed_by = Counter(v.category for _, v in false_refusals)

    rates = []
    for _ in range(max(1, args.repeat)):
        guard._forms.cache_clear()
        t0 = time.perf_counter()
        for r in rows:
            policy.screen(r["prompt"])
        rates.append(len(rows) / (time.perf_counter() - t0))
    per_s = statistics.median(rates)

    t0 = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "sora_cli", "check", "a red ball bouncing on a "
                          "beach"], capture_output=True, text=True, cwd=ROOT)
    cli_s = time.perf_counter() - t0

    result = {
        "prompts": len(rows), "allowed_prompts": len(allowed_rows),
        "disallowed_prompts": len(refused_rows),
        "false_refusals": len(false_refusals),
        "false_refusal_rate": len(false_refusals) / max(1, len(allowed_rows)),
        "missed_refusals": len(missed),
        "missed_refusal_rate": len(missed) / max(1, len(refused_rows)),
        "category_agreement": (caught - len(wrong_category)) / max(1, caught),
        "per_category": {k: dict(v) for k, v in sorted(per_cat.items())},
        "false_refusals_by_category": dict(refused_allowed_by),
        "policy_load_ms": round(load_ms, 1), "prompts_per_s": round(per_s),
        "sora_check_wall_s": round(cli_s, 3), "sora_check_exit": cli.returncode,
        "false_refusal_examples": [(r["prompt"], v.category, v.match) for r, v in false_refusals],
        "missed_examples": [(r["prompt"], r["category"]) for r, _ in missed],
        "wrong_category_examples": [(r["prompt"], r["category"], v.category)
                                    for r, v in wrong_category],
    }
    ok = result["missed_refusals"] == 0 and result["false_refusal_rate"] <= 0.02

    if args.json:
        print(json.dumps(result))
        return 0 if ok else 1

    print(f"labelled set: {args.data.relative_to(ROOT) if args.data.is_relative_to(ROOT) else args.data}"
          f"  ({len(rows)} prompts: {len(allowed_rows)} allowed, {len(refused_rows)} disallowed)")
    print(f"false refusals:   {len(false_refusals):4d} / {len(allowed_rows)}"
          f"  = {result['false_refusal_rate']:.2%}   (target <= 2%)")
    print(f"missed refusals:  {len(missed):4d} / {len(refused_rows)}"
          f"  = {result['missed_refusal_rate']:.2%}   (target 0)")
    print(f"refusals naming the labelled category: {result['category_agreement']:.1%}")
    print()
    print(f"{'category':16s} {'prompts':>7s} {'refused':>7s} {'missed':>6s} {'other cat.':>10s}")
    for name, c in sorted(per_cat.items()):
        print(f"{name:16s} {c['prompts']:7d} {c['refused']:7d} {c['missed']:6d} "
              f"{c['other category']:10d}")
    for prompt, cat, match in result["false_refusal_examples"]:
        print(f"  false refusal ({cat}, {match!r}): {prompt}")
    for prompt, cat in result["missed_examples"]:
        print(f"  missed ({cat}): {prompt}")
    for prompt, want, got in result["wrong_category_examples"]:
        print(f"  named {got}, labelled {want}: {prompt}")
    print()
    print(f"policy load + compile: {load_ms:.0f} ms; screening: {per_s:,.0f} prompts/s "
          f"(median of {len(rates)}); `sora check` in a fresh process: {cli_s:.2f} s wall")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
