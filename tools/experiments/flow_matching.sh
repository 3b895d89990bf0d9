#!/usr/bin/env bash
# Flow matching on a particle system (issue 14): enf train --objective
# flow-matching on 1000 training structures for a time budget, then the same
# evaluation as the maximum-likelihood results (dw4_1000.sh, lj13_1000.sh), and
# the cost of sampling: field evaluations per structure with dopri5 (1e-5) and
# with rk4 in a few fixed steps.
#   tools/experiments/flow_matching.sh SYSTEM MINUTES [THREADS] [TAG] [-- extra enf train options]
# SYSTEM: dw4, lj13 or lj55. Resumable: a run directory that exists is
# continued (--resume; its budget is the one it was started with), and so is
# its evaluation (enf eval --work: LJ55 with the exact trace takes hours).
# Results: runs/fm_<system>_<minutes>min<tag>/ and, copied,
# tools/experiments/results/fm_<system>_<minutes>min<tag>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
sys=${1:?system}
minutes=${2:?minutes}
threads=${3:-0}
tag=${4:-}
shift $(($# < 4 ? $# : 4))
[ "${1:-}" = "--" ] && shift
extra=("$@")
enf=${ENF:-build/enf}
run=runs/fm_${sys}_${minutes}min${tag}
out=tools/experiments/results/fm_${sys}_${minutes}min${tag}
mkdir -p "$out"

load=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
train=("$enf" train --system "$sys" --objective flow-matching --n-data 1000 --max-time "$minutes" --threads "$threads"
  --out "$run" "${extra[@]}")
# LJ55's exact-trace evaluation outlasts a session (and a fresh checkout has
# no runs/): its trained model and the finished log-likelihoods are kept under
# $out, in the repository, and the evaluation continues from them.
model=$run/best
work=$run/eval_exact
curve=$run  # the directory whose metrics.jsonl holds the training curve
if [ "$sys" = lj55 ]; then
  model=$out/model
  work=$out/eval_exact
  curve=$model
fi
if [ "$model" != "$run/best" ] && [ -f "$model/model.json" ]; then
  echo "flow_matching.sh: evaluating the kept model $model (remove it to train again)" >&2
elif [ -d "$run/last" ]; then
  "$enf" train --resume "$run" --threads "$threads"
else
  rm -rf "$run"
  "${train[@]}"
fi
if [ "$model" != "$run/best" ] && [ ! -f "$model/model.json" ]; then
  rm -rf "$model.part"
  cp -r "$run/best" "$model.part"
  cp "$run/metrics.jsonl" "$model.part/"
  mv "$model.part" "$model"
fi

precision=double
case "$sys" in
  dw4) limit=0 samples=10000 ;;   # the whole test split, as dw4_1000.sh
  *) limit=1000 samples=1000 ;;   # the first 1000 test structures (exact trace), as lj13_1000.sh
esac
# LJ55's exact trace is 165 directions a step (~30 s a structure on one core
# in float32, twice that in float64): its field runs in float32, which changes
# log p by < 4e-4 nats at rtol 1e-5 (README).
[ "$sys" = lj55 ] && precision=float
if [ "$sys" = lj13 ]; then
  # The reference's LJ13 evaluation: Hutchinson over the whole test split.
  "$enf" score --model "$model" --input lj13:test --trace rademacher --rtol 1e-5 --atol 1e-5 --threads "$threads" \
    --format json | tail -n 1 > "$out/test_nll_hutchinson.json"
fi
"$enf" eval --model "$model" --data "$sys:test" --limit "$limit" --samples "$samples" --threads "$threads" \
  --plots "$out" --run "$curve" --force --work "$work" \
  --precision "$precision" > "$out/eval.md.part"
mv "$out/eval.md.part" "$out/eval.md"  # whole or absent: a stopped evaluation leaves no empty eval.md

mkdir -p "$run"
# Sampling cost: 1000 structures, dopri5 at the evaluation tolerance and rk4
# with 5, 10 and 20 fixed steps (the stderr line gives NFE per structure).
{
  for solver in "--method dopri5 --rtol 1e-5 --atol 1e-5" "--method rk4 --fixed-steps 5" \
    "--method rk4 --fixed-steps 10" "--method rk4 --fixed-steps 20"; do
    # shellcheck disable=SC2086
    "$enf" sample --model "$model" --n 1000 --out "$run/samples.npy" --force --threads "$threads" $solver 2>&1 \
      >/dev/null | grep 'field evaluations'
  done
} > "$out/sampling_nfe.txt"

steps=$(grep -c '"type":"step"' "$curve/metrics.jsonl")
{
  echo "command: ${train[*]}"
  echo "machine: $cpu, $(nproc) cores; load average at start: $load"
  echo "steps: $steps; mean step time: $(python3 -c "
import json
s=[json.loads(l)['seconds'] for l in open('$curve/metrics.jsonl') if '\"type\":\"step\"' in l]
print('%.4f s' % (sum(s)/len(s)))")"
  echo "enf: $("$enf" --version | head -n 2 | tr -s " \n" " ")"
} > "$out/run.txt"
cat "$out/run.txt" "$out/eval.md" "$out/sampling_nfe.txt"
