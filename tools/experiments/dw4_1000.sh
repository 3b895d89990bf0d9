#!/usr/bin/env bash
# DW4 with 1000 training structures, the E-NF paper's setting (main_dw4_lj13.py:
# batch 100, lr 5e-4, H = 32, L = 3, Hutchinson, dopri5 at 1e-4), then the test
# NLL over the whole 10 000-structure test split with the exact trace.
#   tools/experiments/dw4_1000.sh [EPOCHS] [THREADS]   (ENF=path/to/enf to use another binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=${1:-300}
threads=${2:-0}
run=runs/dw4_1000_e${epochs}
rm -rf "$run"
${ENF:-build/enf} train --system dw4 --n-data 1000 --val-samples 1000 --batch 100 --epochs "$epochs" --val-interval 10 \
  --threads "$threads" --out "$run"
${ENF:-build/enf} eval --model "$run/best" --data dw4:test --limit 0 \
  --samples 10000 --threads "$threads" --plots "$run/plots" --run "$run" \
  --precision double  # the README's results were made in float64, before enf eval's default became auto (float at 1e-5)
