#!/usr/bin/env bash
# The conformer sampler's field in float32 (the default) against float64, and
# RDKit ETKDGv3 + MMFF94 for the time, on the first N held-out QM9 molecules
# (K = 10, one thread each; the other settings the defaults of the time, now
# given: rk4 in 10 steps, MMFF94 polish by conjugate gradients in 200 steps).
# Runs alternate (float, double, RDKit) and repeat, so load drifts touch all
# three alike; the table reports each run.
#   tools/experiments/conformers_precision.sh [N] [REPEATS]
# Results: tools/experiments/results/conformers_precision/ (table.md, run.txt;
# the per-run logs). A finished run is kept and skipped when run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-100}
repeats=${2:-2}
enf=${ENF:-build/enf}
py=${PYTHON:-/usr/bin/python3}
out=tools/experiments/results/conformers_precision
work=runs/conformers_precision
mkdir -p "$out" "$work"
source tools/experiments/conformer_runs.sh
"$py" -c 'import rdkit' 2> /dev/null || { echo "RDKit is missing: apt-get install python3-rdkit" >&2; exit 1; }
ref=$work/ref$n.sdf
[ -s "$ref" ] || "$enf" conformers eval --reference qm9:test --held-out --limit "$n" --write-reference "$ref" --force \
  > /dev/null 2>&1
# The machine and commands, written when the first run starts (kept while runs resume).
[ -s "$out/run.txt" ] || {
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "enf: $("$enf" --version | head -n 2 | tr -s " \n" " ")"
  echo "commands: $enf conformers eval --reference REF --model qm9-conformers --n 10 --seed 0 --threads 1 --sample-steps 10 --polish-method cg --sample-precision float|double;"
  echo "          $py tools/experiments/rdkit_conformers.py REF OUT.sdf 10 0, judged by $enf conformers eval --reference REF --generated OUT.sdf"
  echo "REF: $enf conformers eval --reference qm9:test --held-out --limit $n --write-reference REF"
} > "$out/run.txt"
for r in $(seq 1 "$repeats"); do
  for p in float double; do
    enf_run "$out/enf_${p}_$r.md" "$out/enf_${p}_$r.log" --reference "$ref" --model qm9-conformers --n 10 --seed 0 \
      --threads 1 --sample-steps 10 --polish-method cg --sample-precision "$p" --label "enf, sampled in $p"
  done
  rdkit_run "$ref" "$out/rdkit_$r.md" "$out/rdkit_$r.log" "$work/rdkit_$r.sdf"
done
# One table: the header of the first, then every run's row with its repeat.
{
  head -n 2 "$out/enf_float_1.md"
  for r in $(seq 1 "$repeats"); do
    for f in "$out/enf_float_$r.md" "$out/enf_double_$r.md" "$out/rdkit_$r.md"; do
      tail -n 1 "$f" | sed "s/^| /| (run $r) /"
    done
  done
} > "$out/table.md"
cat "$out/run.txt" "$out/table.md"
