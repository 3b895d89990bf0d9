#!/usr/bin/env bash
# The official pretrained E-NF QM9 model (datasets/models/en_flows_qm9_pretrained)
# imported into enf, then:
#  1. test NLL on a spread-out subset of the shipped EDM test split (every 13th of
#     its 13 083 molecules, the first 1000 of those) as the reference evaluated it:
#     Gaussian Hutchinson trace, dopri5 at rtol = atol = 1e-4 (eval_analyze_qm9.py
#     never leaves training mode), one dequantization draw per molecule;
#  2. the same NLL exactly (exact trace, rtol = atol = 1e-6) on a smaller subset
#     (every 654th molecule: 21), beside the reference protocol on those same 21;
#  3. 1000 generated molecules (sizes from p(N), dopri5 at 1e-4 as the reference
#     samples) to SDF, with atom/molecule stability, validity, uniqueness and
#     novelty against the test split; and a picture of the first 12.
#   tools/experiments/qm9_pretrained.sh [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
enf=${ENF:-build/enf}
threads=${1:-0}
run=runs/qm9_pretrained
test=qm9:test
mkdir -p "$run"
"$enf" import --reference qm9-pretrained --out "$run/model" --force  # (re-runs replace their outputs)
"$enf" score --model "$run/model" --input "$test" --stride 13 --limit 1000 --trace gaussian --rtol 1e-4 --atol 1e-4 \
  --threads "$threads" --format json > "$run/nll_reference_protocol_1000.json" 2> "$run/nll_reference_protocol_1000.log"
"$enf" score --model "$run/model" --input "$test" --stride 654 --trace gaussian --rtol 1e-4 --atol 1e-4 \
  --threads "$threads" --format json > "$run/nll_reference_protocol_21.json" 2> "$run/nll_reference_protocol_21.log"
"$enf" score --model "$run/model" --input "$test" --stride 654 --trace exact --rtol 1e-6 --atol 1e-6 \
  --threads "$threads" --format json > "$run/nll_exact_21.json" 2> "$run/nll_exact_21.log"
"$enf" sample --model "$run/model" --n 1000 --seed 0 --rtol 1e-4 --atol 1e-4 --trace gaussian --threads "$threads" \
  --out "$run/samples_1000.sdf" --force > "$run/samples_1000.csv"
"$enf" metrics --input "$run/samples_1000.sdf" --reference "$test" --format json > "$run/metrics_1000.json"
"$enf" sample --model "$run/model" --n 12 --seed 0 --rtol 1e-4 --atol 1e-4 --no-score --threads "$threads" \
  --out "$run/samples_12.svg" --force > /dev/null
grep -h "^NLL" "$run"/*.log
cat "$run/samples_1000.csv" "$run/metrics_1000.json"
