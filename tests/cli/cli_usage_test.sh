#!/usr/bin/env bash
# Issues 17 and 18, the command line's part: outputs' missing directories are
# made, the README's usage lines run one command each, bench field's peak is
# measured alongside its kernels, eval's ESS is a percentage as the README
# gives it, counts have upper limits shown in --help, a run's config.json has
# typed values and old all-string ones still resume, enf --help names every
# format, and quickstart.sh checks its data before it builds.
# Usage: cli_usage_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"

# usage_error "what" PATTERN cmd...: exit 2 and PATTERN in the message.
usage_error() {
  local what="$1" pattern="$2"; shift 2
  local out code
  out=$("$@" 2>&1); code=$?
  check "$what: usage error (exit $code)" test $code -eq 2
  check "$what: says '$pattern'" contains "$out" "$pattern"
}

# ---- outputs: missing parent directories are made (README: enf import --out models/x)
check "import --out models/x without models/" "$enf" import --reference tests/fixtures/models/oracle_dw4_mild \
  --out "$tmp/models/dw4" > /dev/null
check "  the checkpoint is there" test -f "$tmp/models/dw4/model.json"
check "data generate --out into missing directories" "$enf" data generate dw4 --n 20 --burn-in 100 --thin 10 \
  --out "$tmp/gen/a/b.npy" > /dev/null 2>&1
check "  the array is there" test -s "$tmp/gen/a/b.npy"
check "field --out into a missing directory" "$enf" field --system dw4 --data "$tmp/gen/a/b.npy" --out "$tmp/f/x.csv" \
  > /dev/null 2>&1
check "  the CSV is there" test -s "$tmp/f/x.csv"
touch "$tmp/file"
out=$("$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/file/sub/x" 2>&1); code=$?
check "import --out under a file: exit 1, names it" bash -c "test $code -eq 1 && grep -q \"file' is a file, not a directory\" <<< \"\$0\"" "$out"

# ---- README: every usage line runs alone (no two enf commands on one line)
check "README: one enf command per line" bash -c "! grep -nE '(build/)?enf [a-z].*(\\||&&|;) *(build/)?enf ' README.md"

# ---- bench field: peak and kernel measured together; a ratio above 100 % says so
"$enf" bench field --cases dw4 --precision float --min-time 0.01 --format json > "$tmp/bf.json" 2> /dev/null
check "bench field json: each operation with the peak measured alongside it" python3 -c "
import json, sys
j = json.load(open('$tmp/bf.json'))
r = j['results']
assert len(r) == 3 and all(e['peak_gflops'] > 0 for e in r)
assert all(e['fraction_of_peak'] <= 1 or e['peak_disturbed'] for e in r)
assert all(e['peak_disturbed'] == (e['gflops'] > e['peak_gflops']) for e in r)"
check "bench field json: the exact trace of one sample (N·C directions) beside its f" python3 -c "
import json
t = json.load(open('$tmp/bf.json'))['exact_trace']
assert len(t) == 1 and t[0]['directions'] == 8 and 1 <= t[0]['chunk'] <= 32, t
assert t[0]['trace_ms'] > t[0]['f_ms'] > 0 and abs(t[0]['trace_over_f'] - t[0]['trace_ms'] / t[0]['f_ms']) < 1e-9, t"
"$enf" bench field --cases dw4 --precision float --min-time 0.01 > "$tmp/bf.md" 2> /dev/null
check "bench field table: no percentage above 100 without 'peak disturbed'" python3 -c "
import re
for line in open('$tmp/bf.md'):
    for m in re.finditer(r'\| (\d+)%( \(peak disturbed\))? \|', line):
        assert int(m.group(1)) <= 100 or m.group(2), line"
check "bench field --help: how the peak is measured" bash -c "'$enf' bench field --help | grep -q 'measured alternately with each operation'"

# ---- eval: ESS as a percentage, as the README reports it
m="$tmp/models/dw4"
"$enf" eval --model "$m" --data dw4:test --limit 20 --samples 20 --rtol 1e-5 --atol 1e-5 > "$tmp/eval.md" 2> /dev/null
check "eval table: ESS with a % sign" grep -qE '^\| ESS of .* \| [0-9.]+ % \|$' "$tmp/eval.md"
"$enf" eval --model "$m" --data dw4:test --limit 20 --samples 20 --rtol 1e-5 --atol 1e-5 --format json > "$tmp/eval.json" 2> /dev/null
check "eval json: ess.percent = 100 x ess.fraction" python3 -c "
import json
e = json.load(open('$tmp/eval.json'))['ess']
assert 0 < e['fraction'] <= 1 and abs(e['percent'] - 100 * e['fraction']) < 1e-12"

# ---- limits (issue 17): absurd counts are usage errors, and --help shows every limit
big=2000000000
usage_error "data generate --burn-in $big" "burn-in must be at most" "$enf" data generate dw4 --n 10 --burn-in $big --out "$tmp/x.npy"
usage_error "data generate --thin $big" "thin must be at most" "$enf" data generate dw4 --n 10 --thin $big --out "$tmp/x.npy"
usage_error "data generate --chains $big" "chains must be at most" "$enf" data generate dw4 --n 10 --chains $big --out "$tmp/x.npy"
usage_error "bench step --batch 1000000" "batch must be at most" "$enf" bench step --batch 1000000
usage_error "train --val-samples $big" "val-samples must be at most" "$enf" train --val-samples $big --out "$tmp/r1"
usage_error "train --n-data $big" "n-data must be at most" "$enf" train --n-data $big --out "$tmp/r2"
usage_error "train --system qm9 --val-samples $big" "val-samples must be at most" "$enf" train --system qm9 --val-samples $big --out "$tmp/r3"
check "  no run directory made" test ! -e "$tmp/r1" -a ! -e "$tmp/r2" -a ! -e "$tmp/r3"
check "data generate: burn-in auto is still accepted" bash -c "'$enf' data generate dw4 --n 4 --chains 1 --out '$tmp/auto.npy' > /dev/null 2>&1"
help_shows() {  # help_shows "cmd words" OPTION: the option's line in --help shows its bounds
  local line
  line=$("$enf" $1 --help | grep -E "^  --$2 ")
  check "enf $1 --help: --$2 shows its limits" bash -c "grep -qE '\\([0-9.e-]+ \\.\\. [0-9.e]+\\)' <<< \"\$0\"" "$line"
}
help_shows "data generate" burn-in
help_shows "data generate" thin
help_shows "data generate" n
help_shows "bench step" batch
help_shows "train" val-samples
help_shows "train" n-data
help_shows "train" threads
help_shows "eval" samples

# ---- config.json: numbers as numbers, flags as booleans; old all-string runs still resume
train=(train --system dw4 --n-data 100 --val-samples 50 --batch 50 --nf 8 --layers 2)
"$enf" "${train[@]}" --epochs 3 --out "$tmp/A" > /dev/null 2>&1
check "train: exit 0" test $? -eq 0
check "config.json: typed values" python3 -c "
import json
c = json.load(open('$tmp/A/config.json'))
assert c['batch'] == 50 and c['nf'] == 8 and c['epochs'] == 3 and c['seed'] == 0, c
assert c['lr'] == 5e-4 and c['rtol'] == 1e-4 and c['ode-regularization'] == 0, c
assert c['attention'] is True and c['clip'] is False, c
assert c['system'] == 'dw4' and c['precision'] == 'float' and c['data'] == '', c"
"$enf" "${train[@]}" --epochs 1 --out "$tmp/B" > /dev/null 2>&1
"$enf" train --resume "$tmp/B" --epochs 3 > /dev/null 2>&1
check "resume of a typed config.json is exact" cmp -s "$tmp/A/last/weights.safetensors" "$tmp/B/last/weights.safetensors"
"$enf" "${train[@]}" --epochs 1 --out "$tmp/S" > /dev/null 2>&1
# As runs before this change wrote it: every value a string.
python3 -c "
import json
p = '$tmp/S/config.json'
c = json.load(open(p))
s = {k: ('true' if v is True else 'false' if v is False else v if isinstance(v, str) else json.dumps(v)) for k, v in c.items()}
s['lr'] = '5e-4'
json.dump(s, open(p, 'w'), indent=2)"
check "  (the old run's config.json is all strings)" python3 -c "
import json; assert all(isinstance(v, str) for v in json.load(open('$tmp/S/config.json')).values())"
"$enf" train --resume "$tmp/S" --epochs 3 > /dev/null 2>&1
check "resume of an all-string config.json: exit 0" test $? -eq 0
check "resume of an all-string config.json is exact" cmp -s "$tmp/A/last/weights.safetensors" "$tmp/S/last/weights.safetensors"
printf '{"nf": [[[1]]]}' > "$tmp/arr.json"
usage_error "--config with an array value" "nf: expected a number, string or boolean" "$enf" train --config "$tmp/arr.json" --out "$tmp/r4"

# ---- enf --help names every format score reads and sample writes
top=$("$enf" --help)
for f in .npy .npz .xyz .sdf "Open Babel" "dataset name"; do
  check "enf --help: names '$f'" contains "$top" "$f"
done

# ---- quickstart.sh: its data are checked before packages and the build
qs="$tmp/qs"
mkdir -p "$qs/tools"
cp tools/quickstart.sh tools/setup.sh "$qs/tools/"
start=$(date +%s)
out=$(timeout 60 bash "$qs/tools/quickstart.sh" 2>&1); code=$?
check "quickstart without its data: exit 1 at once" test $code -eq 1 -a $(( $(date +%s) - start )) -lt 10
check "  says which file is missing" contains "$out" "missing data file .*train_split_DW4.npy"
check "  nothing built" test ! -e "$qs/build"
mkdir -p "$qs/datasets/data/efm_splits"
for s in train val test; do
  printf 'version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n' > "$qs/datasets/data/efm_splits/${s}_split_DW4.npy"
done
out=$(timeout 60 bash "$qs/tools/quickstart.sh" 2>&1); code=$?
check "quickstart with LFS pointers for data: exit 1, says so" bash -c "test $code -eq 1 && grep -q 'not a NumPy array' <<< \"\$0\"" "$out"
check "  nothing built" test ! -e "$qs/build"

finish
