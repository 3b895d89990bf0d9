#!/usr/bin/env bash
# Issue 15: the conformer model shipped with enf (datasets/models/qm9_conformers)
# is enf conformers' default, and a conformer it draws for a molecule has that
# molecule's connectivity in a clear majority of cases (bonds perceived by
# Open Babel from the generated geometry equal the input graph).
# Usage: cli_shipped_conformers_test.sh path/to/enf (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"

"$enf" conformers --input 'CCO ethanol' --n 3 --seed 1 --out "$tmp/e.sdf" 2> "$tmp/e.log"
check "no --model: the shipped model draws 3 conformers of ethanol" \
  test $? -eq 0 -a "$(grep -c '^\$\$\$\$' "$tmp/e.sdf" 2> /dev/null)" = 3
"$enf" score --model qm9-conformers --input "$tmp/e.sdf" --format json > "$tmp/s.json" 2> /dev/null
check "enf score takes the shipped model by name" python3 -c "
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len([r for r in rows if 'summary' not in r]) == 3
assert all(math.isfinite(r['log_likelihood']) for r in rows if 'summary' not in r)" "$tmp/s.json"
check "enf data list names it, as an enf checkpoint" bash -c "'$enf' data list | grep -A1 '^  qm9-conformers' | grep -q 'enf checkpoint'"

# Connectivity: 10 held-out QM9 molecules (never trained on) x 3 conformers,
# seed 0. The issue asks for "a clear majority"; the bar is 3 in 4 (23 of
# 30). An untrained model keeps the bonds of almost none (0 of 30 measured
# with 20 training steps), so the bar tells a trained model from one that
# is not; the shipped model kept 100 % on 20 x 3 when it was exported.
"$enf" conformers eval --model qm9-conformers --reference qm9:test --held-out --limit 10 --n 3 --seed 0 \
  --out "$tmp/c.csv" > "$tmp/c.md" 2> "$tmp/c.log"
check "conformers eval on 10 held-out molecules: exit 0" test $? -eq 0
check "bonds kept in at least 3 of 4 conformers" python3 -c "
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 10, rows
kept = sum(int(r['connectivity_kept']) for r in rows)
total = sum(int(r['conformers']) for r in rows)
print(f'bonds kept: {kept} of {total}', file=sys.stderr)
assert total == 30 and kept >= 23, (kept, total)" "$tmp/c.csv"
finish
