#!/usr/bin/env bash
# The recipe that trained models/default: all three parts on one GPU in about 25 minutes,
# starting from the weights of the shipped bundle (--init) so a re-run goes on improving it.
#
#   bash examples/train_on_gpu.sh [RUNS_DIR]        # then: sora train export models/NAME ...
#
# Each stage's step count is sized to its minutes by a short timing run of the same command
# first, so the cosine schedule ends exactly when the time does (a run stopped by
# --max-minutes would end with a high learning rate and no held-out figures). The VAE and the
# CLIP train side by side; the DiT trains on latents cached once by `sora data encode`.
# Knobs (environment): SORA (the command, default `sora`), BASE (bundle to start from),
# VAE_MIN, CLIP_MIN, DIT_MIN (minutes), COUNT (clips in the latent cache), CPUS, DEVICE, and
# for a quick trial on a CPU: VAE_BS, CLIP_BS, DIT_BS (batch sizes), TIMING (timing-run steps).
set -euo pipefail

RUNS=${1:-runs/gpu}
SORA=${SORA:-sora}
BASE=${BASE:-models/default}
VAE_MIN=${VAE_MIN:-5.5}
CLIP_MIN=${CLIP_MIN:-5.5}
DIT_MIN=${DIT_MIN:-10}
COUNT=${COUNT:-60000}
CPUS=${CPUS:-$(nproc)}
DEVICE=${DEVICE:-cuda}
VAE_BS=${VAE_BS:-16}
CLIP_BS=${CLIP_BS:-512}
DIT_BS=${DIT_BS:-256}
TIMING=${TIMING:-60}
HALF=$(( CPUS / 2 > 1 ? CPUS / 2 - 1 : 0 ))
mkdir -p "$RUNS"

say() { echo "[$(date +%H:%M:%S)] $*"; }

# steps that fill MINUTES at the steady rate the timing run logged (samples/s, last row)
steps_for() {  # RUN MINUTES BATCH
    python3 - "$@" <<'EOF'
import json, sys
run, minutes, batch = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rows = [json.loads(l) for l in open(f"{run}/log.jsonl") if l.strip()]
print(max(20, int(rows[-1]["samples_per_s"] * minutes * 60 / batch)))
EOF
}

VAE_ARGS=(--size 256 --frames 9 --batch-size "$VAE_BS" --lr 4e-4 --workers "$HALF"
          --sample-every -1 --device "$DEVICE" --log-every 10)
CLIP_ARGS=(--batch-size "$CLIP_BS" --lr 5e-4 --workers "$HALF" --device "$DEVICE" --log-every 10)
DIT_ARGS=(--batch-size "$DIT_BS" --lr 5e-4 --workers 0 --sample-every -1 --device "$DEVICE"
          --log-every 10)

say "timing runs"
$SORA train vae --out "$RUNS/time-vae" --init "$BASE" "${VAE_ARGS[@]}" --steps "$TIMING" --warmup 10 \
    --eval-clips 2 -q &
$SORA train clip --out "$RUNS/time-clip" --init "$BASE" "${CLIP_ARGS[@]}" --steps "$TIMING" \
    --warmup 10 --eval-frames 27 -q &
wait
$SORA data encode --model "$BASE" --count 512 --out "$RUNS/time-latents" --batch-size 64 \
    --workers "$(( CPUS - 1 ))" --device "$DEVICE" -q
$SORA train dit --out "$RUNS/time-dit" --vae "$BASE" --clip "$BASE" \
    --latents "$RUNS/time-latents" "${DIT_ARGS[@]}" --steps "$TIMING" --warmup 10 -q
VAE_STEPS=$(steps_for "$RUNS/time-vae" "$VAE_MIN" "$VAE_BS")
CLIP_STEPS=$(steps_for "$RUNS/time-clip" "$CLIP_MIN" "$CLIP_BS")
DIT_STEPS=$(steps_for "$RUNS/time-dit" "$DIT_MIN" "$DIT_BS")
say "steps: vae $VAE_STEPS, clip $CLIP_STEPS, dit $DIT_STEPS"

say "vae and clip"
$SORA train vae --out "$RUNS/vae" --init "$BASE" "${VAE_ARGS[@]}" --steps "$VAE_STEPS" \
    --warmup 200 --eval-clips 16 -q &
$SORA train clip --out "$RUNS/clip" --init "$BASE" "${CLIP_ARGS[@]}" --steps "$CLIP_STEPS" \
    --warmup 200 -q &
wait

say "latent cache"
$SORA data encode --vae "$RUNS/vae" --count "$COUNT" --out "$RUNS/latents" --batch-size 64 \
    --workers "$(( CPUS - 1 ))" --device "$DEVICE" -q

say "dit"
$SORA train dit --out "$RUNS/dit" --vae "$RUNS/vae" --clip "$RUNS/clip" \
    --latents "$RUNS/latents" "${DIT_ARGS[@]}" --steps "$DIT_STEPS" --warmup 300 -q

say "export"
$SORA train export "$RUNS/bundle" --vae "$RUNS/vae" --clip "$RUNS/clip" --dit "$RUNS/dit" -y
say "done: $RUNS/bundle"
