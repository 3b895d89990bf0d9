#!/usr/bin/env bash
# The polish's minimiser and the sampler's steps, chosen on held-out QM9
# molecules that the 1000-molecule evaluation (conformers_qm9.sh) does not
# report: the held-out tenth of the shipped split from its 1001st molecule on
# (309), so that the defaults are not tuned on the molecules they are judged
# on. K = 10, one thread each. Per repeat, alternated so that load drifts
# touch all alike:
#   cg10     --polish-method cg --sample-steps 10 (the defaults before)
#   lbfgs10  --sample-steps 10, L-BFGS polish
#   lbfgs5   --sample-steps 5 (today's defaults)
#   lbfgs3   --sample-steps 3
#   RDKit ETKDGv3 + MMFF94 (tools/experiments/rdkit_conformers.py), for the time
#   tools/experiments/conformers_polish.sh [REPEATS]
# Results: tools/experiments/results/conformers_polish/ (table.md, run.txt, the
# per-run tables and logs). A finished run is kept and skipped when run again.
set -euo pipefail
cd "$(dirname "$0")/../.."
repeats=${1:-2}
enf=${ENF:-build/enf}
py=${PYTHON:-/usr/bin/python3}
out=tools/experiments/results/conformers_polish
work=runs/conformers_polish
mkdir -p "$out" "$work"
source tools/experiments/conformer_runs.sh
"$py" -c 'import rdkit' 2> /dev/null || { echo "RDKit is missing: apt-get install python3-rdkit" >&2; exit 1; }
ref=$work/validation.sdf
if [ ! -s "$ref" ]; then
  "$enf" conformers eval --reference qm9:test --held-out --write-reference "$work/held_out.sdf" --force > /dev/null 2>&1
  # Every record after the 1000th (records end with $$$$).
  awk 'r >= 1000 {print} /^\$\$\$\$$/ {r++}' "$work/held_out.sdf" > "$ref.part"
  mv "$ref.part" "$ref"
fi
declare -A args=([cg10]="--polish-method cg --sample-steps 10" [lbfgs10]="--sample-steps 10" [lbfgs5]="--sample-steps 5"
                 [lbfgs3]="--sample-steps 3")
configs=(cg10 lbfgs10 lbfgs5 lbfgs3)
# The machine and commands, written when the first run starts (kept while runs resume).
[ -s "$out/run.txt" ] || {
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "enf: $("$enf" --version | head -n 2 | tr -s " \n" " ")"
  echo "molecules: $(grep -c '^\$\$\$\$$' "$ref") (REF: $enf conformers eval --reference qm9:test --held-out --write-reference ALL, its records after the 1000th)"
  for c in "${configs[@]}"; do
    echo "$c: $enf conformers eval --reference REF --model qm9-conformers --n 10 --seed 0 --threads 1 ${args[$c]}"
  done
  echo "rdkit: $py tools/experiments/rdkit_conformers.py REF OUT.sdf 10 0, judged by $enf conformers eval --reference REF --generated OUT.sdf"
} > "$out/run.txt"
for r in $(seq 1 "$repeats"); do
  for c in "${configs[@]}"; do
    # shellcheck disable=SC2086
    enf_run "$out/${c}_$r.md" "$out/${c}_$r.log" --reference "$ref" --model qm9-conformers --n 10 --seed 0 --threads 1 \
      ${args[$c]} --label "enf $c"
  done
  rdkit_run "$ref" "$out/rdkit_$r.md" "$out/rdkit_$r.log" "$work/rdkit_$r.sdf"
done
# One table: the header of the first, then every run's row with its repeat,
# and each enf run's polish time (ms per conformer, from its log).
{
  head -n 2 "$out/cg10_1.md"
  for r in $(seq 1 "$repeats"); do
    for c in "${configs[@]}" rdkit; do
      tail -n 1 "$out/${c}_$r.md" | sed "s/^| /| (run $r) /"
    done
  done
  echo
  for r in $(seq 1 "$repeats"); do
    for c in "${configs[@]}"; do
      echo "run $r, $c: $(grep -o 'polish: [^;]* ms per conformer' "$out/${c}_$r.log" | tail -n 1)"
    done
  done
} > "$out/table.md"
cat "$out/run.txt" "$out/table.md"
