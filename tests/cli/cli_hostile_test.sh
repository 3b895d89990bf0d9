#!/usr/bin/env bash
# Regression tests of issue 17's hostile-user probe, the command line's part:
# no crash on absurd --threads, inputs never overwritten, existing outputs
# kept without --force, unwritable outputs refused before the work, errors
# that print no raw control bytes and name the file and what was expected.
# Usage: cli_hostile_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
data=datasets/data/efm_splits/test_split_DW4.npy
sdf=datasets/data/qm9/qm9_first500.sdf
"$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/m" > /dev/null 2>&1
cp "$data" "$tmp/x.npy"
cp "$sdf" "$tmp/q.sdf"
head -c 2000 "$data" > "$tmp/x.head"  # the first bytes, to see that x.npy is untouched

# usage_error "what" PATTERN cmd...: exit 2 and PATTERN in the message.
usage_error() {
  local what="$1" pattern="$2"; shift 2
  local out code
  out=$("$@" 2>&1 > /dev/null); code=$?
  check "$what: exit 2 (got $code)" test $code -eq 2
  check "$what: says '$pattern'" contains "$out" "$pattern"
}

# --threads: bounded (4 x the cores), a usage error, never a crash.
for t in 100000 32768; do
  usage_error "score --threads $t" "threads must be at most" \
    "$enf" score --model "$tmp/m" --input "$tmp/x.npy" --threads $t
  usage_error "sample --threads $t" "threads must be at most" \
    "$enf" sample --model "$tmp/m" --n 2 --out "$tmp/t.xyz" --threads $t
  usage_error "train --threads $t" "threads must be at most" \
    "$enf" train --system dw4 --n-data 100 --val-samples 50 --batch 50 --epochs 1 --out "$tmp/run_t" --threads $t
done
check "train --threads: no run directory" test ! -e "$tmp/run_t"
usage_error "field --threads 100000" "threads must be at most" "$enf" field --threads 100000
usage_error "check gradients --threads 100000" "threads must be at most" \
  "$enf" check gradients --model "$tmp/m" --threads 100000
echo '{"threads": 100000}' > "$tmp/threads.json"
usage_error "train --config with threads 100000" "config file '$tmp/threads.json': threads must be at most" \
  "$enf" train --config "$tmp/threads.json" --out "$tmp/run_t"

# An output that is one of the inputs is refused, however it is spelled.
usage_error "metrics --per-molecule = --input" "is also an input" \
  "$enf" metrics --input "$tmp/q.sdf" --per-molecule "$tmp/q.sdf"
check "metrics: the input is untouched" cmp -s "$sdf" "$tmp/q.sdf"
usage_error "metrics --per-molecule = --reference (with --force)" "is also an input" \
  "$enf" metrics --input "$sdf" --reference "$tmp/q.sdf" --per-molecule "$tmp/../$(basename "$tmp")/q.sdf" --force
check "metrics: the reference is untouched" cmp -s "$sdf" "$tmp/q.sdf"
usage_error "field --out = --data" "is also an input" "$enf" field --data "$tmp/x.npy" --out "$tmp/x.npy"
usage_error "field --out = --data (./, --force)" "is also an input" \
  "$enf" field --data "$tmp/x.npy" --out "$tmp/./x.npy" --force
ln -s x.npy "$tmp/link.npy"
usage_error "field --out = a symbolic link to --data" "is also an input" \
  "$enf" field --data "$tmp/x.npy" --out "$tmp/link.npy" --force
check "field: the data is untouched" cmp -s "$data" "$tmp/x.npy"
# (a data directory of its own, ENF_DATA: a regression must not hit the shipped file)
mkdir -p "$tmp/d/efm_splits" && cp "$data" "$tmp/d/efm_splits/test_split_DW4.npy"
usage_error "field --out = the file a dataset name reads (--force)" "is also an input" \
  env ENF_DATA="$tmp/d" "$enf" field --data dw4:test --limit 5 --out "$tmp/d/efm_splits/test_split_DW4.npy" --force
check "field: the named data is untouched" cmp -s "$data" "$tmp/d/efm_splits/test_split_DW4.npy"
usage_error "sample --out = a file of --model" "input" \
  "$enf" sample --model "$tmp/m" --n 2 --out "$tmp/m/model.json" --force
usage_error "import --out = --reference" "is the --reference directory" \
  "$enf" import --reference "$tmp/m" --out "$tmp/m/."

# Existing outputs are kept unless --force.
echo keep > "$tmp/s.xyz"
usage_error "sample over an existing file" "give --force" "$enf" sample --model "$tmp/m" --n 2 --out "$tmp/s.xyz"
check "sample: the existing file is kept" grep -q keep "$tmp/s.xyz"
check "sample --force replaces it" bash -c "'$enf' sample --model '$tmp/m' --n 2 --out '$tmp/s.xyz' --force 2> /dev/null && test \$(grep -c '^4\$' '$tmp/s.xyz') -eq 2"
echo keep > "$tmp/f.csv"
usage_error "field --out over an existing file" "give --force" "$enf" field --limit 5 --out "$tmp/f.csv"
check "field --force replaces it" bash -c "'$enf' field --limit 5 --out '$tmp/f.csv' --force > /dev/null && grep -q max_abs_f '$tmp/f.csv'"
echo keep > "$tmp/per.csv"
usage_error "metrics --per-molecule over an existing file" "give --force" \
  "$enf" metrics --input "$sdf" --per-molecule "$tmp/per.csv"
check "metrics: the existing file is kept" grep -q keep "$tmp/per.csv"
echo keep > "$tmp/g.npy"
usage_error "data generate over an existing file" "give --force" "$enf" data generate dw4 --n 5 --out "$tmp/g.npy"
mkdir -p "$tmp/plots" && echo keep > "$tmp/plots/energies.svg"
usage_error "eval --plots over existing plots" "give --force" \
  "$enf" eval --model "$tmp/m" --data "$data" --limit 10 --samples 10 --plots "$tmp/plots"
check "eval: the existing plot is kept" grep -q keep "$tmp/plots/energies.svg"
usage_error "import over an existing checkpoint" "give --force" \
  "$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/m"
check "import --force replaces it" bash -c "'$enf' import --reference tests/fixtures/models/oracle_dw4_mild --out '$tmp/m' --force > /dev/null"

# An output that cannot be written fails at once, before the work (/proc
# refuses new files even to root).
out=$(timeout 20 "$enf" sample --model "$tmp/m" --n 100000 --out /proc/enf-hostile.xyz 2>&1); code=$?
check "sample into an unwritable directory: exit 1 at once (got $code)" test $code -eq 1
check "sample into an unwritable directory: says so" contains "$out" "is not writable"
out=$(timeout 20 "$enf" data generate dw4 --n 100000 --out /proc/enf-hostile.npy 2>&1); code=$?
check "data generate into an unwritable directory: fails at once (got $code)" test $code -eq 1 -o $code -eq 2
check "data generate into an unwritable directory: says so" contains "$out" "is not writable"

# Errors show control characters and invalid UTF-8 as escapes, never raw.
out=$("$enf" score --model "$tmp/no"$'\e[31m'"pe"$'\xff' --input "$tmp/x.npy" 2>&1); code=$?
check "an escape in a file name: exit 1" test $code -eq 1
check "an escape in a file name: shown as \\x1b" contains "$out" 'no\\x1b\[31mpe\\xff'
check "an escape in a file name: no raw ESC or 0xff byte" bash -c "! LC_ALL=C grep -q \$'[\\x1b\\xff]' <<< \"\$0\"" "$out"
out=$("$enf" score --model "$tmp/m" --input "$tmp/x.npy" --$'\e]0;owned\a' 2>&1)
check "an escape in an option: shown as \\x1b and \\x07" contains "$out" '\\x1b\]0;owned\\x07'
out=$("$enf" score --model "$tmp/m" --input "$tmp/Å−.npy" 2>&1)
check "valid UTF-8 stays as it is" contains "$out" "Å−.npy"

# Errors from files name the file and what was expected, not a library's message.
echo '{"lr": {}}' > "$tmp/c.json"  # (lr has no minimum: checked only when used)
usage_error "a --config value of the wrong type" "config file '$tmp/c.json'" \
  "$enf" train --config "$tmp/c.json" --out "$tmp/run_c"
for kv in '"format": 5' '"version": "1"' '"system": 5' '"training": 5'; do
  rm -rf "$tmp/bad" && cp -r "$tmp/m" "$tmp/bad"
  python3 -c "
import json, sys
j = json.load(open(sys.argv[1])); j.update(json.loads('{' + sys.argv[2] + '}')); json.dump(j, open(sys.argv[1], 'w'))" \
    "$tmp/bad/model.json" "$kv"
  out=$("$enf" score --model "$tmp/bad" --input "$tmp/x.npy" 2>&1); code=$?
  check "model.json with $kv: exit 1 naming the file" bash -c "test $code -eq 1 && grep -q 'model.json' <<< \"\$0\"" "$out"
  check "model.json with $kv: what was expected" bash -c "grep -q 'must be' <<< \"\$0\" && ! grep -q 'json.exception' <<< \"\$0\"" "$out"
done
echo '[1, 2]' > "$tmp/bad/model.json"
out=$("$enf" score --model "$tmp/bad" --input "$tmp/x.npy" 2>&1)
check "model.json not an object: named, no library message" bash -c "grep -q 'model.json.*expected a JSON object' <<< \"\$0\" && ! grep -q 'json.exception' <<< \"\$0\"" "$out"
mkdir -p "$tmp/ref" && cp tests/fixtures/models/oracle_dw4_mild/flow.safetensors "$tmp/ref/"
python3 -c "
import json, sys
j = json.load(open(sys.argv[1])); j['lr'] = 'fast'; json.dump(j, open(sys.argv[2], 'w'))" \
  tests/fixtures/models/oracle_dw4_mild/args.json "$tmp/ref/args.json"
out=$("$enf" import --reference "$tmp/ref" --out "$tmp/ref_m" 2>&1)
check "args.json with a wrong type: named, no library message" bash -c "grep -q \"args.json': 'lr' has the wrong type\" <<< \"\$0\" && ! grep -q 'json.exception' <<< \"\$0\"" "$out"
echo '[1]' > "$tmp/ref/args.json"
out=$("$enf" import --reference "$tmp/ref" --out "$tmp/ref_m" 2>&1)
check "args.json not an object: named, no library message" bash -c "grep -q 'args.json.*expected a JSON object' <<< \"\$0\" && ! grep -q 'json.exception' <<< \"\$0\"" "$out"

# A resumed run whose last/model.json has a training counter of the wrong type.
"$enf" train --system dw4 --n-data 100 --val-samples 50 --batch 50 --epochs 1 --out "$tmp/run_r" > /dev/null 2>&1
python3 -c "
import json, sys
j = json.load(open(sys.argv[1])); j['extra']['training_state']['epoch'] = 'x'; json.dump(j, open(sys.argv[1], 'w'))" \
  "$tmp/run_r/last/model.json"
out=$("$enf" train --resume "$tmp/run_r" --epochs 2 2>&1)
check "resume with a damaged training state: named, no library message" bash -c "grep -q 'model.json.*epoch must be an integer' <<< \"\$0\" && ! grep -q 'json.exception' <<< \"\$0\"" "$out"

# Counts that size allocations are bounded: a usage error, not out of memory.
usage_error "sample --n 2000000000" "n must be at most" "$enf" sample --model "$tmp/m" --n 2000000000 --out "$tmp/big.npy"
usage_error "eval --samples 2000000000" "samples must be at most" \
  "$enf" eval --model "$tmp/m" --data "$data" --samples 2000000000
usage_error "data generate --n 2000000000" "n must be at most" "$enf" data generate dw4 --n 2000000000 --out "$tmp/big.npy"
usage_error "check gradients --directions 2000000000" "directions must be at most" \
  "$enf" check gradients --model "$tmp/m" --directions 2000000000

# A run's metrics.jsonl line whose "type" is no string is a training line, not a library error.
mkdir -p "$tmp/run_bad"
echo '{"step": 1, "nll": 2.0, "type": 5}' > "$tmp/run_bad/metrics.jsonl"
out=$("$enf" eval --model "$tmp/m" --data "$data" --limit 10 --samples 10 --plots "$tmp/plots2" --run "$tmp/run_bad" 2>&1)
check "metrics.jsonl with a numeric type: no library message" bash -c "! grep -q 'json.exception' <<< \"\$0\"" "$out"
finish
