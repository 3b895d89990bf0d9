#!/usr/bin/env bash
# Issue 15's evaluation end to end: enf conformers eval writes the held-out
# references (--write-reference) and reads them back, judges a tiny model's
# conformers (--model) and the same conformers read from its --save file
# (--generated), seeds them as enf conformers does, and refuses generated
# files that do not match the references.
# Usage: cli_conformers_eval_test.sh path/to/enf (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
model="$tmp/run/best"
tiny_conformer_model "$tmp/run" 0.05
fast=(--rtol 1e-4 --atol 1e-4)
titles() { awk 'NR == 1 || prev == "$$$$" {print} {prev = $0}' "$1"; }
# The header line holds Open Babel's time stamp (" OpenBabelMMDDYYHHmm3D"): left out.
no_stamp() { sed -E 's/^( OpenBabel)[0-9]{10}(3D)$/\1MMDDYYHHmm\2/' "$1"; }

# ---- the references: qm9:test's held-out tenth (positions 0, 10, 20, ...)
"$enf" conformers eval --reference qm9:test --held-out --limit 3 --write-reference "$tmp/ref.sdf" > "$tmp/w.out" 2> /dev/null
check "--write-reference alone: exit 0, nothing on stdout" test $? -eq 0 -a ! -s "$tmp/w.out"
check "--held-out --limit 3: the records at positions 0, 10, 20, titled" \
  test "$(titles "$tmp/ref.sdf" | tr '\n' ,)" = "test.npz row 0 (gdb 11),test.npz row 10 (gdb 108),test.npz row 20 (gdb 165),"
check "  with their bonds (3 heavy atoms of gdb 11: 6 bonds with its hydrogens)" \
  test "$(sed -n 4p "$tmp/ref.sdf" | cut -c1-6)" = "  7  6"
"$enf" conformers eval --reference "$tmp/ref.sdf" --write-reference "$tmp/ref2.sdf" 2> /dev/null
check "the reference SDF read and written again: the same records" cmp <(no_stamp "$tmp/ref.sdf") <(no_stamp "$tmp/ref2.sdf")
"$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/ref.sdf" --label self > "$tmp/self.md" 2> /dev/null
check "the references judged against themselves: MAT 0, COV 100 %, bonds kept, no stereocentres (n/a)" \
  grep -q '^| self | 3 | 0 | 1.0 | 0.000 | 0.000 | 100.0 % | 100.0 % | 100.0 % | n/a |  |$' "$tmp/self.md"
check "  the table's header names the columns" \
  grep -q '^| method | molecules | missing | conformers per molecule | MAT (Å) | median (Å) | COV@0.5 Å | COV@0.25 Å |' "$tmp/self.md"

# ---- --model: K = 2 conformers of each, and the same conformers from the saved file (as drawn:
# --polish none, since a polished conformer of a small rigid molecule may come within 0.01 Å of
# the reference, which the check of --generated below tells apart from the reference itself)
"$enf" conformers eval --reference "$tmp/ref.sdf" --model "$model" --n 2 --seed 5 "${fast[@]}" --polish none \
  --save "$tmp/gen.sdf" \
  --out "$tmp/m.csv" > "$tmp/m.md" 2> "$tmp/m.log"
check "--model: exit 0" test $? -eq 0
check "--model: a row for enf with 3 molecules, 2 conformers each and a time per conformer" \
  grep -qE '^\| enf \| 3 \| 0 \| 2\.0 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ % \| [0-9.]+ % \| [0-9.]+ % \| n/a \| [0-9.]+ \|$' "$tmp/m.md"
check "--model: the summary on stderr" grep -q '3 of 3 molecules judged (0 without a conformer), 6 conformers; MAT' "$tmp/m.log"
check "--save: 6 records, 2 per reference, in order" \
  test "$(titles "$tmp/gen.sdf" | uniq -c | awk '{print $1}' | tr '\n' ,)" = "2,2,2,"
"$enf" conformers --model "$model" --input "$tmp/ref.sdf" --n 2 --seed 5 "${fast[@]}" --polish none --out "$tmp/c.sdf" \
  2> /dev/null
coordinates() { awk '/V2000/ {n = substr($0, 1, 3) + 0; next} n > 0 {print substr($0, 1, 30); n--}' "$1"; }
coordinates "$tmp/gen.sdf" > "$tmp/gen.xyz"
coordinates "$tmp/c.sdf" > "$tmp/c.xyz"
check "the conformers are enf conformers' with the same --seed (seeded alike): 2 x (7 + 8 + 9) atom lines" \
  bash -c "test \$(wc -l < '$tmp/gen.xyz') -eq 48 && cmp '$tmp/gen.xyz' '$tmp/c.xyz'"
"$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/gen.sdf" --out "$tmp/g.csv" > /dev/null 2>&1
check "--generated on the saved conformers: exit 0" test $? -eq 0
# The SDF keeps 4 decimals: each atom moves by at most sqrt(3) * 5e-5 Å, so
# a best RMSD by at most 8.7e-5 Å.
check "--generated: the same molecules, conformer counts and best RMSDs (within the SDF's rounding)" python3 -c "
import csv, sys
m, g = (list(csv.DictReader(open(p))) for p in sys.argv[1:3])
assert len(m) == len(g) == 3, (m, g)
for a, b in zip(m, g):
    assert (a['title'], a['atoms'], a['heavy_atoms'], a['conformers']) == (b['title'], b['atoms'], b['heavy_atoms'], b['conformers']), (a, b)
    assert a['conformers'] == '2' and a['connectivity_kept'] == b['connectivity_kept'], (a, b)
    assert abs(float(a['best_rmsd']) - float(b['best_rmsd'])) <= 8.7e-5, (a, b)
    assert float(a['best_rmsd']) > 0.01, a  # generated, not the reference
" "$tmp/m.csv" "$tmp/g.csv"
"$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/gen.sdf" --max-per-molecule 1 --thresholds 100 \
  --seconds-per-conformer 0.25 --label first > "$tmp/one.md" 2> /dev/null
check "--thresholds 100: its column" grep -q '| COV@100 Å | bonds kept |' "$tmp/one.md"
check "--max-per-molecule 1, --seconds-per-conformer: 1 per molecule, all covered at 100 Å, the time shown" grep -qE '^\| first \| 3 \| 0 \| 1\.0 \| [0-9.]+ \| [0-9.]+ \| 100\.0 % \| [0-9.]+ % \| n/a \| 0\.25 \|$' "$tmp/one.md"

# ---- a reference without conformers: missing, not covered
awk '{print} /^\$\$\$\$/ && ++n == 4 {exit}' "$tmp/gen.sdf" > "$tmp/part.sdf"
"$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/part.sdf" --thresholds 100 --out "$tmp/p.csv" \
  > "$tmp/p.md" 2> /dev/null
check "conformers of 2 of 3 molecules: 1 missing, COV@100 66.7 %" grep -qE '^\| .* \| 3 \| 1 \| 2\.0 \| .* \| 66\.7 % \|' "$tmp/p.md"
check "  the CSV leaves its best RMSD empty" grep -q '^test.npz row 20 (gdb 165),9,5,0,,,0,0,0$' "$tmp/p.csv"

# ---- stereo: a reference with a stereocentre (L-alanine, obabel --gen3d's
# geometry) against its mirror image, itself, and the model's conformers
cat > "$tmp/ala.xyz" << 'EOF'
13
L-alanine
N 1.06890 0.07631 0.19466
C 2.55254 0.11423 0.05785
C 2.97811 -0.22501 -1.36129
C 3.03972 1.50912 0.48551
O 4.08080 2.04124 0.14057
O 2.15357 2.08363 1.34534
H 0.75568 -0.86383 -0.06445
H 0.66808 0.67735 -0.53515
H 2.98093 -0.60573 0.76344
H 2.59020 0.50034 -2.08480
H 2.62532 -1.22124 -1.64957
H 4.07035 -0.22177 -1.44759
H 1.39635 1.45104 1.42055
EOF
awk 'NR <= 2 {print; next} {printf "%s %.5f %.5f %.5f\n", $1, -$2, -$3, -$4}' "$tmp/ala.xyz" > "$tmp/mirror.xyz"
"$enf" conformers eval --reference "$tmp/ala.xyz" --generated "$tmp/mirror.xyz" --out "$tmp/s.csv" > "$tmp/s.md" 2> "$tmp/s.log"
check "stereo: the mirror image is not kept (0.0 %), and is no RMSD-0 match" \
  grep -qE '^\| .* \| 1 \| 0 \| 1\.0 \| 0\.[1-9][0-9]* \| .* \| 100\.0 % \| 0\.0 % \|  \|$' "$tmp/s.md"
check "  the CSV: 1 centre, 0 conformers keeping it" grep -q '^L-alanine,13,6,1,.*,1,0$' "$tmp/s.csv"
check "  the summary counts it" grep -q 'stereo kept in 0 of the 1 conformers of the 1 references with tetrahedral' "$tmp/s.log"
"$enf" conformers eval --reference "$tmp/ala.xyz" --generated "$tmp/ala.xyz" > "$tmp/s.md" 2> /dev/null
check "stereo: the reference itself keeps it (100.0 %)" grep -qE '\| 100\.0 % \| 100\.0 % \|  \|$' "$tmp/s.md"
"$enf" conformers eval --reference "$tmp/ala.xyz" --model "$model" --n 12 --seed 5 "${fast[@]}" > "$tmp/k.md" 2> /dev/null
check "stereo: --model (--stereo keep by default) keeps it in every conformer" \
  grep -qE '\| 100\.0 % \| [0-9.]+ \|$' "$tmp/k.md"
"$enf" conformers eval --reference "$tmp/ala.xyz" --model "$model" --n 12 --seed 5 "${fast[@]}" --stereo any \
  > "$tmp/a.md" 2> /dev/null
check "stereo: --stereo any leaves the model's random handedness" grep -qE '\| [0-9]\.[0-9] % \| [0-9.]+ \|$|\| [1-9][0-9]\.[0-9] % \| [0-9.]+ \|$' "$tmp/a.md"
out=$("$enf" conformers eval --reference "$tmp/ala.xyz" --generated "$tmp/ala.xyz" --stereo any 2>&1); code=$?
check "--stereo with --generated: a usage error (their conformers are judged as they are)" \
  bash -c "test $code -eq 2 && grep -q 'go with --model' <<< \"\$1\"" _ "$out"

# ---- generated files that do not match the references
# Record 2 of the references (8 atoms) under record 1's title (7 atoms).
awk -v t="$(head -1 "$tmp/ref.sdf")" '/^\$\$\$\$/ {n++; if (n == 2) print; next} n == 1 {print (++k == 1 ? t : $0)}' \
  "$tmp/ref.sdf" > "$tmp/wrong_atoms.sdf"
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/wrong_atoms.sdf" 2>&1); code=$?
check "a record with the wrong atom count: exit 1 naming the file, record and the expected count" \
  bash -c "test $code -eq 1 && grep -q \"wrong_atoms.sdf': record 1 'test.npz row 0 (gdb 11)': 8 atoms; expected the reference's 7\" <<< \"\$1\"" _ "$out"
sed '1s/.*/no such molecule/' "$tmp/gen.sdf" > "$tmp/wrong_title.sdf"
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/wrong_title.sdf" 2>&1); code=$?
check "a title that is no reference's: exit 1 naming the record" \
  bash -c "test $code -eq 1 && grep -q \"record 1 'no such molecule': its title is no reference molecule's\" <<< \"\$1\"" _ "$out"
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/gen.sdf" --model "$model" 2>&1); code=$?
check "--model and --generated together: a usage error (exit 2)" bash -c "test $code -eq 2 && grep -q 'not both' <<< \"\$1\"" _ "$out"
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" 2>&1); code=$?
check "nothing to judge or write: a usage error (exit 2)" test $code -eq 2
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/gen.sdf" --thresholds 0.5,x 2>&1); code=$?
check "a bad threshold: a usage error naming it" bash -c "test $code -eq 2 && grep -q \"thresholds: 'x'\" <<< \"\$1\"" _ "$out"
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/gen.sdf" --out "$tmp/m.csv" 2>&1); code=$?
check "an existing --out: refused without --force (exit 2)" test $code -eq 2
# ---- SIGINT while generating: the molecules finished so far are judged and reported, exit 130
# The tiny model takes only its 50 training molecules' elements and sizes
# (--skip-unsupported): $taken of the 300; dopri5 samples slowly enough for
# the signal to arrive.
"$enf" conformers eval --reference qm9:test --held-out --limit 300 --model "$model" --n 2 --threads 1 "${fast[@]}" \
  --sample-method dopri5 --skip-unsupported > "$tmp/int.md" 2> "$tmp/int.log" &
signal_once_started $! "$tmp/int.log" generating 1 INT
taken=$(grep -oE 'generating [0-9]+ molecules' "$tmp/int.log" | awk '{print $2}')
check "SIGINT run: the references the model does not take skipped before any work" \
  bash -c "test -n '$taken' && test '$taken' -gt 100 && grep -q 'references skipped, $taken judged' '$tmp/int.log'"
if [ $code -eq 130 ]; then
  check "SIGINT: the finished molecules' row (fewer than the $taken taken), the stop said" \
    bash -c "grep -qE '^\| enf \| [0-9]+ \| 0 \| 2\.0 \|' '$tmp/int.md' && ! grep -q '^| enf | $taken |' '$tmp/int.md' &&
             grep -q 'interrupted: enf conformers eval: [0-9]* of $taken molecules judged' '$tmp/int.log'"
else
  check "SIGINT: the run had finished (exit 0)" test $code -eq 0
fi

check "--help teaches MAT and COV with the threshold convention, and examples" \
  bash -c "'$enf' conformers eval --help | grep -q 'strictly: best < d' && '$enf' conformers eval --help | grep -q 'generated gen3d.sdf'"
check "enf conformers --help points to eval" bash -c "'$enf' conformers --help | grep -q 'enf conformers eval --help'"
finish
