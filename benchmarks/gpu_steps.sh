# Issue 13's GPU steps, for the prepared device check (../shared/gpu: prepare.sh copies benchmarks/
# into .gpu/). Append them to the check and run it as its README says:
#     bash ../shared/gpu/prepare.sh && echo '. "$G"/benchmarks/gpu_steps.sh' >> .gpu/check.sh
# Uses check.sh's `step LIMIT COMMAND...`, $G (.gpu), $W (work folder) and $OUT; about 6 minutes.
# 1. CUDA graphs against eager steps: seconds per epoch and the largest weight difference.
step 240 python3 "$G"/benchmarks/bench_cuda_graphs.py --device cuda --epochs 3
# 2. A whole run with graphs on; its file lands beside the eager run's for comparison.
step 150 env PRUNING_SUITE_CUDA_GRAPHS=1 pruning-suite run --plugin l1norm \
  --protocol fashion-mnist-lenet5 --device cuda --out "$W"/graphs
find "$W"/graphs -name '*.json' | head -2 | xargs -I{} cp {} "$OUT"/graphs-run.json
# 3. The loop benchmark with 8 runs packed on the GPU, and its projected Table 6 grid hours.
step 200 python3 "$G"/benchmarks/bench_retrain_loop.py --device cuda --batch-size 128 --pack 8
