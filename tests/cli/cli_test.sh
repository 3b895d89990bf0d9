#!/usr/bin/env bash
# End-to-end checks of the enf command line: import, score, sample, help and
# errors. Usage: cli_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
data=datasets/data/efm_splits/test_split_DW4.npy
# A small input keeps the test quick, also under the sanitizers.
small="$tmp/small.npy"
"$enf" data generate dw4 --n 300 --out "$small" > /dev/null 2>&1

check "--help lists the commands" bash -c "'$enf' --help | grep -q 'score'"
for cmd in field import score sample train eval "bench field" "bench step" "data generate"; do
  check "enf $cmd --help" bash -c "'$enf' $cmd --help | grep -q 'usage: enf $cmd'"
done
check "import a reference model" "$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/mild"
check "checkpoint files" test -f "$tmp/mild/model.json" -a -f "$tmp/mild/weights.safetensors"

# Parity with the reference: import the weights the fixtures' mild blocks were
# solved with (tests/data/cnf_fixture_weights) as the reference writes them,
# score the fixtures' structures exactly at 1e-10, and compare with the
# fixtures' log p(x) (README §6: any correct dopri5 at 1e-10 is within 1e-8).
fw=tests/data/cnf_fixture_weights
for sys in dw4 lj13; do
  mkdir -p "$tmp/ref_$sys"
  cp "tests/fixtures/models/oracle_${sys}_mild/args.json" "$tmp/ref_$sys/args.json"
  cp "$fw/mild.safetensors" "$tmp/ref_$sys/flow.safetensors"
  "$enf" import --reference "$tmp/ref_$sys" --out "$tmp/fx_$sys" > /dev/null 2>&1
  "$enf" score --model "$tmp/fx_$sys" --input "$fw/x_$sys.npy" --trace exact --rtol 1e-10 --atol 1e-10 \
    > "$tmp/fx_$sys.csv" 2> /dev/null
  check "import + score reproduce the reference log p(x) ($sys, 1e-10)" bash -c \
    "paste -d, <(tail -n +2 '$fw/mild_1e-10_$sys.csv') <(tail -n +2 '$tmp/fx_$sys.csv') | awk -F, 'NF < 4 {bad=1} {d=\$2-\$4; if (d<0) d=-d; if (d>1e-8) bad=1; n++} END {exit bad || n != 4}'"
done

"$enf" score --model "$tmp/mild" --input "$small" --format json --rtol 1e-5 --atol 1e-5 > "$tmp/score.json" 2> "$tmp/score.log"
check "score: exit 0" test $? -eq 0
check "score json: one result per structure" bash -c "test \$(grep -c '\"log_likelihood\"' '$tmp/score.json') -eq 300"
check "score json: a summary" grep -q '"summary"' "$tmp/score.json"
check "score: NLL on stderr" grep -q 'NLL' "$tmp/score.log"

check "sample to xyz with log q" bash -c "'$enf' sample --model '$tmp/mild' --n 7 --seed 3 --out '$tmp/s.xyz' --log-q > '$tmp/q.csv' 2>/dev/null"
check "xyz has 7 frames of 4 atoms" bash -c "test \$(grep -c '^4\$' '$tmp/s.xyz') -eq 7"
"$enf" score --model "$tmp/mild" --input "$tmp/s.xyz" > "$tmp/s.csv" 2>/dev/null
# log q from sampling and log p from scoring the written file agree (same flow, 1e-7 solves, 10-digit XYZ).
check "score(sample) = log q" bash -c "paste -d, <(tail -n +2 '$tmp/q.csv' | cut -d, -f2) <(tail -n +2 '$tmp/s.csv' | cut -d, -f2) | awk -F, '{d=\$1-\$2; if (d<0) d=-d; if (d>1e-4) bad=1} END {exit bad}'"
"$enf" sample --model "$tmp/mild" --n 7 --seed 3 --out "$tmp/s2.xyz" 2>/dev/null
check "same seed, same samples" cmp -s <(grep '^Ar' "$tmp/s.xyz") <(grep '^Ar' "$tmp/s2.xyz")
# The default (--precision auto) at sample's default 1e-5 is float32 for a
# particle model: --precision float's bytes; --precision double integrates the
# same prior draws with a float64 field: other bits, the same samples to well
# within 1e-3 (the solver's own error scale at 1e-5 is ~1e-5 per coordinate here).
"$enf" sample --model "$tmp/mild" --n 7 --seed 3 --precision float --out "$tmp/s_f.xyz" 2>/dev/null
"$enf" sample --model "$tmp/mild" --n 7 --seed 3 --precision double --out "$tmp/s_d.xyz" 2>/dev/null
check "sample: float32 by default at 1e-5 (the bytes of --precision float)" cmp -s "$tmp/s2.xyz" "$tmp/s_f.xyz"
check "sample --precision double: the float32 samples within 1e-3, not the same bits" python3 -c '
import sys
def xyz(p):
    return [float(v) for l in open(p) for f in [l.split()] if len(f) == 4 and f[0] == "Ar" for v in f[1:]]
a, b = xyz(sys.argv[1]), xyz(sys.argv[2])
d = max(abs(u - v) for u, v in zip(a, b))
sys.exit(not (len(a) == len(b) == 84 and 0 < d < 1e-3))' "$tmp/s_d.xyz" "$tmp/s_f.xyz"

# Errors: clear message, non-zero exit, nothing written.
out=$("$enf" score --model "$tmp/nope" --input "$small" 2>&1); code=$?
check "missing checkpoint: exit 1" test $code -eq 1
check "missing checkpoint: says so" contains "$out" 'no such directory'
out=$("$enf" score --model "$tmp/mild" --input "$small" --rtol abc 2>&1); code=$?
check "bad option value: exit 2" test $code -eq 2
check "bad option value: names it" contains "$out" '--rtol expects a number'
printf '4\ncomment\nAr 0 0 0\nAr 1 x 0\n' > "$tmp/bad.xyz"
out=$("$enf" score --model "$tmp/mild" --input "$tmp/bad.xyz" 2>&1); code=$?
check "malformed xyz: exit 1" test $code -eq 1
check "malformed xyz: file and line" contains "$out" "bad.xyz', line 4: expected 'symbol x y z'"
out=$("$enf" sample --model "$tmp/mild" --n 3 --out "$tmp/x.txt" 2>&1); code=$?
check "unknown output format refused" bash -c "test $code -eq 2 && test ! -e '$tmp/x.txt'"
out=$("$enf" frobnicate 2>&1); code=$?
check "unknown command: exit 2" test $code -eq 2
check "unknown command: one line" test "$(wc -l <<< "$out")" -eq 1
check "enf help train is enf train --help" bash -c "'$enf' help train | grep -q 'usage: enf train'"
out=$("$enf" score --model "$tmp/mild" --input "$small" --rtol abc 2>&1)
check "usage error: one line with the help hint" bash -c "test \$(wc -l <<< \"\$0\") -eq 1 && grep -q \"see 'enf score --help'\" <<< \"\$0\"" "$out"

# Training: a run directory; resuming (after an epoch, or after Ctrl-C mid-epoch)
# ends on the same weights, bit for bit, as an uninterrupted run.
train=(train --system dw4 --n-data 300 --val-samples 100 --batch 50)
"$enf" "${train[@]}" --epochs 4 --out "$tmp/A" > "$tmp/A.out" 2>/dev/null
check "train: exit 0" test $? -eq 0
check "train: run directory" test -f "$tmp/A/config.json" -a -f "$tmp/A/metrics.jsonl" -a -d "$tmp/A/best" -a -d "$tmp/A/last"
check "train: one metrics line per step and validation" test "$(wc -l < "$tmp/A/metrics.jsonl")" -eq 28
check "train: refuses to overwrite a run" bash -c "! '$enf' ${train[*]} --epochs 1 --out '$tmp/A' 2>/dev/null"
"$enf" "${train[@]}" --epochs 2 --out "$tmp/B" > /dev/null 2>&1
"$enf" train --resume "$tmp/B" --epochs 4 > /dev/null 2>&1
check "resume after an epoch is exact" cmp -s "$tmp/A/last/weights.safetensors" "$tmp/B/last/weights.safetensors"
"$enf" "${train[@]}" --epochs 4 --out "$tmp/C" > /dev/null 2> "$tmp/C.log" &
pid=$!
for _ in $(seq 100); do [ -s "$tmp/C/metrics.jsonl" ] && break; sleep 0.05; done
kill -INT $pid
wait $pid
check "Ctrl-C: saved and told how to resume" grep -q 'enf train --resume' "$tmp/C.log"
"$enf" train --resume "$tmp/C" > /dev/null 2>&1
check "resume after Ctrl-C is exact" cmp -s "$tmp/A/last/weights.safetensors" "$tmp/C/last/weights.safetensors"
"$enf" score --model "$tmp/A/best" --input "$small" --rtol 1e-5 --atol 1e-5 --format json > "$tmp/best.json" 2>/dev/null
check "a trained checkpoint scores" grep -q '"nll"' "$tmp/best.json"

# Flow matching with a time budget (issue 14): the run ends at the budget
# with a validation, best/ and last/; the saved model is a CNF like any other
# (eval, score, sample with a fixed-step solver); resuming with the same
# budget does nothing, a larger one continues exactly as a run started with it.
fm=(train --system dw4 --objective flow-matching --n-data 300 --val-samples 100 --batch 50 --nf 16 --layers 2)
"$enf" "${fm[@]}" --max-time 0.05 --out "$tmp/FM" > "$tmp/FM.out" 2> "$tmp/FM.log"
check "flow matching: exit 0 at the budget" test $? -eq 0
check "flow matching: told the budget is used" grep -q 'time budget of' "$tmp/FM.log"
check "flow matching: a validation at the budget" grep -q '"time_budget":true' "$tmp/FM/metrics.jsonl"
check "flow matching: best/ and last/" test -d "$tmp/FM/best" -a -d "$tmp/FM/last"
check "flow matching: no NLL in step lines" bash -c "! grep '\"type\":\"step\"' '$tmp/FM/metrics.jsonl' | grep -q '\"nll\"'"
check "flow matching: config keeps the objective and budget" bash -c \
  "grep -q '\"objective\": \"flow-matching\"' '$tmp/FM/config.json' && grep -q '\"max-time\": 0.05' '$tmp/FM/config.json'"
cp "$tmp/FM/metrics.jsonl" "$tmp/FM.metrics"
"$enf" train --resume "$tmp/FM" > /dev/null 2>&1
check "flow matching: resume within a used budget: exit 0, nothing added" \
  bash -c "test $? -eq 0 && cmp -s '$tmp/FM/metrics.jsonl' '$tmp/FM.metrics'"
"$enf" "${fm[@]}" --epochs 3 --max-time 0 --out "$tmp/FM3" > /dev/null 2>&1
"$enf" "${fm[@]}" --epochs 2 --out "$tmp/FM2" > /dev/null 2>&1
"$enf" train --resume "$tmp/FM2" --epochs 3 > /dev/null 2>&1
check "flow matching: resume is exact (weights and their average)" \
  cmp -s "$tmp/FM3/last/weights.safetensors" "$tmp/FM2/last/weights.safetensors"
check "flow matching: the checkpoint keeps the training weights" \
  cmp -s "$tmp/FM3/last/state.safetensors" "$tmp/FM2/last/state.safetensors"
"$enf" eval --model "$tmp/FM/best" --data "$data" --limit 50 --samples 50 --plots "$tmp/fmplots" --run "$tmp/FM" \
  --format json > "$tmp/fmeval.json" 2>/dev/null
check "flow matching: eval with the training plot" bash -c "grep -q '\"ess\"' '$tmp/fmeval.json' && test -s '$tmp/fmplots/training.svg'"
"$enf" sample --model "$tmp/FM/best" --n 20 --out "$tmp/fm.npy" --method rk4 --fixed-steps 5 > /dev/null 2> "$tmp/fms.log"
check "flow matching: rk4 sampling in 5 steps (20 field evaluations)" grep -q '20.0 field evaluations per sample (rk4)' "$tmp/fms.log"

# Training on molecules (QM9): a tiny model on the first 8 molecules of the shipped
# split, 2 steps an epoch; p(N) from those 8; resuming is exact.
qm9=(train --system qm9 --nf 8 --layers 2 --dequantizer-nf 8 --dequantizer-layers 2 --batch 4 --n-data 8 --val-samples 8)
check "enf train --system qm9 --help: names the shipped split" bash -c "'$enf' train --system qm9 --help | grep -q 'the only QM9 split shipped'"
"$enf" "${qm9[@]}" --epochs 2 --out "$tmp/Q" > "$tmp/Q.out" 2> "$tmp/Q.log"
check "train qm9: exit 0" test $? -eq 0
check "train qm9: run directory" test -f "$tmp/Q/config.json" -a -f "$tmp/Q/metrics.jsonl" -a -d "$tmp/Q/best" -a -d "$tmp/Q/last"
check "train qm9: 4 steps and 2 validations in the metrics" test "$(wc -l < "$tmp/Q/metrics.jsonl")" -eq 6
check "train qm9: progress with the NLL on stderr" grep -q 'step 4/4  NLL' "$tmp/Q.log"
check "train qm9: a molecule checkpoint with p(N) of the 8 training molecules" python3 -c "
import json, sys
m = json.load(open(sys.argv[1]))
assert m['system'] == 'qm9' and m['molecule']['dequantization'] == 'argmax_variational'
assert sum(m['molecule']['node_counts']) == 8 and m['field']['hidden'] == 8" "$tmp/Q/last/model.json"
check "train qm9: optimizer and clipper state saved" grep -q 'clipper.history' "$tmp/Q/last/state.safetensors"
"$enf" "${qm9[@]}" --epochs 1 --out "$tmp/R" > /dev/null 2>&1
"$enf" train --resume "$tmp/R" --epochs 2 > /dev/null 2>&1
check "train qm9: resume is exact" cmp -s "$tmp/Q/last/weights.safetensors" "$tmp/R/last/weights.safetensors"
printf '3\nwater\nO 0 0 0\nH 0.76 0 0.59\nH -0.76 0 0.59\n3\nhydrogen sulfide\nS 0 0 0\nH 1.34 0 0\nH 0 1.34 0\n' > "$tmp/h2s.xyz"
out=$("$enf" train --data "$tmp/h2s.xyz" --batch 1 --val-samples 1 --out "$tmp/S" 2>&1); code=$?
check "train on a molecule file with S: exit 1, one line" bash -c "test $code -eq 1 && test \$(printf '%s\n' \"\$0\" | wc -l) -eq 1" "$out"
check "train on a molecule file with S: names the molecule and atom" contains "$out" "'hydrogen sulfide'.*atom 1 is S"
out=$("$enf" "${qm9[@]}" --n-data 13080 --out "$tmp/T" 2>&1); code=$?
check "train qm9: training and validation rows may not overlap" bash -c "test $code -eq 2" 
check "train qm9: says why" contains "$out" "exceed the 13083"

# More bad input: one clear line, non-zero exit.
cp -r "$tmp/A/best" "$tmp/corrupt"
head -c 100 "$tmp/A/best/weights.safetensors" > "$tmp/corrupt/weights.safetensors"
out=$("$enf" score --model "$tmp/corrupt" --input "$small" 2>&1); code=$?
check "corrupt checkpoint: exit 1, names the file" bash -c "test $code -eq 1 && test \$(printf '%s\n' \"\$0\" | wc -l) -eq 1" "$out"
check "corrupt checkpoint: says which file" contains "$out" "weights.safetensors"
out=$("$enf" score --model "$tmp/A/best" --input datasets/data/efm_splits/test_split_LJ13-1000.npy 2>&1); code=$?
check "wrong shape: exit 1" test $code -eq 1
check "wrong shape: says what was expected" contains "$out" "expected (rows, 8)"
out=$("$enf" score --model "$tmp/A/best" --input "$tmp/missing.npy" 2>&1); code=$?
check "missing input file: exit 1 and names it" bash -c "test $code -eq 1" 
check "missing input file: names it" contains "$out" "missing.npy"
out=$("$enf" train --bogus 1 2>&1); code=$?
check "unknown option: exit 2" test $code -eq 2
check "unknown option: named" contains "$out" "unknown option --bogus"

# What a user already has is never replaced, and bad input is found before the work.
echo "user data" > "$tmp/precious.txt"
out=$("$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/precious.txt" 2>&1); code=$?
check "import over a file: exit 1, file kept" bash -c "test $code -eq 1 && grep -q 'user data' '$tmp/precious.txt'"
mkdir -p "$tmp/userdir" && echo keep > "$tmp/userdir/keep.txt"
out=$("$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/userdir" 2>&1); code=$?
check "import over a directory of other files: exit 1, names the file, keeps it" \
  bash -c "test $code -eq 1 && test -f '$tmp/userdir/keep.txt' && grep -q 'keep.txt' <<< \"\$0\"" "$out"
python3 -c "
import struct, sys
h = \"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 8), }\"
h += ' ' * (63 - (10 + len(h)) % 64) + '\\n'
sys.stdout.buffer.write(b'\\x93NUMPY\\x01\\x00' + struct.pack('<H', len(h)) + h.encode())" > "$tmp/zero_rows.npy"
out=$("$enf" score --model "$tmp/A/best" --input "$tmp/zero_rows.npy" 2>&1); code=$?
check "zero structures: exit 1, one line" bash -c "test $code -eq 1 && test \$(wc -l <<< \"\$0\") -eq 1 && grep -q 'no structures' <<< \"\$0\"" "$out"
mkdir -p "$tmp/adir.npy"
out=$("$enf" score --model "$tmp/A/best" --input "$tmp/adir.npy" 2>&1); code=$?
check "a directory as input: exit 1, says so" bash -c "test $code -eq 1 && grep -q 'is a directory' <<< \"\$0\"" "$out"
for bad in "--threads -3" "--n 0"; do
  out=$("$enf" sample --model "$tmp/A/best" $bad --out "$tmp/never.xyz" 2>&1); code=$?
  check "sample $bad: usage error" bash -c "test $code -eq 2 && grep -q 'must be at least' <<< \"\$0\"" "$out"
done
# A missing directory of an output is made (issue 18), a file in its way is an error before sampling.
"$enf" sample --model "$tmp/A/best" --n 2 --out "$tmp/nodir/deeper/x.xyz" > /dev/null 2>&1
check "sample into a missing directory: made, sampled" test -s "$tmp/nodir/deeper/x.xyz"
touch "$tmp/afile"
out=$("$enf" sample --model "$tmp/A/best" --n 2 --out "$tmp/afile/sub/x.xyz" 2>&1); code=$?
check "sample under a file: exit 1, names it" bash -c "test $code -eq 1 && grep -q \"afile' is a file, not a directory\" <<< \"\$0\"" "$out"
out=$("$enf" score --model "$tmp/A/best" --input "$small" --method foo 2>&1); code=$?
check "unknown ODE method: usage error naming the valid ones" bash -c "test $code -eq 2 && grep -q 'dopri5' <<< \"\$0\"" "$out"
out=$("$enf" score --model "$tmp/A/best" --input "$small" --stride 2 2>&1); code=$?
check "molecule-only option on a particle model: usage error" test $code -eq 2
out=$("$enf" eval --model "$tmp/A/best" --data "$data" --format xml 2>&1); code=$?
check "eval: bad --format fails at once" test $code -eq 2
out=$("$enf" bench field --cases dw4,foo 2>&1); code=$?
check "bench field: unknown case is a usage error" bash -c "test $code -eq 2 && grep -q \"'foo'\" <<< \"\$0\"" "$out"
out=$("$enf" train --system dw4 --epochs 0 --out "$tmp/never_run" 2>&1); code=$?
check "train --epochs 0: usage error, no run directory left" bash -c "test $code -eq 2 && test ! -e '$tmp/never_run'"
out=$("$enf" train --system dw4 --data "$tmp/zero_rows.npy" --out "$tmp/never_run" 2>&1); code=$?
check "train on empty data: exit 1, no run directory left" bash -c "test $code -eq 1 && test ! -e '$tmp/never_run'"
out=$("$enf" train --resume "$tmp/userdir" 2>&1); code=$?
check "--resume of a directory that is no run: says so" bash -c "test $code -eq 2 && grep -q 'not a run directory' <<< \"\$0\"" "$out"

# Evaluation with plots, and MCMC data generation.
"$enf" eval --model "$tmp/A/best" --data "$data" --limit 200 --samples 200 --precision double --plots "$tmp/plots" --run "$tmp/A" --format json > "$tmp/eval.json" 2>/dev/null
check "eval: NLL and ESS" bash -c "grep -q '\"nll\"' '$tmp/eval.json' && grep -q '\"ess\"' '$tmp/eval.json'"
check "eval: three SVG plots" bash -c "ls '$tmp/plots'/distances.svg '$tmp/plots'/energies.svg '$tmp/plots'/training.svg > /dev/null"
"$enf" eval --model "$tmp/A/best" --data "$data" --limit 200 --samples 200 --format json > "$tmp/eval_f.json" 2>/dev/null
# The default (--precision auto) at eval's default 1e-5 runs the field in
# float32; same solver tolerance: the NLL agrees with float64 far inside its
# standard error (the samples of the ESS are float32 draws of their own).
check "eval: float32 by default at 1e-5, NLL within 1e-3 of float64's" python3 -c '
import json, sys
d, f = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(d["precision"] != "double" or f["precision"] != "float" or abs(d["nll"]["mean"] - f["nll"]["mean"]) > 1e-3
         or not 0 < f["ess"]["percent"] <= 100)' "$tmp/eval.json" "$tmp/eval_f.json"
"$enf" data generate dw4 --n 200 --out "$tmp/gen.npy" > "$tmp/gen.out" 2>/dev/null
check "data generate: writes the file" test -s "$tmp/gen.npy"
"$enf" score --model "$tmp/A/best" --input "$tmp/gen.npy" --rtol 1e-5 --atol 1e-5 > /dev/null 2>&1
check "generated data can be scored" test $? -eq 0
out=$("$enf" data generate dw4 --n 10 2>&1); code=$?
check "data generate: missing --out is a usage error" bash -c "test $code -eq 2"
check "data generate: points to its help" contains "$out" "enf data generate --help"

# Molecule quality metrics (stability, validity, uniqueness, novelty) of real QM9 molecules.
sdf=datasets/data/qm9/qm9_first500.sdf
check "enf metrics --help" bash -c "'$enf' metrics --help | grep -q 'usage: enf metrics'"
"$enf" metrics --input "$sdf" --format json --per-molecule "$tmp/per.csv" > "$tmp/metrics.json" 2> "$tmp/metrics.log"
check "metrics: exit 0" test $? -eq 0
check "metrics json: 500 molecules, the four metrics near 1, no novelty without --reference" python3 -c "
import json, sys
j = json.load(open(sys.argv[1]))
assert j['molecules'] == 500 and 'novelty' not in j
assert all(0.9 < j[k] <= 1 for k in ('atom_stability', 'molecule_stability', 'validity', 'uniqueness'))
assert j['counts']['valid'] <= 500" "$tmp/metrics.json"
check "metrics: one CSV row per molecule" test "$(wc -l < "$tmp/per.csv")" -eq 501
check "metrics: counts on stderr" grep -q '500 molecules' "$tmp/metrics.log"
out=$("$enf" metrics --input "$sdf" --reference "$sdf" 2>/dev/null)
check "metrics: a set is not novel against itself" contains "$out" '| novelty | 0.0000 |'
out=$("$enf" metrics --input "$tmp/missing.sdf" 2>&1); code=$?
check "metrics, missing file: exit 1, one line naming it" bash -c "test $code -eq 1 && test \$(printf '%s\n' \"\$0\" | wc -l) -eq 1" "$out"
check "metrics, missing file: names it" contains "$out" "missing.sdf"
out=$("$enf" metrics 2>&1); code=$?
check "metrics without --input: usage error" bash -c "test $code -eq 2"
printf '3\nwater\nO 0 0 0\nH 0.76 0 0.59\nH -0.76 0 0.59\n2\nhydrogen sulfide\nS 0 0 0\nH 1.34 0 0\n' > "$tmp/mixed.xyz"
out=$("$enf" metrics --input "$tmp/mixed.xyz" 2>&1); code=$?
check "metrics, unsupported element: exit 1" test $code -eq 1
out=$("$enf" metrics --input "$tmp/mixed.xyz" --skip-unsupported --format json 2>/dev/null)
check "metrics --skip-unsupported: judges the rest" python3 -c "
import json, sys
j = json.load(sys.stdin)
assert j['molecules'] == 1 and j['skipped'] == 1 and j['molecule_stability'] == 1" <<< "$out"

# QM9-positional: a particle flow on the 19-atom molecules' positions.
check "train qm9_positional (tiny)" bash -c "'$enf' train --system qm9_positional --epochs 1 --n-data 20 --val-samples 10 --batch 10 --nf 8 --layers 2 --out '$tmp/qpos' > /dev/null 2>&1 && test -f '$tmp/qpos/best/model.json'"
check "sample qm9_positional: 19 atoms" bash -c "'$enf' sample --model '$tmp/qpos/best' --n 2 --out '$tmp/qpos.xyz' 2>/dev/null && test \$(grep -c '^19\$' '$tmp/qpos.xyz') -eq 2"

finish
