#!/usr/bin/env bash
# Batch generation with sora, end to end: a run, a resume after an interruption, the same kind
# of batch shared across two processes with torchrun, the manifest read in plain shell (no
# python, no jq), and the finished videos stitched into one film.
#
#   bash examples/batch.sh [OUT_DIR]          # from the repository root; OUT_DIR: batch-out
#
# Environment: MODEL (bundle name or folder, default "default"), STEPS (denoising steps,
# default: the model's), DURATION (seconds per prompt of prompts.txt, default 4),
# STOP_AFTER (seconds before the first run is interrupted, default 20).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:-batch-out}
model=${MODEL:-default}
opts=(--model "$model" --duration "${DURATION:-4}")
if [[ -n ${STEPS:-} ]]; then opts+=(--steps "$STEPS"); fi

# 1. A run, interrupted. Every prompt of prompts.txt becomes out/prompts/NNNN-<slug>-s<seed>.mp4
#    (item i gets seed 100+i), and each finished item is appended to the manifest at once.
#    `timeout -s INT` stands in for Ctrl-C, a killed job or a lost machine.
echo "== 1. batch run, interrupted after ${STOP_AFTER:-20} s"
timeout -s INT "${STOP_AFTER:-20}" \
    sora batch "$here/prompts.txt" -o "$out/prompts" --seed 100 "${opts[@]}" || true

# 2. Resume: the very same command skips the items already done and makes the rest. No item is
#    lost or made twice; the manifest ends with one row per prompt, in file order.
echo "== 2. the same command again: resumes"
sora batch "$here/prompts.txt" -o "$out/prompts" --seed 100 "${opts[@]}"

# 3. Shared out across processes: under torchrun, rank r takes items r, r+2, r+4, ...; each
#    rank writes its own manifest.rankR.jsonl and brings manifest.jsonl up to date from all
#    of them after each item; rank 0 merges them for good at the end.
#    Rows of jobs.jsonl carry their own seed, duration, size/aspect, steps, ... (the flags
#    here are defaults for what a row leaves out). On more machines: --nnodes N --node-rank K
#    --rdzv-endpoint HOST:PORT instead of --standalone. One thread each on a 2-core CPU.
echo "== 3. jobs.jsonl on 2 processes"
OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} torchrun --standalone --nproc_per_node=2 \
    -m sora_cli batch "$here/jobs.jsonl" -o "$out/jobs" "${opts[@]}"

# 4. Read a manifest with nothing but the shell: one JSON object a line, keys in a fixed order
#    (id, index, prompt, options, seed, output, duration, seconds, status, error, ...).
#    The top-level "output" is the last one on the line (a row's options may name one too).
field() {  # field ROW KEY -> the string value of "KEY": "..." (first occurrence)
    local v=${1#*\"$2\": \"}
    [[ $v == "$1" ]] && return 1
    printf '%s' "${v%%\"*}"
}
done_videos=()
echo "== 4. $out/prompts/manifest.jsonl"
while IFS= read -r row; do
    status=$(field "$row" status) || status=?
    prompt=$(field "$row" prompt) || prompt=?
    if [[ $status == done ]]; then
        video=${row##*\"output\": \"}
        video=${video%%\"*}
        done_videos+=("$out/prompts/$video")
        printf '%-8s %s  <- %s\n' "$status" "$video" "$prompt"
    else
        printf '%-8s %s\n' "$status" "$prompt"   # refused or failed: see "error"
    fi
done < "$out/prompts/manifest.jsonl"
echo "${#done_videos[@]} videos done"

# 5. Stitch the finished videos, in prompt order, into one film. They share size, frame rate
#    and codec settings, so a plain cut is a stream copy; --transition crossfade --overlap 0.5
#    would blend them, and --transition bridge --overlap 1 would generate the joins.
if (( ${#done_videos[@]} >= 2 )); then
    echo "== 5. stitch"
    sora stitch "${done_videos[@]}" -o "$out/all-prompts.mp4" -y
fi
