#!/usr/bin/env bash
# Issue 15 follow-ups. (1) enf conformers samples with its own solver, rk4 in
# 10 fixed steps by default (40 field evaluations per conformer), and scores
# with the solver group (dopri5 1e-5, exact trace) as before;
# --sample-method dopri5 writes the bytes enf wrote when one solver did both
# (tests/data/conformers_dopri5: the binary of b3bb9f6); enf conformers eval
# draws the same conformers from the same options. (2) A conformer model
# records the largest molecule and the elements of its training data, and
# enf conformers, conformers eval and score refuse others (one line each,
# counted with --skip-unsupported); the shipped model, without the record,
# keeps QM9's limits.
# Usage: cli_conformers_solvers_test.sh path/to/enf (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
golden=tests/data/conformers_dopri5
# The header line holds Open Babel's time stamp (" OpenBabelMMDDYYHHmm3D"): left out.
no_stamp() { sed -E 's/^( OpenBabel)[0-9]{10}(3D)$/\1MMDDYYHHmm\2/' "$1"; }
coordinates() { awk '/V2000/ {n = substr($0, 1, 3) + 0; next} n > 0 {print substr($0, 1, 30); n--}' "$1"; }
records() { grep -c '^\$\$\$\$' "$1"; }
titles() { awk 'NR == 1 || prev == "$$$$" {print} {prev = $0}' "$1"; }
export -f coordinates titles no_stamp  # for the checks' bash -c
# Cheap scoring where the scores are not what is tested.
cheap=(--rtol 1e-3 --atol 1e-3 --trace gaussian)

# ---- (1) the sampler: rk4 in 5 steps by default, the scoring solver unchanged
"$enf" conformers --input 'CO methanol' --n 2 --seed 2 --threads 1 "${cheap[@]}" --out "$tmp/d.sdf" 2> "$tmp/d.log"
check "default: exit 0, 2 conformers" test $? -eq 0 -a "$(records "$tmp/d.sdf")" = 2
check "default: sampled by rk4 in 5 steps in float32, scored by the solver group's dopri5 in float64" \
  grep -q 'sampled by rk4 in 5 steps (float32), scored by dopri5 at rtol 0.001, atol 0.001 (float64) with the gaussian trace' "$tmp/d.log"
check "default: 20 field evaluations per conformer sampling (rk4: 4 per step), the scoring's apart" \
  grep -qE 'field evaluations per conformer: 20\.0 sampling, [0-9]+\.[0-9] scoring\)' "$tmp/d.log"
"$enf" conformers --input 'CO methanol' --n 2 --seed 2 --threads 1 "${cheap[@]}" --sample-steps 10 --out "$tmp/d10.sdf" \
  2> "$tmp/d10.log"
check "--sample-steps 10: 40 field evaluations per conformer sampling" grep -q 'conformer: 40\.0 sampling' "$tmp/d10.log"
"$enf" conformers --input 'CO methanol' --n 2 --seed 2 --threads 1 "${cheap[@]}" --sample-method euler --sample-steps 7 \
  --out "$tmp/e7.sdf" 2> "$tmp/e7.log"
check "--sample-method euler --sample-steps 7: 7 per conformer" grep -q 'conformer: 7\.0 sampling' "$tmp/e7.log"

# The old behaviour: one solver (dopri5, rtol = atol = 1e-5, float64) sampled and scored.
"$enf" conformers --input "$golden/two.smi" --n 2 --seed 1 --threads 1 --sample-method dopri5 --sample-precision double \
  --polish none --out "$tmp/old.sdf" 2> "$tmp/old.log"
check "--sample-method dopri5 --sample-precision double: exit 0, sampled and scored by dopri5 at 1e-5 in float64" \
  bash -c "test $? -eq 0 && grep -q 'sampled by dopri5 at rtol 1e-05, atol 1e-05 (float64), scored by dopri5 at rtol 1e-05, atol 1e-05 (float64) with the exact trace' '$tmp/old.log'"
# The fixture was written by a Release build (-march=native); another build
# type (the sanitizers' RelWithDebInfo) or CPU may round differently in the
# last bits, and is then held to that rounding: the same records, atoms and
# bonds, coordinates within the SDF's last digit, log-likelihoods within 1e-8
# relative (a sampler other than dopri5 at 1e-5 moves them by far more).
same_as_golden() {
  if cmp -s <(no_stamp "$1") <(no_stamp "$golden/shipped_seed1_n2.sdf"); then
    echo "     (byte for byte)"
    return 0
  fi
  python3 - "$1" "$golden/shipped_seed1_n2.sdf" << 'PY'
import sys
def records(path):
    out = []
    for rec in open(path).read().split("$$$$\n")[:-1]:
        lines = rec.split("\n")
        na, nb = int(lines[3][:3]), int(lines[3][3:6])
        xyz = [[float(v) for v in l.split()[:3]] for l in lines[4:4 + na]]
        rest = [lines[0]] + [l[30:] for l in lines[4:4 + na]] + lines[4 + na:4 + na + nb]
        ll = float(lines[lines.index(">  <enf_log_likelihood>") + 1])
        out.append((rest, xyz, ll))
    return out
a, b = records(sys.argv[1]), records(sys.argv[2])
assert len(a) == len(b) == 4, (len(a), len(b))
for (ra, xa, la), (rb, xb, lb) in zip(a, b):
    assert ra == rb, (ra, rb)
    assert all(abs(u - v) <= 1.0001e-4 for pa, pb in zip(xa, xb) for u, v in zip(pa, pb)), (xa, xb)
    assert abs(la - lb) <= 1e-8 * abs(lb), (la, lb)
print("     (not byte for byte: equal to the last bits' rounding)")
PY
}
export -f same_as_golden
export golden
check "--sample-method dopri5 --sample-precision double: what enf wrote before the split (b3bb9f6)" same_as_golden "$tmp/old.sdf"
check "  more field evaluations sampling than rk4's 40" \
  bash -c "grep -oE 'conformer: [0-9.]+ sampling' '$tmp/old.log' | awk '{exit !(\$2 > 40)}'"
"$enf" conformers --input "$golden/two.smi" --n 2 --seed 1 --threads 1 "${cheap[@]}" --polish none --out "$tmp/new.sdf" \
  2> /dev/null
check "the default sampler draws other conformers than dopri5, of the same molecules" \
  bash -c "! cmp -s <(coordinates '$tmp/new.sdf') <(coordinates '$tmp/old.sdf') && cmp <(titles '$tmp/new.sdf') <(titles '$tmp/old.sdf')"
check "  (so the comparison with what enf wrote before refuses them)" bash -c "! same_as_golden '$tmp/new.sdf' > /dev/null 2>&1"

# The sampling field in float32 (the default) against float64: other bits, the
# same conformers to rounding (rk4 in 10 steps, unpolished, so nothing but the
# field's rounding differs: measured 6e-7 Å; the bound 1e-4 Å leaves room for
# another CPU's rounding and is still far below the 0.1 Å RMSD resolves). XYZ
# output: 10 significant digits (the SDF's 4 decimals hide the difference).
for p in float double; do
  "$enf" conformers --input "$golden/two.smi" --n 2 --seed 1 --threads 1 "${cheap[@]}" --polish none \
    --sample-steps 10 --sample-precision "$p" --format xyz --out "$tmp/prec_$p.xyz" 2> /dev/null
done
check "--sample-precision float (default) and double: the same conformers within 1e-4 Å, not the same bits" python3 -c "
import sys
def xyz(path):
    return [float(v) for l in open(path) for f in [l.split()] if len(f) == 4 and f[0].isalpha() for v in f[1:]]
a, b = xyz(sys.argv[1]), xyz(sys.argv[2])
assert len(a) == len(b) == 132, (len(a), len(b))
d = max(abs(u - v) for u, v in zip(a, b))
assert 0 < d <= 1e-4, d" "$tmp/prec_float.xyz" "$tmp/prec_double.xyz"

# enf conformers eval: the same sampler, options and seeds as enf conformers.
awk '{print} /^\$\$\$\$/ && ++n == 2 {exit}' datasets/data/qm9/qm9_first500.sdf > "$tmp/ref.sdf"
for sampler in "" "--sample-precision double" "--sample-method dopri5"; do
  # shellcheck disable=SC2086
  "$enf" conformers eval --reference "$tmp/ref.sdf" --model qm9-conformers --n 2 --seed 4 --rtol 1e-3 --atol 1e-3 \
    $sampler --save "$tmp/ev.sdf" --force > /dev/null 2> "$tmp/ev.log"
  # shellcheck disable=SC2086
  "$enf" conformers --input "$tmp/ref.sdf" --n 2 --seed 4 "${cheap[@]}" $sampler --out "$tmp/cf.sdf" --force 2> /dev/null
  check "conformers eval ${sampler:-(default)}: enf conformers' conformers, coordinate for coordinate" \
    bash -c "test \$(coordinates '$tmp/ev.sdf' | wc -l) -eq 18 && cmp <(coordinates '$tmp/ev.sdf') <(coordinates '$tmp/cf.sdf')"
done
check "conformers eval: sampled by dopri5 when asked" grep -q 'sampled by dopri5 at rtol 0.001' "$tmp/ev.log"
"$enf" conformers eval --reference "$tmp/ref.sdf" --model qm9-conformers --n 2 > /dev/null 2> "$tmp/ev.log"
check "conformers eval, default: rk4 in 5 steps, 20 field evaluations per conformer" \
  bash -c "grep -q 'sampled by rk4 in 5 steps (float32)' '$tmp/ev.log' && grep -q '(.* s per conformer, 20 field evaluations per conformer)' '$tmp/ev.log'"

out=$("$enf" conformers --input CO --n 1 --sample-method dopri5 --sample-steps 5 --out "$tmp/x.sdf" 2>&1); code=$?
check "--sample-steps with an adaptive --sample-method: a usage error (exit 2)" \
  bash -c "test $code -eq 2 && grep -q 'sample-steps applies to a fixed-step' <<< \"\$1\"" _ "$out"
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/ref.sdf" --sample-method dopri5 2>&1); code=$?
check "conformers eval --generated with a sampling option: a usage error (exit 2)" \
  bash -c "test $code -eq 2 && grep -q 'go with --model' <<< \"\$1\"" _ "$out"
check "--help of both explains the two solvers" \
  bash -c "'$enf' conformers --help | grep -q 'scored, log p(x | graph), by the other solver' &&
           '$enf' conformers --help | grep -q -- '--sample-method NAME' &&
           '$enf' conformers eval --help | grep -q 'drawn (prior to data, no log-likelihood along the way) by --sample-method' &&
           '$enf' conformers eval --help | grep -q -- '--sample-steps N'"

# ---- (2) the molecules a model takes come from its training data
# QM9's first 15 molecules, --split first: trained on the first 12 (at most 8
# atoms, elements H, C, N, O), validated on the last 3 (11, 9 and 9 atoms:
# not training data).
awk '{print} /^\$\$\$\$/ && ++n == 15 {exit}' datasets/data/qm9/qm9_first500.sdf > "$tmp/small.sdf"
"$enf" train --system qm9-conformers --data "$tmp/small.sdf" --split first --n-data 12 --val-samples 3 --nf 16 --layers 2 \
  --batch 4 --max-time 0.03 --out "$tmp/run" > /dev/null 2>&1
model="$tmp/run/best"
check "train a tiny model on small molecules" test -f "$model/model.json"
check "its checkpoint records the largest training molecule and the elements seen" python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))['conformer_support']
assert s == {'max_atoms': 8, 'elements': ['H', 'C', 'N', 'O']}, s" "$model/model.json"
out=$("$enf" conformers --model "$model" --input 'CCO ethanol' --n 1 --out "$tmp/x.sdf" 2>&1); code=$?
check "a larger molecule: exit 1, one line naming it, its size and the model's" \
  bash -c "test $code -eq 1 && grep -q \"molecule 1 'ethanol': 9 atoms with hydrogens; the model takes 2 to 8 (its largest training molecule has 8)\" <<< \"\$1\"" _ "$out"
out=$("$enf" conformers --model "$model" --input 'CF fluoromethane' --n 1 --out "$tmp/x.sdf" 2>&1); code=$?
check "an element the model has not seen (F): exit 1 naming it" \
  bash -c "test $code -eq 1 && grep -q \"'fluoromethane': atom 2 is F; the model knows H, C, N, O only (its training data)\" <<< \"\$1\"" _ "$out"
printf 'CO methanol\nCCO ethanol\nCF fluoromethane\n' > "$tmp/m.smi"
"$enf" conformers --model "$model" --input "$tmp/m.smi" --n 2 "${cheap[@]}" --skip-unsupported --out "$tmp/m.sdf" 2> "$tmp/m.log"
check "--skip-unsupported: exit 0, methanol's conformers only" \
  test $? -eq 0 -a "$(grep -c '^methanol$' "$tmp/m.sdf")" = 2 -a "$(records "$tmp/m.sdf")" = 2
check "  one line per skipped molecule" \
  bash -c "test \$(grep -c '^enf conformers: skipped molecule' '$tmp/m.log') -eq 2 &&
           grep -q \"skipped molecule 2 'ethanol': 9 atoms\" '$tmp/m.log' && grep -q \"skipped molecule 3 'fluoromethane': atom 2 is F\" '$tmp/m.log'"
check "  counted in the summary" grep -q '1 of 1 molecules, 2 conformers written.*2 molecules skipped' "$tmp/m.log"

# enf score and enf conformers eval: QM9's molecule 6 (4 atoms) and 14 (9 atoms).
python3 - datasets/data/qm9/qm9_first500.sdf "$tmp/two.sdf" << 'EOF'
import sys
records = open(sys.argv[1]).read().split("$$$$\n")
open(sys.argv[2], "w").write(records[5] + "$$$$\n" + records[13] + "$$$$\n")
EOF
out=$("$enf" score --model "$model" --input "$tmp/two.sdf" 2>&1); code=$?
check "enf score: a larger molecule is an error naming its record" \
  bash -c "test $code -eq 1 && grep -q \"record 2 ('qm9 gdb 14'): 9 atoms, more than the 8 the model takes (its training data)\" <<< \"\$1\"" _ "$out"
"$enf" score --model "$model" --input "$tmp/two.sdf" --skip-unsupported "${cheap[@]}" --format json > "$tmp/s.json" 2> "$tmp/s.log"
check "enf score --skip-unsupported: the other scored, the skipped one said and counted" python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r['name'] for r in rows if 'summary' not in r] == ['qm9 gdb 6'], rows
assert rows[-1]['summary']['skipped'] == 1, rows[-1]
log = open(sys.argv[2]).read()
assert \"record 2 ('qm9 gdb 14'): 9 atoms, more than the 8\" in log, log" "$tmp/s.json" "$tmp/s.log"
out=$("$enf" conformers eval --reference "$tmp/two.sdf" --model "$model" --n 2 2>&1); code=$?
check "conformers eval: a larger reference is an error naming it" \
  bash -c "test $code -eq 1 && grep -q \"reference 2 'qm9 gdb 14': 9 atoms with hydrogens; the model takes 2 to 8\" <<< \"\$1\"" _ "$out"
"$enf" conformers eval --reference "$tmp/two.sdf" --model "$model" --n 2 --skip-unsupported > "$tmp/e.md" 2> "$tmp/e.log"
check "conformers eval --skip-unsupported: the other judged, the skipped one said and counted" \
  bash -c "grep -qE '^\| enf \| 1 \| 0 \| 2\.0 \|' '$tmp/e.md' && grep -q \"skipped reference 2 'qm9 gdb 14'\" '$tmp/e.log' &&
           grep -q '1 of 1 molecules judged (0 without a conformer; 1 more skipped: the model does not take them)' '$tmp/e.log'"
out=$("$enf" conformers eval --reference "$tmp/two.sdf" --generated "$tmp/two.sdf" --skip-unsupported 2>&1); code=$?
check "conformers eval --skip-unsupported without --model: a usage error" test $code -eq 2
"$enf" export --model "$model" --out "$tmp/exported" > /dev/null 2>&1
check "enf export keeps the record" python3 -c "
import json, sys
assert json.load(open(sys.argv[1]))['conformer_support']['max_atoms'] == 8" "$tmp/exported/model.json"

# The shipped model has no record: QM9's limits (29 atoms, H, C, N, O, F).
out=$("$enf" conformers --input 'CCCCCCCCCC decane' --n 1 --out "$tmp/x.sdf" 2>&1); code=$?
check "the shipped model: 32 atoms refused with QM9's limit" \
  bash -c "test $code -eq 1 && grep -q \"'decane': 32 atoms with hydrogens; the model takes 2 to 29 (--skip\" <<< \"\$1\"" _ "$out"
check "the shipped model: its model.json is the one PROVENANCE.md hashes (no record written into it)" \
  bash -c "grep -q \"\$(sha256sum datasets/models/qm9_conformers/model.json | cut -c1-64)  qm9_conformers/model.json\" datasets/models/PROVENANCE.md"
finish
