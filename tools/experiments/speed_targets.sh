#!/usr/bin/env bash
# Issue 13's targets, measured: each benchmark the issue's side-by-side table
# names (the same work as en_flows' rows there: random E-NF models at
# initialisation, batch 100, the same tolerances and precisions), and the
# scaling curves. One JSON file per case in OUT; a case whose file exists is
# not rerun (resumable: delete a file to measure it again). Run it on a quiet
# machine: the figures are only as good as the machine was idle.
#   ENF=build/enf tools/experiments/speed_targets.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
enf=${ENF:-build/enf}
out=${1:-tools/experiments/results/speed_targets}
mkdir -p "$out"

case_json() {  # case_json NAME cmd...: stdout of cmd to OUT/NAME.json unless it exists
  local file="$out/$1.json"
  shift
  if [ -s "$file" ]; then echo "speed_targets: $file exists, kept"; return; fi
  echo "speed_targets: $*"
  "$@" --format json > "$file.part"
  mv "$file.part" "$file"
}

# Training iteration at initialisation (batch 100, Hutchinson, dopri5 1e-4 both ways, float32).
case_json step_dw4 "$enf" bench step --system dw4 --train-steps 0 --repeats 5 --eval-samples 1
case_json step_lj13 "$enf" bench step --system lj13 --train-steps 0 --repeats 5 --eval-samples 1
# The field with one Hutchinson tangent, and one adjoint VJP, batch 100.
case_json field "$enf" bench field --cases dw4,lj13 --precision float
# log p(x), exact trace, 1e-7, float32: 1000 DW4 and 100 LJ13 test structures.
case_json score_dw4 "$enf" bench score --system dw4 --structures 1000 --rtol 1e-7 --atol 1e-7 --precision float --repeat 3
case_json score_lj13 "$enf" bench score --system lj13 --structures 100 --rtol 1e-7 --atol 1e-7 --precision float --repeat 3
# Sampling 1000 structures at 1e-4 (float32).
case_json sample_dw4 "$enf" bench sample --system dw4 --structures 1000 --repeat 5
case_json sample_lj13 "$enf" bench sample --system lj13 --structures 1000 --repeat 3
# The pretrained QM9 model: sampling, and the NLL of 20 test molecules (Gaussian Hutchinson, 1e-4).
case_json sample_qm9 "$enf" bench sample --system qm9 --structures 20 --repeat 3
case_json score_qm9_double "$enf" bench score --system qm9 --structures 20 --rtol 1e-4 --atol 1e-4 --repeat 3
case_json score_qm9_float "$enf" bench score --system qm9 --structures 20 --rtol 1e-4 --atol 1e-4 --precision float --repeat 3
# The scaling curves (tables in scaling.md, plots beside them).
if [ -s "$out/scaling/scaling.json" ]; then
  echo "speed_targets: $out/scaling exists, kept"
else
  "$enf" bench scaling --out "$out/scaling.part" > "$out/scaling.md.part"
  rm -rf "$out/scaling" && mv "$out/scaling.part" "$out/scaling" && mv "$out/scaling.md.part" "$out/scaling/scaling.md"
fi
{ echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "Build: $("$enf" --version | head -2 | tr -s " \n" " ")"; } > "$out/machine.txt"
echo "speed_targets: done, results in $out"
