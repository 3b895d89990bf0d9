#!/usr/bin/env bash
# Issue 18, end to end: molecules sampled by the pretrained QM9 model, written
# to SDF by enf sample, judged by Open Babel reading the file back — bond
# block, charges and the smiles / fragments / valid / molecule_stable fields
# describe one molecule — and enf sample is quiet about it on stderr. Then
# the input guards through enf score / enf metrics.
# Usage: cli_sdf_test.sh path/to/enf path/to/enf_sdf_check (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
judge="$2"
fast=(--trace gaussian --rtol 1e-4 --atol 1e-4)
model="$tmp/qm9"
"$enf" import --reference datasets/models/en_flows_qm9_pretrained --out "$model" > /dev/null 2>&1
check "import the pretrained QM9 model" test -f "$model/model.json"

"$enf" sample --model "$model" --n 40 --seed 18 "${fast[@]}" --no-score --out "$tmp/s.sdf" > /dev/null 2> "$tmp/s.log"
check "sample 40 molecules to SDF: exit 0" test $? -eq 0
check "no Open Babel errors on stderr while writing" bash -c "! grep -Eq 'TetStereo|====|Open Babel (Error|Warning)|\\*\\*\\*' '$tmp/s.log'"
"$judge" "$tmp/s.sdf" > "$tmp/judge.txt"; code=$?
cat "$tmp/judge.txt" | head -20
check "Open Babel reads every record back as the molecule its fields describe" test $code -eq 0
check "40 records judged" grep -q '^records 40 ' "$tmp/judge.txt"
# The sample is varied: the judge saw invalid and valid molecules alike.
check "the sample holds valid and invalid molecules" python3 -c "
import sys
f = open(sys.argv[1]).readline().split()
d = dict(zip(f[::2], map(int, f[1::2])))
assert 0 < d['valid'] < d['records'], d" "$tmp/judge.txt"
check "every record has a smiles field without [H] on carbon" bash -c "test \$(grep -c '^>  <smiles>' '$tmp/s.sdf') -eq 40 && ! grep -A1 '^>  <smiles>' '$tmp/s.sdf' | grep -q 'C(\[H\])'"
check "every record has a fragments field" bash -c "test \$(grep -c '^>  <fragments>' '$tmp/s.sdf') -eq 40"
# A second, independent reading: the obabel program's canonical SMILES of each
# record, hydrogens deleted, against the smiles field (Debian's openbabel,
# which tools/setup.sh installs).
obabel "$tmp/s.sdf" -ocan -d -xn -xi 2> /dev/null | sed 's/[[:space:]]*$//' > "$tmp/obabel.smi"
awk '/^>  <smiles>/{getline; print}' "$tmp/s.sdf" > "$tmp/fields.smi"
# obabel -d also drops hydrogen atoms that cannot be implicit (a lone H):
# records whose field has [H] are left out of this comparison.
check "obabel -ocan -d agrees with the smiles field of every record without [H]" python3 -c "
import sys
ob = open(sys.argv[1]).read().split('\n')[:-1]
fields = open(sys.argv[2]).read().split('\n')[:-1]
assert len(ob) == len(fields) == 40, (len(ob), len(fields))
pairs = [(o, f) for o, f in zip(ob, fields) if '[H]' not in f]
assert len(pairs) >= 30 and all(o == f for o, f in pairs), [p for p in pairs if p[0] != p[1]]" "$tmp/obabel.smi" "$tmp/fields.smi"
check "enf metrics and enf score read the sampled SDF back" bash -c "
  '$enf' metrics --input '$tmp/s.sdf' --format json 2>/dev/null | grep -q '\"molecules\": 40' &&
  '$enf' score --model '$model' --input '$tmp/s.sdf' --limit 2 ${fast[*]} 2>/dev/null | tail -n +2 | wc -l | grep -qx 2"

# Guards: one line, exit 1, naming file, record and what to do.
printf 'ethanol\n  enftest 12062614303D\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\n    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n    1.5200    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\n    2.0000    1.3500    0.1000 O   0  0  0  0  0  0  0  0  0  0  0  0\n  1  2  1  0\n  2  3  1  0\nM  END\n$$$$\n' > "$tmp/heavy.sdf"
err=$("$enf" score --model "$model" --input "$tmp/heavy.sdf" 2>&1 >/dev/null); rc=$?
check "implicit hydrogens: exit 1, one line with the fix" bash -c "test $rc -eq 1 && test \$(wc -l <<< \"\$0\") -eq 1 && grep -q \"record 1 ('ethanol'): atom 1 (C) has 3 implicit hydrogens\" <<< \"\$0\" && grep -q 'obabel -h' <<< \"\$0\"" "$err"
printf 'ammonium\n  enftest 12062614303D\n\n  5  4  0  0  0  0  0  0  0  0999 V2000\n    0.0000    0.0000    0.0000 N   0  3  0  0  0  0  0  0  0  0  0  0\n    0.5900    0.5900    0.5900 H   0  0  0  0  0  0  0  0  0  0  0  0\n   -0.5900   -0.5900    0.5900 H   0  0  0  0  0  0  0  0  0  0  0  0\n   -0.5900    0.5900   -0.5900 H   0  0  0  0  0  0  0  0  0  0  0  0\n    0.5900   -0.5900   -0.5900 H   0  0  0  0  0  0  0  0  0  0  0  0\n  1  2  1  0\n  1  3  1  0\n  1  4  1  0\n  1  5  1  0\nM  CHG  1   1   1\nM  END\n$$$$\n' > "$tmp/ion.sdf"
err=$("$enf" metrics --input "$tmp/ion.sdf" 2>&1 >/dev/null); rc=$?
check "an ion: exit 1, one line" bash -c "test $rc -eq 1 && test \$(wc -l <<< \"\$0\") -eq 1 && grep -q 'atom 1 (N) has formal charge +1' <<< \"\$0\" && grep -q 'neutral molecules only' <<< \"\$0\"" "$err"
finish
