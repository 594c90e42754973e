#!/usr/bin/env bash
# Batch generation with sora, end to end: a run, a resume after an interruption, the same kind
# of batch shared across two processes with torchrun, the manifest read in plain shell (no
# python, no jq), and the finished videos stitched into one film.
#
#   bash examples/batch.sh [OUT_DIR]          # from the repository root; OUT_DIR: batch-out
#   bash examples/batch.sh --read MANIFEST    # step 4 alone: list a manifest's items
#
# Environment: MODEL (bundle name or folder, default "default"), STEPS (denoising steps,
# default: the model's), DURATION (seconds per prompt of prompts.txt, default 4),
# STOP_AFTER (seconds before the first run is interrupted, default 20).
set -euo pipefail

# Reading a manifest (step 4), defined first so that `--read MANIFEST` can run it alone.
json_string() {  # json_string TEXT -> the JSON string that TEXT starts with, unescaped
    local re='^"(([^"\\]|\\.)*)"' v
    [[ $1 =~ $re ]] || return 1
    v=${BASH_REMATCH[1]}
    v=${v//\\\"/\"}
    v=${v//\\\//\/}
    printf '%b' "$v"   # the rest of JSON's escapes are printf's: \\ \n \t \uXXXX ...
}
field() {  # field ROW KEY -> the string value of the first "KEY": "..."
    [[ $1 == *"\"$2\": \""* ]] || return 1
    json_string "\"${1#*\"$2\": \"}"
}
last_field() {  # last_field ROW KEY -> the string value of the last "KEY": "..."
    [[ $1 == *"\"$2\": \""* ]] || return 1
    json_string "\"${1##*\"$2\": \"}"
}
done_videos=()
read_manifest() {  # read_manifest FILE: a line per item; the done videos into done_videos
    local row status prompt video
    while IFS= read -r row; do
        status=$(field "$row" status) || status=?
        prompt=$(field "$row" prompt) || prompt=?
        if [[ $status == done ]]; then
            video=$(last_field "$row" output)
            done_videos+=("$(dirname "$1")/$video")
            printf '%-8s %s  <- %s\n' "$status" "$video" "$prompt"
        else
            printf '%-8s %s\n' "$status" "$prompt"   # refused or failed: see "error"
        fi
    done < "$1"
    echo "${#done_videos[@]} videos done"
}
if [[ ${1:-} == --read ]]; then
    read_manifest "${2:?usage: bash examples/batch.sh --read MANIFEST}"
    exit
fi

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
#    (id, index, prompt, options, seed, output, duration, seconds, status, error, ...), text
#    as it is but for JSON's escapes. The top-level "output" is the last one on the line (a
#    row's options may name one too): read_manifest, above; `bash examples/batch.sh --read
#    MANIFEST` runs only this step.
echo "== 4. $out/prompts/manifest.jsonl"
read_manifest "$out/prompts/manifest.jsonl"

# 5. Stitch the finished videos, in prompt order, into one film. They share size, frame rate
#    and codec settings, so a plain cut is a stream copy; --transition crossfade --overlap 0.5
#    would blend them, and --transition bridge --overlap 1 would generate the joins.
if (( ${#done_videos[@]} >= 2 )); then
    echo "== 5. stitch"
    sora stitch "${done_videos[@]}" -o "$out/all-prompts.mp4" -y
fi
