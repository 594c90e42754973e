#!/usr/bin/env bash
# The recipe that trained models/default on one GPU in about 25 minutes (with VAE_VIEWS=1:
# views came later), starting from the weights of a bundle (--init), so each run of it goes on
# improving the shipped model.
#
#   bash examples/train_on_gpu.sh [RUNS_DIR]          # writes RUNS_DIR/bundle
#   PARTS=dit DIT_MIN=20 bash examples/train_on_gpu.sh  # only the DiT, on the shipped VAE/text
#   PARTS=dit TEXT_INPUTS=1 TIME_SHIFT=2 DIT_MIN=5.2 COUNT=30000 TIMING=30 \
#       bash examples/train_on_gpu.sh                 # the shipped DiT's last run: 485 s in
#                                                     # all on one H200 (see below)
#   PARTS="vae dit" VAE_ARCH='{"z_channels": 64}' VAE_MIN=12 DIT_MIN=12 \
#       bash examples/train_on_gpu.sh                 # a new, wider VAE and a DiT on it
#   PARTS="vae dit" WIDEN=64 VAE_LR=1e-4 VAE_MIN=2.5 DIT_MIN=3.5 COUNT=20000 TIMING=30 \
#       bash examples/train_on_gpu.sh                 # BASE's VAE and DiT go on with their
#                                                     # latent split to 64 channels
#   PARTS="vae dit" VAE_ARCH='{"channels": [32, 64]}' DIT_ARCH='{"patch_size": 4}' ...
#                                                     # an 8x VAE; patch 4 keeps the tokens
#   PARTS=decoder DEC_MIN=8 bash examples/train_on_gpu.sh
#                                                     # only BASE's VAE decoder; BASE's DiT
#                                                     # stays (see below)
#   PARTS="clip dit" VISION_FRAMES=4 CLIP_MIN=4 DIT_MIN=12 bash examples/train_on_gpu.sh
#                                                     # a text tower that knows motion words,
#                                                     # and the DiT on it
#   PARTS=expert EXPERT_MIN=6 bash examples/train_on_gpu.sh
#                                                     # a high-noise expert beside BASE's DiT
#   PARTS="dit expert" ...                            # both, the expert from the new DiT
#
# Each stage's step count is sized to its minutes by a short timing run of the same command
# first, so the cosine schedule ends exactly when the time does (a run stopped by
# --max-minutes would end with a high learning rate and no held-out figures). The VAE and the
# CLIP train side by side; the DiT trains on latents cached once by `sora data encode`. A DiT
# on a retrained VAE starts from scratch (the latent space moved), except on a VAE widened
# from BASE's (WIDEN); on the shipped VAE it goes on from the shipped DiT.
# Knobs (environment): SORA (the command, default `sora`), BASE (bundle to start from), NAME
# (the new bundle's name, default BASE's folder name, so it can replace BASE), PARTS
# (which of vae clip dit decoder to train), VAE_MIN, CLIP_MIN, DIT_MIN (minutes), COUNT
# (clips in the latent cache), CPUS, DEVICE, DIT_LR, and for a quick trial on a CPU: VAE_BS,
# CLIP_BS, DIT_BS (batch sizes), TIMING (timing-run steps), TIMING_CLIPS (clips the DiT
# timing run encodes),
# VAE_VIEWS (1, 2 or 4: each rendered clip trains the VAE that many ways; on a GPU the VAE
# waits on the CPU workers that render its clips, so views multiply what it learns per minute),
# FRAMES (frames of each cached clip, 4k+1) and WINDOW (latent frames the DiT trains on at a
# time, 0 for whole clips; see `sora train dit --window`), TIME_SHIFT (`sora train dit
# --time-shift`: 2 trains at the noise levels the shipped sampler's shift 2 visits; the model
# card's "Where the DiT fails" found the DiT weakest at high noise),
# OVERRUN (1.5: a stage stops at that many times its minutes, see capped below),
# DEC_MIN and LATENT_NOISE (PARTS=decoder: `sora train vae --decoder-only --latent-noise`,
# which keeps BASE's encoder and latent statistics, so BASE's DiT, or a DiT trained in the same
# run, decodes with the new decoder; it cannot go with vae, which moves the latent space;
# LATENT_NOISE defaults to 0, since 0.5 cost colour checks in a CPU attempt in EXPERIMENTS.md),
# VAE_ARCH (a JSON --arch: the VAE then starts from scratch with it instead of from BASE),
# WIDEN (latent channels, a multiple of BASE's: the VAE goes on from BASE's with each latent
# channel split into WIDEN / 16 (sora_cli/train/widen.py), and the DiT goes on from BASE's,
# split to match, instead of starting from scratch; VAE_LR, default 4e-4, sets the VAE's rate),
# DIT_ARCH (a JSON --arch for the DiT that starts from scratch on a new VAE; keep its token
# count, e.g. patch_size 4 on an 8x VAE, since the timing run measures the shipped shape).
# TEXT_INPUTS=1 (`sora train dit --text-inputs`: the DiT also reads the text tower's input
# embeddings, which tell motion words apart where its outputs do not; EXPERIMENTS.md's "Why
# motion fails". An expert goes with it only when trained in the same run, PARTS="dit expert").
# VISION_FRAMES=4 (`sora train clip --vision-frames 4`: the CLIP learns from 2x2 grids of each
# clip's frames instead of single frames, so its text tower tells motion words apart: on the
# CPU, grown from BASE's CLIP, up, down, growth and bounce but not yet left and right; the DiT
# must then train on the new tower, PARTS="clip dit"; EXPERIMENTS.md's "A CLIP trained on clips").
# EXPERT_MIN, MIN_T and EXPERT_T (PARTS=expert: `sora train dit --min-t MIN_T` from the DiT,
# exported with `--dit-high --expert-t EXPERT_T`: it runs the sampler's steps from EXPERT_T
# up, where EXPERIMENTS.md's "Where the DiT fails" found the DiT weakest; without expert in
# PARTS, an expert BASE ships stays beside a retrained DiT, unless the VAE is new).
#
# The minutes are the training stages' own. Around them come the timing runs, the latent cache
# (60,000 clips took 185 s with 15 workers on the H100 run, so about 3 s per 1,000), the
# held-out figures and the export: about 25 minutes in all for the defaults. For a short
# lease, size COUNT with the DiT minutes, as in the H200 line above: its timing runs took 42 s,
# the cache of 30,000 clips 94 s, the DiT 293 s at 2831 clips/s, the export 19 s.
set -euo pipefail

RUNS=${1:-runs/gpu}
SORA=${SORA:-sora}
BASE=${BASE:-models/default}
PARTS=${PARTS:-vae clip dit}
NAME=${NAME:-$(basename "$BASE")}  # the name videos' metadata records: the bundle it improves
VAE_MIN=${VAE_MIN:-5.5}
CLIP_MIN=${CLIP_MIN:-5.5}
DIT_MIN=${DIT_MIN:-10}
DEC_MIN=${DEC_MIN:-5}
EXPERT_MIN=${EXPERT_MIN:-5}
MIN_T=${MIN_T:-0.75}
EXPERT_T=${EXPERT_T:-0.78}
LATENT_NOISE=${LATENT_NOISE:-0}
OVERRUN=${OVERRUN:-1.5}
COUNT=${COUNT:-60000}
FRAMES=${FRAMES:-17}
WINDOW=${WINDOW:-0}
TIME_SHIFT=${TIME_SHIFT:-1}
TEXT_ARGS=()
if [[ "${TEXT_INPUTS:-0}" == 1 ]]; then TEXT_ARGS=(--text-inputs); fi
CPUS=${CPUS:-$(nproc)}
DEVICE=${DEVICE:-cuda}
VAE_BS=${VAE_BS:-16}
VAE_VIEWS=${VAE_VIEWS:-4}
VAE_LR=${VAE_LR:-4e-4}
CLIP_BS=${CLIP_BS:-512}
DIT_BS=${DIT_BS:-256}
DIT_LR=${DIT_LR:-5e-4}
TIMING=${TIMING:-60}
TIMING_CLIPS=${TIMING_CLIPS:-512}
HALF=$(( CPUS / 2 > 1 ? CPUS / 2 - 1 : 0 ))
mkdir -p "$RUNS"

say() { echo "[$(date +%H:%M:%S)] $*"; }
wants() { [[ " $PARTS " == *" $1 "* ]]; }
if wants vae && wants decoder; then
    echo "PARTS: vae and decoder do not go together (a new VAE moves the latent space that" \
         "--decoder-only keeps); train the new VAE's decoder in a later run" >&2
    exit 2
fi
if [[ -n "${WIDEN:-}" && -n "${VAE_ARCH:-}" ]]; then
    echo "WIDEN goes on from BASE's VAE and VAE_ARCH starts one from scratch: set one of them" >&2
    exit 2
fi
if [[ -n "${WIDEN:-}" ]] && ! wants vae; then
    echo "WIDEN widens BASE's VAE: add vae to PARTS" >&2
    exit 2
fi
if wants expert && wants vae && ! wants dit; then
    echo "PARTS: an expert on a new VAE needs a main DiT on it too: add dit to PARTS" >&2
    exit 2
fi

# A stage that runs slower than its timing run stops at OVERRUN times its minutes with a
# checkpoint, which the export takes: a lease that ends mid-stage would otherwise keep nothing.
# (A session ran the decoder beside the DiT on one H200 to save wall time: each slowed the
# other, the decoder to 191 clips/s against 309 alone and the DiT to about 2,200 against 3,530,
# both ran past the minutes their timing runs sized, and the lease's limit ended the run before
# the export. So stages run one after the other, as sized.)
capped() {  # MINUTES -> --max-minutes value
    python3 -c 'import sys; print(float(sys.argv[1]) * float(sys.argv[2]))' "$1" "$OVERRUN"
}

# steps that fill MINUTES at the steady rate the timing run logged (samples/s, last row)
steps_for() {  # RUN MINUTES BATCH
    python3 - "$@" <<'EOF'
import json, sys
run, minutes, batch = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
rows = [json.loads(l) for l in open(f"{run}/log.jsonl") if l.strip()]
print(max(20, int(rows[-1]["samples_per_s"] * minutes * 60 / batch)))
EOF
}

# the VAE and the CLIP share the CPU workers when both train; alone, the VAE takes them all
if wants clip; then VAE_WORKERS=$HALF; else VAE_WORKERS=$(( CPUS > 1 ? CPUS - 1 : 0 )); fi
VAE_ARGS=(--size 256 --frames 9 --batch-size "$VAE_BS" --views "$VAE_VIEWS" --lr "$VAE_LR"
          --workers "$VAE_WORKERS"
          --sample-every -1 --device "$DEVICE" --log-every 10)
# the decoder sees 17-frame clips, the windows generation decodes
DEC_ARGS=(--decoder-only --latent-noise "$LATENT_NOISE" --init "$BASE" --size 256 --frames 17
          --batch-size "$VAE_BS" --lr 5e-5 --workers "$VAE_WORKERS" --sample-every -1
          --device "$DEVICE" --log-every 10)
CLIP_ARGS=(--batch-size "$CLIP_BS" --lr 5e-4 --workers "$HALF" --device "$DEVICE" --log-every 10)
if [[ -n "${VISION_FRAMES:-}" ]]; then CLIP_ARGS+=(--vision-frames "$VISION_FRAMES"); fi
DIT_ARGS=(--batch-size "$DIT_BS" --lr "$DIT_LR" --workers 0 --sample-every -1 --device "$DEVICE"
          --log-every 10 --window "$WINDOW" --time-shift "$TIME_SHIFT")
VAE_SRC=$BASE
CLIP_SRC=$BASE
DIT_INIT=(--init "$BASE")
if [[ -n "${WIDEN:-}" ]]; then
    VAE_START=(--init "$BASE" --arch "{\"z_channels\": $WIDEN}")
elif [[ -n "${VAE_ARCH:-}" ]]; then
    VAE_START=(--arch "$VAE_ARCH")
else
    VAE_START=(--init "$BASE")
fi

say "timing runs"
if wants vae; then
    $SORA train vae --out "$RUNS/time-vae" "${VAE_START[@]}" "${VAE_ARGS[@]}" --steps "$TIMING" \
        --warmup 10 --eval-clips 2 -q &
fi
if wants decoder; then
    $SORA train vae --out "$RUNS/time-decoder" "${DEC_ARGS[@]}" --steps "$TIMING" --warmup 10 \
        --eval-clips 1 -q &
fi
if wants clip; then
    $SORA train clip --out "$RUNS/time-clip" --init "$BASE" "${CLIP_ARGS[@]}" --steps "$TIMING" \
        --warmup 10 --eval-frames 27 -q &
fi
wait
if wants dit || wants expert; then  # an expert is a DiT: the same rate
    $SORA data encode --model "$BASE" --count "$TIMING_CLIPS" --frames "$FRAMES" --out "$RUNS/time-latents" \
        --batch-size 64 --workers "$(( CPUS - 1 ))" --device "$DEVICE" -q
    $SORA train dit --out "$RUNS/time-dit" --vae "$BASE" --clip "$BASE" \
        --latents "$RUNS/time-latents" "${DIT_ARGS[@]}" --steps "$TIMING" --warmup 10 -q
fi

if wants vae || wants clip; then
    say "vae and clip"
fi
if wants vae; then
    VAE_STEPS=$(steps_for "$RUNS/time-vae" "$VAE_MIN" "$VAE_BS")
    say "vae: $VAE_STEPS steps"
    # not capped: a VAE stopped early has no latent statistics, which the later stages need
    $SORA train vae --out "$RUNS/vae" "${VAE_START[@]}" "${VAE_ARGS[@]}" --steps "$VAE_STEPS" \
        --warmup 200 --eval-clips 16 -q &
    VAE_SRC=$RUNS/vae
    if [[ -z "${WIDEN:-}" ]]; then   # a widened VAE's DiT goes on from BASE's, split to fit
        DIT_INIT=()
        if [[ -n "${DIT_ARCH:-}" ]]; then DIT_INIT=(--arch "$DIT_ARCH"); fi
    fi
fi
if wants decoder; then
    DEC_STEPS=$(steps_for "$RUNS/time-decoder" "$DEC_MIN" "$VAE_BS")
    say "decoder: $DEC_STEPS steps"
    $SORA train vae --out "$RUNS/decoder" "${DEC_ARGS[@]}" --steps "$DEC_STEPS" --warmup 50 \
        --max-minutes "$(capped "$DEC_MIN")" --eval-clips 16 -q &
fi
if wants clip; then
    CLIP_STEPS=$(steps_for "$RUNS/time-clip" "$CLIP_MIN" "$CLIP_BS")
    say "clip: $CLIP_STEPS steps"
    $SORA train clip --out "$RUNS/clip" --init "$BASE" "${CLIP_ARGS[@]}" --steps "$CLIP_STEPS" \
        --max-minutes "$(capped "$CLIP_MIN")" --warmup 200 -q &
    CLIP_SRC=$RUNS/clip
fi
wait

if wants dit || wants expert; then
    say "latent cache"
    $SORA data encode --vae "$VAE_SRC" --count "$COUNT" --frames "$FRAMES" --out "$RUNS/latents" --batch-size 64 \
        --workers "$(( CPUS - 1 ))" --device "$DEVICE" -q
fi
if wants dit; then
    DIT_STEPS=$(steps_for "$RUNS/time-dit" "$DIT_MIN" "$DIT_BS")
    say "dit: $DIT_STEPS steps"
    $SORA train dit --out "$RUNS/dit" --vae "$VAE_SRC" --clip "$CLIP_SRC" \
        --latents "$RUNS/latents" "${DIT_INIT[@]}" "${DIT_ARGS[@]}" "${TEXT_ARGS[@]}" \
        --steps "$DIT_STEPS" --warmup 300 --max-minutes "$(capped "$DIT_MIN")" -q
fi
# a bundle's expert: the one trained now, else BASE's (same latents) beside a retrained DiT
HIGH=()
if wants expert; then
    EXPERT_FROM=$BASE
    if wants dit; then EXPERT_FROM=$RUNS/dit; fi
    EXPERT_STEPS=$(steps_for "$RUNS/time-dit" "$EXPERT_MIN" "$DIT_BS")
    say "expert: $EXPERT_STEPS steps"
    EXPERT_ARGS=("${DIT_ARGS[@]}")
    EXPERT_ARGS[${#EXPERT_ARGS[@]}-1]=1     # --time-shift 1: --min-t draws its own levels
    $SORA train dit --out "$RUNS/high" --vae "$VAE_SRC" --clip "$CLIP_SRC" \
        --latents "$RUNS/latents" --init "$EXPERT_FROM" "${EXPERT_ARGS[@]}" --min-t "$MIN_T" \
        --steps "$EXPERT_STEPS" --warmup 100 --max-minutes "$(capped "$EXPERT_MIN")" -q
    HIGH=(--dit-high "$RUNS/high" --expert-t "$EXPERT_T")
elif wants dit && ! wants vae && [[ -f "$BASE/dit_high.safetensors" ]]; then
    HIGH=(--dit-high "$BASE" --expert-t "$(python3 -c 'import json, sys
print(json.load(open(sys.argv[1]))["flow"]["expert_t"])' "$BASE/config.json")")
fi
if wants decoder; then  # its latents are VAE_SRC's (BASE's), so the cache above stands
    VAE_SRC=$RUNS/decoder
fi
if wants dit || wants decoder || wants expert; then
    DIT_SRC=$BASE
    if wants dit; then DIT_SRC=$RUNS/dit; fi
    say "export"
    $SORA train export "$RUNS/bundle" --vae "$VAE_SRC" --clip "$CLIP_SRC" --dit "$DIT_SRC" \
        "${HIGH[@]}" --name "$NAME" -y
    say "done: $RUNS/bundle"
    say "judge it against $BASE: sora eval --model $RUNS/bundle --n 100 (and --seed 1000);" \
        "python benchmarks/motion_words.py $BASE $RUNS/bundle (does the DiT read motion words?)"
fi
