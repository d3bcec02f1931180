#!/usr/bin/env bash
# Rerun every committed result into submissions/ (pruning-suite's tables and docs/leaderboard).
# Usage: bash submissions/regenerate.sh [GROUP...]
#   groups: digits s4 fashion-s4 fashion-unstructured-s4 fashion mlp7
# A run whose stored file it reproduces keeps that file; afterwards rebuild the site with
#   .venv/bin/pruning-suite leaderboard submissions --out docs/leaderboard
set -uo pipefail
cd "$(dirname "$0")/.."
RUN=(.venv/bin/pruning-suite run --quiet)
FILTER_METHODS=(l1norm l2norm random fpgm taylor hessian slimming greg group-norm)
failed=0

run() {  # one run; a failure is reported and the rest go on
  echo "+ pruning-suite run $*"
  "${RUN[@]}" "$@" | grep -E "^run |reproduced|written to" || { echo "FAILED: $*"; failed=1; }
}

digits() {  # digits-convnet v1: one-shot methods, no pruning stage
  for seed in 0 1 2; do
    run --plugin l1norm --seed "$seed"
    run --plugin random --seed "$seed"
    run --plugin taylor --seed "$seed" --config '{"batches": 4}'
    run --plugin magnitude --protocol digits-convnet-unstructured --seed "$seed"
  done
}

s4() {  # every built-in baseline with the same pruning stage (S4.x) on digits
  for seed in 0 1 2; do
    for method in "${FILTER_METHODS[@]}"; do
      run --plugin "$method" --protocol digits-convnet-s4 --seed "$seed"
    done
    for method in magnitude lamp imp; do
      run --plugin "$method" --protocol digits-convnet-unstructured-s4 --seed "$seed"
    done
    run --plugin magnitude --protocol digits-convnet-unstructured-s4 --seed "$seed" \
      --config '{"allocation": "global"}'
  done
}

fashion_s4() {  # every filter baseline with the same 3-epoch pruning stage on Fashion-MNIST
  for seed in 0 1 2; do
    for method in "${FILTER_METHODS[@]}"; do
      run --plugin "$method" --protocol fashion-mnist-lenet5-s4 --seed "$seed"
    done
  done
}

fashion_unstructured_s4() {  # the weight-granularity baselines with the same pruning stage
  for seed in 0 1 2; do
    for method in magnitude lamp imp; do
      run --plugin "$method" --protocol fashion-mnist-lenet5-unstructured-s4 --seed "$seed"
    done
    run --plugin magnitude --protocol fashion-mnist-lenet5-unstructured-s4 --seed "$seed" \
      --config '{"allocation": "global"}'
  done
}

fashion() {  # fashion-mnist-lenet5: the retraining-LR finding and the scratch baselines
  for seed in 0 1 2; do
    for method in l1norm random; do
      run --plugin "$method" --protocol fashion-mnist-lenet5 --seed "$seed"
      run --plugin "$method" --protocol fashion-mnist-lenet5 --seed "$seed" \
        --retrain-lr-schedule 0:0.001,5:0.0001
    done
    for setup in SX-A SX-B; do
      run --plugin scratch --protocol fashion-mnist-lenet5 --seed "$seed" \
        --config "{\"arch_from\": \"l1norm\", \"setup\": \"$setup\"}"
    done
  done
}

mlp7() {  # fashion-mnist-mlp7-linear: trainability (OrthP) and the retraining LR
  for seed in 0 1 2; do
    for lr in "" 0:0.001,45:0.0001; do
      for orthp in "" --orthp; do
        run --plugin l1norm --protocol fashion-mnist-mlp7-linear --seed "$seed" \
          ${lr:+--retrain-lr-schedule "$lr"} $orthp
      done
    done
  done
}

for group in "${@:-digits s4 fashion-s4 fashion-unstructured-s4 fashion mlp7}"; do
  for name in $group; do "${name//-/_}"; done
done
exit "$failed"
