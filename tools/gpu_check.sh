#!/usr/bin/env bash
# The checks that need a GPU, as one script (run from the repository root on a machine with CUDA):
# the `gpu` test tier (the shrunk Pythia paper preset end to end on CUDA), then the paper-shape benchmarks.
# Writes gpu_tier.log and bench_gpu.csv under ${OUT:-.}.
set -uo pipefail
out="${OUT:-.}"
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))"
python -m pytest -q --gpu -m gpu 2>&1 | tee "$out/gpu_tier.log"
ctt bench gpu --out "$out/bench_gpu.csv"
