#!/usr/bin/env bash
# enf conformers --polish: each drawn conformer locally minimised under MMFF94
# (by default) before the scoring; the same bytes on 1 and 2 threads; --polish
# none and --polish-steps 0 write the model's conformers as drawn; polished
# ones have a lower MMFF94 energy (Open Babel's obenergy), the same atoms and
# bonds; a molecule without force-field parameters is said and counted, not
# fatal; conformers eval draws and polishes them alike.
# Usage: cli_conformers_polish_test.sh path/to/enf (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
# The header line holds Open Babel's time stamp (" OpenBabelMMDDYYHHmm3D"): left out.
no_stamp() { sed -E 's/^( OpenBabel)[0-9]{10}(3D)$/\1MMDDYYHHmm\2/' "$1"; }
coordinates() { awk '/V2000/ {n = substr($0, 1, 3) + 0; next} n > 0 {print substr($0, 1, 30); n--}' "$1"; }
# The atom and bond blocks without coordinates: elements, charges, bonds.
graph() { awk '/V2000/ {n = substr($0, 1, 3) + substr($0, 4, 3); next} n > 0 {print substr($0, 31); n--}' "$1"; }
# The MMFF94 energies (kcal/mol) of a file's records, one a line.
energies() { obenergy -ff MMFF94 "$1" 2> /dev/null | awk '/TOTAL ENERGY/ {print $4}'; }
export -f coordinates graph no_stamp energies
cheap=(--rtol 1e-3 --atol 1e-3 --trace gaussian)
printf 'CC(=O)NC1CC1O acetamide\nOCC#N glycolonitrile\n' > "$tmp/two.smi"

"$enf" conformers --input "$tmp/two.smi" --n 3 --seed 3 --threads 1 "${cheap[@]}" --out "$tmp/p1.sdf" 2> "$tmp/p1.log"
check "default: exit 0, polished under MMFF94 by L-BFGS in at most 200 iterations (said in the header and the summary)" \
  bash -c "test $? -eq 0 && grep -q 'polish: mmff94 by L-BFGS, at most 200 iterations$' '$tmp/p1.log' &&
           grep -qE 'polish: mmff94 by L-BFGS, at most 200 iterations, [0-9.]+ ms per conformer \(6 conformers of 2 molecules\); 0 molecules left unpolished' '$tmp/p1.log'"
"$enf" conformers --input "$tmp/two.smi" --n 3 --seed 3 --threads 2 "${cheap[@]}" --out "$tmp/p2.sdf" 2> /dev/null
check "polished: --threads 1 and 2 write the same bytes" cmp <(no_stamp "$tmp/p1.sdf") <(no_stamp "$tmp/p2.sdf")
"$enf" conformers --input "$tmp/two.smi" --n 3 --seed 3 --threads 1 "${cheap[@]}" --polish none --out "$tmp/n.sdf" \
  2> "$tmp/n.log"
check "--polish none: said" bash -c "grep -q 'polish: none$' '$tmp/n.log' && grep -q '; polish: none;' '$tmp/n.log'"
"$enf" conformers --input "$tmp/two.smi" --n 3 --seed 3 --threads 1 "${cheap[@]}" --polish-steps 0 --out "$tmp/z.sdf" \
  2> /dev/null
check "--polish-steps 0 writes what --polish none writes" cmp <(no_stamp "$tmp/n.sdf") <(no_stamp "$tmp/z.sdf")
check "polished and unpolished: the same records, atoms, charges and bonds, other coordinates" \
  bash -c "cmp <(graph '$tmp/p1.sdf') <(graph '$tmp/n.sdf') && ! cmp -s <(coordinates '$tmp/p1.sdf') <(coordinates '$tmp/n.sdf')"
check "each polished conformer has a lower MMFF94 energy than the one drawn" \
  bash -c "paste <(energies '$tmp/p1.sdf') <(energies '$tmp/n.sdf') |
           awk 'NF == 2 {n++; if (!(\$1 < \$2)) bad++} END {exit !(n == 6 && bad == 0)}'"
"$enf" conformers --input "$tmp/two.smi" --n 3 --seed 3 --threads 1 "${cheap[@]}" --polish uff --polish-steps 50 \
  --out "$tmp/u.sdf" 2> "$tmp/u.log"
check "--polish uff --polish-steps 50: said; other coordinates than MMFF94's" \
  bash -c "grep -q 'polish: uff by L-BFGS, at most 50 iterations' '$tmp/u.log' &&
           ! cmp -s <(coordinates '$tmp/u.sdf') <(coordinates '$tmp/p1.sdf')"
"$enf" conformers --input "$tmp/two.smi" --n 3 --seed 3 --threads 1 "${cheap[@]}" --polish-method cg --out "$tmp/cg.sdf" \
  2> "$tmp/cg.log"
check "--polish-method cg: said; other coordinates than L-BFGS's, each with a lower MMFF94 energy than drawn" \
  bash -c "grep -q 'polish: mmff94 by conjugate gradients, at most 200 iterations$' '$tmp/cg.log' &&
           ! cmp -s <(coordinates '$tmp/cg.sdf') <(coordinates '$tmp/p1.sdf') &&
           paste <(energies '$tmp/cg.sdf') <(energies '$tmp/n.sdf') |
             awk 'NF == 2 {n++; if (!(\$1 < \$2)) bad++} END {exit !(n == 6 && bad == 0)}'"
check "  L-BFGS's conformers end at most 0.01 kcal/mol above conjugate gradients' (converged further, as a rule lower)" \
  bash -c "paste <(energies '$tmp/p1.sdf') <(energies '$tmp/cg.sdf') |
           awk 'NF == 2 {n++; if (!(\$1 <= \$2 + 0.01)) bad++} END {exit !(n == 6 && bad == 0)}'"

# A molecule MMFF94 has no parameters for (F-F): its conformers as drawn, said and counted.
printf 'FF difluorine\nCO methanol\n' > "$tmp/f.smi"
"$enf" conformers --input "$tmp/f.smi" --n 2 --seed 1 "${cheap[@]}" --out "$tmp/f.sdf" 2> "$tmp/f.log"
check "no MMFF94 parameters: exit 0, 4 conformers written" \
  bash -c "test $? -eq 0 && test \$(grep -c '^\\\$\\\$\\\$\\\$' '$tmp/f.sdf') -eq 4"
check "  one line naming it, counted in the summary" \
  bash -c "grep -q \"^enf conformers: mmff94 has no parameters for 'difluorine'; its conformers are left unpolished\" '$tmp/f.log' &&
           grep -q '(2 conformers of 1 molecules); 1 molecule left unpolished (no mmff94 parameters)' '$tmp/f.log'"

# Usage errors.
out=$("$enf" conformers --input CO --out "$tmp/x.sdf" --polish amber 2>&1); code=$?
check "--polish amber: a usage error (exit 2) naming the choices" \
  bash -c "test $code -eq 2 && grep -q 'mmff94' <<< \"\$1\"" _ "$out"
awk '{print} /^\$\$\$\$/ && ++n == 2 {exit}' datasets/data/qm9/qm9_first500.sdf > "$tmp/ref.sdf"
out=$("$enf" conformers eval --reference "$tmp/ref.sdf" --generated "$tmp/ref.sdf" --polish none 2>&1); code=$?
check "conformers eval --generated with --polish: a usage error (exit 2)" test $code -eq 2

# conformers eval --model: the conformers enf conformers writes, polished alike.
"$enf" conformers eval --reference "$tmp/ref.sdf" --model qm9-conformers --n 2 --seed 4 --polish-steps 100 \
  --save "$tmp/ev.sdf" > /dev/null 2> "$tmp/ev.log"
"$enf" conformers --input "$tmp/ref.sdf" --n 2 --seed 4 "${cheap[@]}" --polish-steps 100 --out "$tmp/cf.sdf" 2> /dev/null
check "conformers eval: enf conformers' polished conformers, coordinate for coordinate" \
  bash -c "test \$(coordinates '$tmp/ev.sdf' | wc -l) -eq 18 && cmp <(coordinates '$tmp/ev.sdf') <(coordinates '$tmp/cf.sdf')"
check "  the polish in its summary" grep -q 'polish: mmff94 by L-BFGS, at most 100 iterations, .* ms per conformer' "$tmp/ev.log"
check "--help says what the polish does" \
  bash -c "'$enf' conformers --help | grep -q 'locally minimised under the MMFF94' &&
           '$enf' conformers --help | grep -q -- '--polish-steps N' &&
           '$enf' conformers --help | grep -q -- '--polish-method lbfgs|cg' &&
           '$enf' conformers eval --help | grep -q 'locally minimised under the MMFF94'"
finish
