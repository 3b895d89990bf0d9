#!/usr/bin/env bash
# Issue 15: the conformer model trained by maximum likelihood with enf train —
# the same run directory as flow matching (metrics with the NLL, best/ and
# last/), exact resume, the time budget, the discrete gradient, and the
# checkpoint taken by enf conformers and enf score as it is.
# Usage: cli_conformers_ml_test.sh path/to/enf (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
# 20 molecules in batches of 10: 2 steps an epoch; loose solves keep it quick.
ml=(train --system qm9-conformers --objective maximum-likelihood --nf 8 --layers 2 --n-data 20 --batch 10
    --val-samples 4 --rtol 1e-3 --atol 1e-3 --threads 2)
"$enf" "${ml[@]}" --epochs 2 --out "$tmp/A" > /dev/null 2> "$tmp/A.log"
check "maximum likelihood: exit 0" test $? -eq 0
check "maximum likelihood: run directory" test -f "$tmp/A/metrics.jsonl" -a -d "$tmp/A/best" -a -d "$tmp/A/last"
check "maximum likelihood: the description names the objective and the gradient" \
  grep -q 'maximum likelihood (adjoint gradient)' "$tmp/A.log"
check "maximum likelihood: progress with the NLL" grep -q 'step 4/4  NLL' "$tmp/A.log"
check "maximum likelihood: 4 steps with a finite NLL (= the loss, λ = 0) and both passes' NFE, 2 validations" \
  python3 -c "
import json, math, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if l['type'] == 'step']
assert len(steps) == 4 and len(lines) == 6, lines
for s in steps:
    assert math.isfinite(s['nll']) and math.isclose(s['nll'], s['loss'], rel_tol=1e-12), s
    assert s['nfe_forward'] > 0 and s['nfe_backward'] > 0 and s['grad_norm'] > 0, s" "$tmp/A/metrics.jsonl"
check "maximum likelihood: config keeps the objective" grep -q '"objective": "maximum-likelihood"' "$tmp/A/config.json"
"$enf" "${ml[@]}" --epochs 1 --out "$tmp/B" > /dev/null 2>&1
"$enf" train --resume "$tmp/B" --epochs 2 > /dev/null 2>&1
check "maximum likelihood: resume is exact" cmp -s "$tmp/A/last/weights.safetensors" "$tmp/B/last/weights.safetensors"
check "  (and the optimizer state)" cmp -s "$tmp/A/last/state.safetensors" "$tmp/B/last/state.safetensors"

"$enf" "${ml[@]}" --max-time 0.002 --out "$tmp/T" > /dev/null 2> "$tmp/T.log"
check "maximum likelihood: --max-time ends the run, exit 0, with a validation" \
  bash -c "test $? -eq 0 && grep -q 'time budget of' '$tmp/T.log' && grep -q '\"time_budget\":true' '$tmp/T/metrics.jsonl'"
"$enf" "${ml[@]}" --epochs 1 --gradient discrete --out "$tmp/D" > /dev/null 2> "$tmp/D.log"
check "maximum likelihood: --gradient discrete trains" \
  bash -c "test $? -eq 0 && grep -q 'maximum likelihood (discrete gradient)' '$tmp/D.log'"

# The checkpoint is a conformer model like a flow-matching one.
"$enf" conformers --model "$tmp/A/best" --input 'CCO ethanol' --n 2 --out "$tmp/e.sdf" 2> /dev/null
check "enf conformers on the ML model: 2 records with a finite log-likelihood" python3 -c "
import math, sys
recs = [r for r in open(sys.argv[1]).read().split('\$\$\$\$\n') if r.strip()]
assert len(recs) == 2, recs
for r in recs:
    l = r.split('\n')
    assert math.isfinite(float(l[l.index('>  <enf_log_likelihood>') + 1])), r" "$tmp/e.sdf"
awk '{print} /^\$\$\$\$/ && ++n == 3 {exit}' datasets/data/qm9/qm9_first500.sdf > "$tmp/three.sdf"
"$enf" score --model "$tmp/A/best" --input "$tmp/three.sdf" > "$tmp/s.csv" 2> /dev/null
check "enf score on the ML model: one finite row per record" python3 -c "
import csv, math, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 3 and all(math.isfinite(float(r['log_likelihood'])) for r in rows), rows" "$tmp/s.csv"
check "--help: both objectives" bash -c "'$enf' train --system qm9-conformers --help | grep -q 'objective maximum-likelihood'"
finish
