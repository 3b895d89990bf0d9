#!/usr/bin/env bash
# Conformer generation on held-out QM9 molecules (issue 15): enf's conformer
# model beside Open Babel (--gen3d, confab) and RDKit (ETKDGv3 + MMFF94), all
# judged by `enf conformers eval` against the DFT geometries on the same
# molecules: MAT, median best RMSD, COV@0.5 Å and COV@0.25 Å (heavy atoms,
# symmetry-aware), the share of conformers keeping the bonds, seconds per
# conformer.
#   tools/experiments/conformers_qm9.sh [N] [K] [MODEL] [OUT]
# N molecules (default 1000): the first N of qm9:test's held-out tenth (the
#   positions divisible by 10, which `enf train --split tenth` never trains on);
# K conformers per molecule (default 10);
# MODEL the enf conformer model (default datasets/models/qm9_conformers; when it
#   does not exist the enf row is left out and the table says so);
# OUT the output directory (default tools/experiments/results/conformers_qm9;
#   the SDFs there are large and not kept in git).
# Environment: ENF (default build/enf), PYTHON (a python3 with RDKit; default:
# the first of python3, /usr/bin/python3 that has it), SEED (default 0: enf's
# --seed and RDKit's randomSeed), THREADS (default 1: every method on one
# core, so the seconds per conformer compare).
# Methods:
#   enf       K conformers per molecule (enf conformers eval --model: drawn and
#             polished (MMFF94, 200 steps, since the polish became the default)
#             as enf conformers draws them, generation timed without scoring);
#   gen3d     obabel --gen3d (default speed) on the reference SDF: ONE conformer
#             per molecule (gen3d has no seed option; repeated runs would not be
#             independent draws one could reproduce), built from the graph (the
#             reference coordinates only give the stereo perceived from them);
#   confab    obabel --confab on the gen3d geometry (not the DFT one, which
#             would leak the answer), its defaults (RMSD cutoff 0.5 Å, energy
#             window 50 kcal/mol), --conf 10000; the first K conformers confab
#             writes per molecule are judged; time = gen3d's + confab's, per
#             judged conformer;
#   rdkit     tools/experiments/rdkit_conformers.py: ETKDGv3 with randomSeed
#             SEED, K conformers, MMFF94-optimized; molecules RDKit fails on
#             are missing (out of MAT, not covered).
# Resumable: a stage whose output exists is skipped; every output is written
# through a .part file and a rename, so a stopped run leaves no half file.
# Writes OUT/table.md: one row per method, the commands, the machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000}
k=${2:-10}
model=${3:-datasets/models/qm9_conformers}
out=${4:-tools/experiments/results/conformers_qm9}
enf=${ENF:-build/enf}
seed=${SEED:-0}
threads=${THREADS:-1}
say() { echo "conformers_qm9: $*" >&2; }

# ---- prerequisites, all checked before any work
missing=0
[ -x "$enf" ] || { say "no enf program at $enf: build it (cmake --build build) or set ENF=path/to/enf"; missing=1; }
command -v obabel > /dev/null || { say "Open Babel's obabel is missing: apt-get install openbabel"; missing=1; }
py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$p" > /dev/null && "$p" -c 'import rdkit' 2> /dev/null; then py=$p; break; fi
done
[ -n "$py" ] || { say "RDKit is missing: apt-get install python3-rdkit (Debian's /usr/bin/python3), or set PYTHON to a python3 that imports rdkit"; missing=1; }
[ $missing -eq 0 ] || exit 1

mkdir -p "$out"
# A directory holds one (N, K, SEED): resuming with others would mix runs.
params="N=$n K=$k SEED=$seed"
if [ -f "$out/params.txt" ]; then
  [ "$(cat "$out/params.txt")" = "$params" ] ||
    { say "$out holds a run with $(cat "$out/params.txt"), not $params: use another OUT or remove it"; exit 1; }
else
  echo "$params" > "$out/params.txt.part" && mv "$out/params.txt.part" "$out/params.txt"
fi
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", b - a}'; }
records() { grep -c '^\$\$\$\$' "$1" || true; }
# judged FILE K: the records enf conformers eval --max-per-molecule K judges.
judged() { awk -v k="$2" 'NR == 1 || prev == "$$$$" {if (c[$0]++ < k) n++} {prev = $0} END {print n + 0}' "$1"; }
per() { awk -v s="$1" -v c="$2" 'BEGIN {if (c > 0) printf "%.3g", s / c; else printf ""}'; }
publish() { mv "$1.part" "$1"; }  # publish FILE: FILE.part becomes FILE
ref="$out/ref.sdf"
eval_cmd=("$enf" conformers eval --reference "$ref" --force)

# ---- 1. the reference molecules (DFT geometries), as SDF with bonds and titles
if [ ! -s "$ref" ]; then
  say "writing the first $n held-out molecules of qm9:test to $ref"
  "$enf" conformers eval --reference qm9:test --held-out --limit "$n" --write-reference "$ref" --force 2> "$out/ref.log.part"
  publish "$out/ref.log"
fi

# ---- 2. enf: generated and judged in one command (enf writes its outputs atomically)
enf_note=""
if [ -f "$model/model.json" ]; then
  if [ ! -s "$out/enf.md" ]; then
    say "enf: $k conformers of each molecule with $model"
    "${eval_cmd[@]}" --model "$model" --n "$k" --seed "$seed" --threads "$threads" --label "enf ($model)" \
      --save "$out/enf.sdf" --out "$out/enf.csv" > "$out/enf.md.part"
    publish "$out/enf.md"
  fi
else
  enf_note="The enf row is missing: no conformer model at $model (train one with enf train --system qm9-conformers, then pass its best/ directory as MODEL)."
  say "$enf_note"
fi

# ---- 3. Open Babel --gen3d: one conformer per molecule
if [ ! -s "$out/gen3d.seconds" ]; then
  say "obabel --gen3d"
  t0=$(now)
  obabel "$ref" -osdf -O "$out/gen3d.sdf.part" --gen3d > "$out/gen3d.log" 2>&1
  elapsed "$t0" "$(now)" > "$out/gen3d.seconds.part"
  publish "$out/gen3d.sdf"
  publish "$out/gen3d.seconds"
fi

# ---- 4. confab, started from the gen3d geometries
if [ ! -s "$out/confab.seconds" ]; then
  say "obabel --confab"
  t0=$(now)
  obabel "$out/gen3d.sdf" -osdf -O "$out/confab.sdf.part" --confab --conf 10000 > "$out/confab.log" 2>&1
  elapsed "$t0" "$(now)" > "$out/confab.seconds.part"
  publish "$out/confab.sdf"
  publish "$out/confab.seconds"
fi

# ---- 5. RDKit ETKDGv3 + MMFF94 (the script writes rdkit.sdf atomically)
if [ ! -s "$out/rdkit.seconds" ]; then
  say "RDKit ETKDGv3 + MMFF94 ($py)"
  "$py" tools/experiments/rdkit_conformers.py "$ref" "$out/rdkit.sdf" "$k" "$seed" 2> "$out/rdkit.log" |
    awk '$1 == "seconds_per_conformer" {print $2}' > "$out/rdkit.seconds.part"
  publish "$out/rdkit.seconds"
fi

# ---- 6. judge the other generators' files
judge() {  # judge NAME LABEL PER_MOLECULE SECONDS_PER_CONFORMER
  [ -s "$out/$1.md" ] && return 0
  say "judging $2"
  "${eval_cmd[@]}" --generated "$out/$1.sdf" --max-per-molecule "$3" --seconds-per-conformer "$4" --label "$2" \
    --out "$out/$1.csv" > "$out/$1.md.part" 2> "$out/$1.eval.log"
  publish "$out/$1.md"
}
gen3d_s=$(cat "$out/gen3d.seconds")
judge gen3d "Open Babel --gen3d" 1 "$(per "$gen3d_s" "$(records "$out/gen3d.sdf")")"
confab_s=$(awk -v a="$gen3d_s" -v b="$(cat "$out/confab.seconds")" 'BEGIN {printf "%.3f", a + b}')
judge confab "Open Babel confab (first $k)" "$k" "$(per "$confab_s" "$(judged "$out/confab.sdf" "$k")")"
judge rdkit "RDKit ETKDGv3 + MMFF94" "$k" "$(per "$(cat "$out/rdkit.seconds")" 1)"

# ---- 7. the table
{
  echo "# Conformers of $n held-out QM9 molecules, K = $k"
  echo
  rows=()
  for m in enf gen3d confab rdkit; do [ -s "$out/$m.md" ] && rows+=("$out/$m.md"); done
  head -n 2 "${rows[0]}"
  for r in "${rows[@]}"; do tail -n 1 "$r"; done
  echo
  [ -z "$enf_note" ] || { echo "$enf_note"; echo; }
  # Bonds of QM9 are perceived from the DFT geometry: where Open Babel could
  # not kekulize, every method gets its best guess (RDKit may refuse it: missing).
  if warned=$(grep -o 'warned while perceiving the bonds of [0-9]* references' "$out/ref.log"); then
    echo "References: Open Babel $warned (its bond orders there are a best guess, the same for every method;"
    echo "RDKit may refuse such a molecule, which then counts as missing). See OUT/ref.log and OUT/rdkit.log."
    echo
  fi
  echo "Best RMSD: heavy atoms, after optimal superposition, minimum over the molecule's symmetries (Open Babel"
  echo "automorphisms), against the DFT geometry; MAT its mean, COV@d the share of molecules whose best RMSD"
  echo "is < d; a molecule without any conformer is missing: out of MAT and the median, not covered. Bonds kept:"
  echo "conformers whose bonds perceived by Open Babel are the reference's. Stereo kept: of the conformers of"
  echo "references with tetrahedral stereocentres (Open Babel's perception from the DFT geometry), those with"
  echo "every centre's handedness (a mirror image is wrong); RDKit and gen3d take it from the reference geometry,"
  echo "enf reflects its samples to it (--stereo keep: its model is reflection-invariant). Seconds per conformer on $threads"
  echo "thread(s): enf's generation (no scoring); gen3d's wall time per conformer; confab's gen3d + confab time"
  echo "per judged conformer; RDKit's embedding + optimization (no I/O)."
  echo
  echo "Commands (from the repository root; OUT = $out):"
  echo
  echo '```'
  echo "$enf conformers eval --reference qm9:test --held-out --limit $n --write-reference OUT/ref.sdf"
  echo "$enf conformers eval --reference OUT/ref.sdf --model $model --n $k --seed $seed --threads $threads --save OUT/enf.sdf --out OUT/enf.csv"
  echo "obabel OUT/ref.sdf -osdf -O OUT/gen3d.sdf --gen3d"
  echo "obabel OUT/gen3d.sdf -osdf -O OUT/confab.sdf --confab --conf 10000"
  echo "$py tools/experiments/rdkit_conformers.py OUT/ref.sdf OUT/rdkit.sdf $k $seed"
  echo "$enf conformers eval --reference OUT/ref.sdf --generated OUT/{gen3d,confab,rdkit}.sdf --max-per-molecule {1,$k,$k} --seconds-per-conformer S"
  echo '```'
  echo
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "enf: $("$enf" --version | head -n 2 | tr -s ' \n' ' ')"
  echo "Open Babel: $(obabel -V 2>&1 | head -n 1); RDKit: $("$py" -c 'import rdkit; print(rdkit.__version__)')"
} > "$out/table.md.part"
publish "$out/table.md"
cat "$out/table.md"
