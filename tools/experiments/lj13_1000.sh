#!/usr/bin/env bash
# LJ13 with 1000 training structures (the first rows of the shipped validation
# split: LJ13 ships no training split), the E-NF paper's setting (batch 100,
# lr 5e-4, H = 32, L = 3, Hutchinson, dopri5 at 1e-4); validation on the last
# 1000 rows of that split; test NLL on the test split with the Hutchinson trace
# as the reference evaluates LJ13, and with the exact trace.
#   tools/experiments/lj13_1000.sh [EPOCHS] [THREADS] [TEST_ROWS]   (ENF=path/to/enf to use another binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
epochs=${1:-300}
threads=${2:-0}
rows=${3:-1000}
run=runs/lj13_1000_e${epochs}
test=lj13:test
rm -rf "$run"
${ENF:-build/enf} train --system lj13 --n-data 1000 --val-samples 200 --batch 100 --epochs "$epochs" --val-interval 10 \
  --threads "$threads" --out "$run"
${ENF:-build/enf} score --model "$run/best" --input "$test" --trace rademacher --rtol 1e-5 --atol 1e-5 --threads "$threads" \
  --format json > "$run/test_scores_hutchinson.json"
${ENF:-build/enf} eval --model "$run/best" --data "$test" --limit "$rows" --samples 1000 --threads "$threads" \
  --plots "$run/plots" --run "$run" \
  --precision double  # the README's results were made in float64, before enf eval's default became auto (float at 1e-5)
