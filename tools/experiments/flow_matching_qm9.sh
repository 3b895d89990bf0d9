#!/usr/bin/env bash
# Flow matching on QM9 (issue 14): the reference-size QM9 flow (H = 64, L = 6)
# trained by flow matching on the shipped 13 083-molecule split without its
# held-out tenth (--split tenth: every molecule whose 0-based position is
# divisible by 10 is never trained on), for a time budget; then
#  1. NLL on the held-out tenth (enf score --stride 10 reads exactly those),
#     Gaussian Hutchinson at 1e-5, one dequantization draw per molecule, for
#     this model and for the pretrained E-NF model on the same molecules;
#  2. 1000 generated molecules with atom/molecule stability and validity.
#   tools/experiments/flow_matching_qm9.sh MINUTES [THREADS] [LIMIT] [-- extra enf train options]
# LIMIT: held-out molecules scored (0: all 1309). Resumable: an existing run
# is continued (--resume) up to its budget, and a larger MINUTES extends it.
set -euo pipefail
cd "$(dirname "$0")/../.."
minutes=${1:?minutes}
threads=${2:-0}
limit=${3:-0}
shift $(($# < 3 ? $# : 3))
[ "${1:-}" = "--" ] && shift
enf=${ENF:-build/enf}
run=runs/fm_qm9
out=tools/experiments/results/fm_qm9
mkdir -p "$out"
if [ -d "$run/last" ]; then
  "$enf" train --resume "$run" --max-time "$minutes" --threads "$threads"
else
  rm -rf "$run"
  "$enf" train --system qm9 --objective flow-matching --split tenth --max-time "$minutes" --threads "$threads" \
    --out "$run" "$@"
fi
score=(score --input qm9:test --stride 10 --limit "$limit" --trace gaussian --rtol 1e-5 --atol 1e-5
  --threads "$threads" --format json)
"$enf" "${score[@]}" --model "$run/best" | tail -n 1 > "$out/heldout_nll.json"
[ -d "$run/pretrained" ] || "$enf" import --reference qm9-pretrained --out "$run/pretrained"
"$enf" "${score[@]}" --model "$run/pretrained" | tail -n 1 > "$out/heldout_nll_pretrained.json"
"$enf" sample --model "$run/best" --n 1000 --seed 0 --threads "$threads" --out "$run/samples_1000.sdf" --force \
  > "$run/samples_1000.csv" 2> "$out/sample.log"
"$enf" metrics --input "$run/samples_1000.sdf" --reference qm9:test --format json > "$out/metrics_1000.json"
{
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "enf: $("$enf" --version | head -n 2 | tr -s ' \n' ' ')"
  echo "steps: $(grep -c '"type":"step"' "$run/metrics.jsonl")"
} > "$out/run.txt"
cat "$out/run.txt" "$out/heldout_nll.json" "$out/heldout_nll_pretrained.json" "$out/metrics_1000.json"
