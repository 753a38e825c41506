#!/usr/bin/env bash
# Everything here that needs a GPU, in one go, each part with its own time limit, one table at the end.
# Sized for 10 minutes on one H200 (9 min 45 s if every part runs to its limit):
#   1. a 5-minute modality=image+audio model=base run (data, tokenizers 0.5 min each, the LM 3 min), on the GPU,
#      while pytest -m "gpu or slow" runs beside it (the slow tests are CPU-bound; the gpu ones tiny)
#   2. generation_accuracy on that run
#   3. a 2-GPU DDP smoke run (skipped on a one-GPU machine)
#   4. train_speed model=large, then generate_speed model=large: alone on the GPU, so MFU and ms/token are clean
#
#   bash benchmarks/gpu_check.sh [output folder]      (default benchmarks/out/gpu_check-<date>-<time>)
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${1:-benchmarks/out/gpu_check-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
: > "$OUT/parts.tsv"
STARTED=$(date +%s)
GPUS=$(python -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)

# part <name> <limit in seconds> <command...>: runs in its own process group (killed whole at the limit), output
# in $OUT/<name>.log, one row in $OUT/parts.tsv.
part() {
  local name=$1 limit=$2; shift 2
  local start status code
  start=$(date +%s)
  setsid "$@" > "$OUT/$name.log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ $(( $(date +%s) - start )) -ge "$limit" ]; then
      kill -KILL -- "-$pid" 2>/dev/null
      break
    fi
    sleep 1
  done
  wait "$pid"
  code=$?
  if [ "$(( $(date +%s) - start ))" -ge "$limit" ] && [ "$code" -ne 0 ]; then status="timed out (${limit}s)"
  elif [ "$code" -eq 0 ]; then status="ok"
  else status="failed (exit $code)"; fi
  printf '%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - start ))" >> "$OUT/parts.tsv"
}

skip() { printf '%s\t%s\t0\n' "$1" "skipped ($2)" >> "$OUT/parts.tsv"; }

echo "[gpu_check] $GPUS GPU(s); output in $OUT"
RUN=$OUT/base-run
part base_run 315 python scripts/train.py modality=image+audio model=base trainer=gpu run_dir="$RUN" \
  paths.tokenizers_dir="$OUT/tokenizers" paths.cache_dir="$OUT/cache" progress=false \
  tokenizer.image.train.max_minutes=0.5 tokenizer.audio.train.max_minutes=0.5 lm.max_minutes=3 &
TRAINING=$!
part pytest 315 python -m pytest -q -m "gpu or slow" -p no:cacheprovider
wait "$TRAINING"

if [ -f "$RUN/lm/config.json" ]; then
  part accuracy 50 python benchmarks/generation_accuracy.py run="$RUN" prompts=20
else
  skip accuracy "no trained run"
fi

if [ "$GPUS" -ge 2 ]; then
  part ddp_smoke 120 python scripts/train.py debug=smoke modality=image trainer=ddp trainer.devices=2 \
    run_dir="$OUT/ddp-run" paths.tokenizers_dir="$OUT/tokenizers-smoke" paths.cache_dir="$OUT/cache-smoke"
else
  skip ddp_smoke "$GPUS GPU"
fi

part train_speed 150 python benchmarks/train_speed.py model=large steps=10 warmup=3 variants=plain,ours
part generate_speed 70 python benchmarks/generate_speed.py model=large batches=1 repeats=2 variants=ours,generate

python benchmarks/gpu_check_table.py "$OUT" "$STARTED"
