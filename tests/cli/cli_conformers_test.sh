#!/usr/bin/env bash
# Issue 15, end to end: a tiny conformer model trained by enf train, then
# enf conformers (SMILES and SDF inputs, thread-count independence, --dedup,
# unsupported molecules, outputs, SIGTERM), enf score on its geometries, and
# enf sample / eval pointing elsewhere.
# Usage: cli_conformers_test.sh path/to/enf (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
model="$tmp/run/best"
tiny_conformer_model "$tmp/run" 0.1

# sdf_summary FILE: one line per record: title|elements|bonds|log-likelihood.
sdf_summary() {
  python3 - "$1" << 'EOF'
import sys
for rec in open(sys.argv[1]).read().split("$$$$\n"):
    lines = rec.split("\n")
    if len(lines) < 4:
        continue
    na, nb = int(lines[3][:3]), int(lines[3][3:6])
    elems = "".join(l.split()[3] for l in lines[4:4 + na])
    # bonds as unordered pairs (a file may write "2 1" for "1 2"), sorted
    pairs = sorted((min(int(l[:3]), int(l[3:6])), max(int(l[:3]), int(l[3:6])), int(l[6:9]))
                   for l in lines[4 + na:4 + na + nb])
    bonds = ";".join(f"{i}-{j}-{o}" for i, j, o in pairs)
    ll = lines[lines.index(">  <enf_log_likelihood>") + 1] if ">  <enf_log_likelihood>" in lines else "none"
    print(f"{lines[0]}|{elems}|{bonds}|{ll}")
EOF
}
finite_all() { python3 -c "
import math, sys
v = [float(l.rsplit('|', 1)[1]) for l in sys.stdin.read().split('\n') if l]
assert v and all(math.isfinite(x) for x in v), v"; }
fast=(--rtol 1e-4 --atol 1e-4)

# ---- a SMILES string
"$enf" conformers --model "$model" --input 'CCO ethanol' --n 4 --seed 3 --out "$tmp/e.sdf" 2> "$tmp/e.log"
check "SMILES: exit 0" test $? -eq 0
sdf_summary "$tmp/e.sdf" > "$tmp/e.txt"
check "SMILES: 4 records" test "$(wc -l < "$tmp/e.txt")" -eq 4
check "SMILES: each the input's 9 atoms (hydrogens added after), 8 bonds, its title" \
  test "$(cut -d'|' -f1-3 "$tmp/e.txt" | sort -u)" = "ethanol|CCOHHHHHH|1-2-1;1-4-1;1-5-1;1-6-1;2-3-1;2-7-1;2-8-1;3-9-1"
check "SMILES: a finite enf_log_likelihood each" finite_all < "$tmp/e.txt"
check "SMILES: 4 different geometries" test "$(awk 'p {print; p = 0} /V2000/ {p = 1}' "$tmp/e.sdf" | sort -u | wc -l)" -eq 4
check "SMILES: the summary counts molecules, conformers, connectivity" \
  grep -q '1 of 1 molecules, 4 conformers written.*0 dropped.*0 molecules skipped.*s per conformer.*equal the input.s in' "$tmp/e.log"
"$enf" conformers --model "$model" --input CCO --n 2 --format xyz --out "$tmp/e.xyz" 2> /dev/null
check "SMILES without a title: titled by the SMILES; --format xyz: 2 frames with the log-likelihood" \
  test "$(grep -c '^CCO enf_log_likelihood=-\?[0-9]' "$tmp/e.xyz")" -eq 2

# ---- an SDF file: the first 3 records of the shipped QM9 file (hydrogens explicit)
awk '{print} /^\$\$\$\$/ && ++n == 3 {exit}' datasets/data/qm9/qm9_first500.sdf > "$tmp/three.sdf"
sdf_summary "$tmp/three.sdf" | cut -d'|' -f1-3 | awk '{for (k = 0; k < 3; ++k) print}' > "$tmp/three.want"
"$enf" conformers --model "$model" --input "$tmp/three.sdf" --n 3 --threads 1 "${fast[@]}" --out "$tmp/t1.sdf" 2> /dev/null
check "SDF: exit 0" test $? -eq 0
check "SDF: 3 records per molecule, in order, with the input's titles, atom order and bonds" \
  cmp <(sdf_summary "$tmp/t1.sdf" | cut -d'|' -f1-3) "$tmp/three.want"
check "SDF: a finite enf_log_likelihood each" finite_all < <(sdf_summary "$tmp/t1.sdf")
# The header line holds Open Babel's time stamp (" OpenBabelMMDDYYHHmm3D"): left out.
no_stamp() { sed -E 's/^( OpenBabel)[0-9]{10}(3D)$/\1MMDDYYHHmm\2/' "$1"; }
"$enf" conformers --model "$model" --input "$tmp/three.sdf" --n 3 --threads 2 "${fast[@]}" --out "$tmp/t2.sdf" 2> /dev/null
check "--threads 1 and 2 write the same bytes" cmp <(no_stamp "$tmp/t1.sdf") <(no_stamp "$tmp/t2.sdf")
# A molecule's conformers depend on its record number, not on the other
# molecules: record 1 replaced by QM9's fourth molecule, records 2 and 3 give
# the same conformers.
{ awk '/^\$\$\$\$/ {n++; if (n == 4) {print; exit}; next} n == 3' datasets/data/qm9/qm9_first500.sdf
  awk 'n >= 1 {print} /^\$\$\$\$/ {n++}' "$tmp/three.sdf"; } > "$tmp/other.sdf"
"$enf" conformers --model "$model" --input "$tmp/other.sdf" --n 3 "${fast[@]}" --out "$tmp/t3.sdf" 2> /dev/null
check "a molecule's conformers depend on its record number, not on the other molecules" \
  test "$(sdf_summary "$tmp/t3.sdf" | cut -d'|' -f1 | uniq | tr '\n' ,)" = "qm9 gdb 4,qm9 gdb 2,qm9 gdb 3,"
check "  (the records of molecules 2 and 3: the same bytes)" \
  cmp <(no_stamp "$tmp/t3.sdf" | sed -n '/^qm9 gdb 2$/,$p') <(no_stamp "$tmp/t1.sdf" | sed -n '/^qm9 gdb 2$/,$p')
"$enf" conformers --model "$model" --input "$tmp/three.sdf" --n 5 --dedup 100 "${fast[@]}" --out "$tmp/d.sdf" 2> "$tmp/d.log"
check "--dedup 100: one conformer per molecule" test "$(sdf_summary "$tmp/d.sdf" | cut -d'|' -f1)" = "$(printf 'qm9 gdb 1\nqm9 gdb 2\nqm9 gdb 3')"
check "--dedup 100: says 12 were dropped" grep -q '3 conformers written.*12 dropped as duplicates' "$tmp/d.log"

# ---- unsupported molecules
out=$("$enf" conformers --model "$model" --input CCCl --n 2 --out "$tmp/c.sdf" 2>&1); code=$?
check "an unsupported element: exit 1 naming the molecule and the element" \
  bash -c "test $code -eq 1 && grep -q \"'CCCl'.*Cl\" <<< \"\$1\"" _ "$out"
check "  nothing written" test ! -e "$tmp/c.sdf"
printf 'CCO ethanol\nCCCl chloropropane\nC methane\n' > "$tmp/m.smi"
"$enf" conformers --model "$model" --input "$tmp/m.smi" --n 2 --skip-unsupported --out "$tmp/m.sdf" 2> "$tmp/m.log"
check "--skip-unsupported: exit 0, the others' conformers written" \
  test $? -eq 0 -a "$(sdf_summary "$tmp/m.sdf" | cut -d'|' -f1 | tr '\n' ,)" = "ethanol,ethanol,methane,methane,"
check "--skip-unsupported: one line naming the skipped molecule" grep -q "skipped molecule 2 'chloropropane'" "$tmp/m.log"
check "--skip-unsupported: counted in the summary" grep -q '1 molecules skipped' "$tmp/m.log"

# ---- outputs
cp "$tmp/e.sdf" "$tmp/e.keep"
"$enf" conformers --model "$model" --input CCO --n 2 --out "$tmp/e.sdf" 2> /dev/null
check "an existing --out: refused without --force (exit 2), left as it was" \
  bash -c "test $? -eq 2 && cmp -s '$tmp/e.sdf' '$tmp/e.keep'"
"$enf" conformers --model "$model" --input CCO --n 2 --out "$tmp/e.sdf" --force 2> /dev/null
check "  replaced with --force" test "$(sdf_summary "$tmp/e.sdf" | wc -l)" -eq 2
check "--help teaches: the model, examples with a SMILES and an SDF" \
  bash -c "'$enf' conformers --help | grep -q 'conditioned on the molecule' && '$enf' conformers --help | grep -q \"input 'CCO\" && '$enf' conformers --help | grep -q 'input mols.sdf'"

# ---- SIGTERM: the finished molecules are written, whole
awk '{print} /^\$\$\$\$/ && ++n == 200 {exit}' datasets/data/qm9/qm9_first500.sdf > "$tmp/many.sdf"
# The tiny model takes only its 50 training molecules' elements and sizes
# (--skip-unsupported); dopri5 samples slowly enough for a signal to arrive.
"$enf" conformers --model "$model" --input "$tmp/many.sdf" --n 4 --threads 1 --skip-unsupported --sample-method dopri5 \
  --out "$tmp/k.sdf" 2> "$tmp/k.log" &
signal_once_started $! "$tmp/k.log" 'conformers on' 0.5 TERM
if [ $code -eq 143 ]; then
  check "SIGTERM: whole molecules written (4 records each), the stop said" \
    bash -c "grep -q 'interrupted before any molecule was finished' '$tmp/k.log' && test ! -e '$tmp/k.sdf' ||
             test -e '$tmp/k.sdf' && test \$(( \$(grep -c '^\\\$\\\$\\\$\\\$' '$tmp/k.sdf') % 4 )) -eq 0 && grep -q 'interrupted' '$tmp/k.log'"
else
  check "SIGTERM: the run had finished (exit 0)" test $code -eq 0
fi

# ---- enf score on a conformer model
"$enf" score --model "$model" --input "$tmp/three.sdf" > "$tmp/s.csv" 2> /dev/null
check "score an SDF: exit 0, one finite row per record" python3 -c "
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert [r['name'] for r in rows] == ['qm9 gdb 1', 'qm9 gdb 2', 'qm9 gdb 3'], rows
assert all(math.isfinite(float(r['log_likelihood'])) for r in rows), rows" "$tmp/s.csv"
"$enf" score --model "$model" --input "$tmp/e.sdf" --rtol 1e-5 --atol 1e-5 --format json > "$tmp/s.json" 2> /dev/null
check "score enf conformers' output: its enf_log_likelihood again (coordinates rounded to 1e-4 Å)" python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
want = [float(l.rsplit('|', 1)[1]) for l in open(sys.argv[2]).read().split('\n') if l]
got = [r['log_likelihood'] for r in rows if 'summary' not in r]
assert len(got) == len(want) == 2 and all(abs(a - b) < 0.05 for a, b in zip(got, want)), (got, want)
assert rows[-1]['summary']['count'] == 2" "$tmp/s.json" <(sdf_summary "$tmp/e.sdf")

# ---- enf export: the same model without its training state
"$enf" export --model "$model" --out "$tmp/exported" > "$tmp/x.log" 2>&1
check "export: exit 0, weights and model.json only" \
  bash -c "test -f '$tmp/exported/weights.safetensors' -a ! -e '$tmp/exported/state.safetensors' && test \$(ls '$tmp/exported' | wc -l) -eq 2"
check "export: the training state is gone, where it came from is said" python3 -c "
import json, sys
m = json.load(open(sys.argv[1]))
assert 'training_state' not in m['extra'] and m['extra']['exported_from']['global_step'] > 0, m['extra']
assert m['system'] == 'qm9-conformers' and m['training']['objective'] == 'flow-matching'" "$tmp/exported/model.json"
"$enf" conformers --model "$tmp/exported" --input "$tmp/three.sdf" --n 3 --threads 1 "${fast[@]}" --out "$tmp/t4.sdf" 2> /dev/null
check "export: the exported model writes the same conformers, bytes and log-likelihoods" \
  cmp <(no_stamp "$tmp/t1.sdf") <(no_stamp "$tmp/t4.sdf")
out=$("$enf" export --model "$model" --out "$tmp/exported" 2>&1); code=$?
check "export over a checkpoint: refused without --force (exit 2)" test $code -eq 2

# ---- the commands that do not take a conformer model
out=$("$enf" sample --model "$model" --n 2 --out "$tmp/x.sdf" 2>&1); code=$?
check "enf sample: exit 1, use enf conformers" bash -c "test $code -eq 1 && grep -q 'use enf conformers' <<< \"\$1\"" _ "$out"
out=$("$enf" eval --model "$model" --data qm9:test 2>&1); code=$?
check "enf eval: exit 1, use enf conformers / enf score" \
  bash -c "test $code -eq 1 && grep -q 'enf conformers.*enf score' <<< \"\$1\"" _ "$out"
finish
