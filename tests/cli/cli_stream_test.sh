#!/usr/bin/env bash
# Issue 18: enf sample writes each molecule as it is made and keeps them on
# Ctrl-C/SIGTERM; enf score prints rows as they finish, in input order, and
# keeps them when interrupted; a molecule whose size has p(N) = 0 is reported
# and left out of the summary.
# Usage: cli_stream_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
qm9=datasets/data/qm9
fast=(--trace gaussian --rtol 1e-4 --atol 1e-4)
"$enf" import --reference datasets/models/en_flows_qm9_pretrained --out "$tmp/qm9" > /dev/null 2>&1
M="$tmp/qm9"

sdf_records() { grep -c '^\$\$\$\$' "$1"; }
xyz_records() { grep -c '^enf sample ' "$1"; }
# wait_records FILE COUNT_FN N: up to 60 s for FILE to hold N records.
wait_records() {
  for _ in $(seq 600); do
    [ -f "$1" ] && [ "$($2 "$1")" -ge "$3" ] && return 0
    sleep 0.1
  done
  return 1
}

# Interrupted sample (SIGINT, SDF): the finished molecules are in --out, as many
# as the message says, readable, and no .part is left.
"$enf" sample --model "$M" --n 200 --seed 5 --threads 2 --no-score "${fast[@]}" --out "$tmp/int.sdf" \
  > "$tmp/int.csv" 2> "$tmp/int.log" &
pid=$!
check "sample: records appear in .part while running" wait_records "$tmp/int.sdf.part" sdf_records 2
kill -INT $pid
wait $pid
rc=$?
check "sample SIGINT: exit 130" test $rc -eq 130
check "sample SIGINT: --out exists, no .part left" bash -c "test -f '$tmp/int.sdf' && test ! -e '$tmp/int.sdf.part'"
n=$(grep -o 'wrote [0-9]* of 200' "$tmp/int.log" | grep -o '[0-9]*' | head -1)
check "sample SIGINT: says how many it wrote (>= 2)" test "${n:-0}" -ge 2
check "sample SIGINT: the file has that many records" test "$(sdf_records "$tmp/int.sdf")" -eq "${n:-0}"
check "sample SIGINT: records in index order" bash -c \
  "diff <(grep '^enf sample' '$tmp/int.sdf') <(for i in \$(seq 0 $((${n:-1} - 1))); do echo \"enf sample \$i\"; done)"
check "sample SIGINT: enf metrics reads it back" bash -c \
  "'$enf' metrics --input '$tmp/int.sdf' --format json 2>/dev/null | grep -q '\"molecules\": ${n:-x}'"
check "sample SIGINT: the message says what happened" grep -q 'stopping' "$tmp/int.log"

# SIGTERM, XYZ: exit 143, same guarantees.
"$enf" sample --model "$M" --n 200 --seed 5 --threads 2 --no-score "${fast[@]}" --out "$tmp/term.xyz" \
  > /dev/null 2> "$tmp/term.log" &
pid=$!
wait_records "$tmp/term.xyz.part" xyz_records 2
kill -TERM $pid
wait $pid
rc=$?
check "sample SIGTERM: exit 143" test $rc -eq 143
n=$(grep -o 'wrote [0-9]* of 200' "$tmp/term.log" | grep -o '[0-9]*' | head -1)
check "sample SIGTERM: xyz has the molecules it reports, no .part" bash -c \
  "test ${n:-0} -ge 2 && test \$(grep -c '^enf sample ' '$tmp/term.xyz') -eq ${n:-0} && test ! -e '$tmp/term.xyz.part'"
# A second signal exits at once: the .part file stays, valid, and is named.
# Sent once the first has been handled (signals of one kind do not queue);
# should the molecules in progress all finish in between (rare), the run
# ends normally and the attempt is repeated.
for attempt in 1 2 3; do
  rm -f "$tmp/twice.sdf" "$tmp/twice.sdf.part"
  "$enf" sample --model "$M" --n 200 --seed 5 --threads 2 --no-score "${fast[@]}" --out "$tmp/twice.sdf" \
    > /dev/null 2> "$tmp/twice.log" &
  pid=$!
  wait_records "$tmp/twice.sdf.part" sdf_records 2
  kill -INT $pid
  for _ in $(seq 100); do grep -q stopping "$tmp/twice.log" && break; sleep 0.01; done
  kill -INT $pid 2>/dev/null
  wait $pid
  rc=$?
  [ -e "$tmp/twice.sdf.part" ] && break
done
check "sample, second SIGINT: exit 130 at once, .part kept and named" bash -c \
  "test $rc -eq 130 && test ! -e '$tmp/twice.sdf' && grep -q 'twice.sdf.part' '$tmp/twice.log'"
cp "$tmp/twice.sdf.part" "$tmp/twice_part.sdf"
check "sample, second SIGINT: the .part file is valid SDF" bash -c \
  "'$enf' metrics --input '$tmp/twice_part.sdf' --format json 2>/dev/null | grep -q '\"molecules\": $(sdf_records "$tmp/twice.sdf.part")'"
err=$("$enf" sample --model "$M" --n 2 --no-score --out "$tmp/twice.sdf" 2>&1 >/dev/null); rc=$?
check "sample: a leftover .part is not overwritten without --force" bash -c \
  "test $rc -eq 2 && grep -q 'twice.sdf.part' <<< \"\$0\" && test -s '$tmp/twice.sdf.part'" "$err"

# The interrupted run's molecules are the first of an uninterrupted one (same seed).
"$enf" sample --model "$M" --n 2 --seed 5 --threads 1 --no-score "${fast[@]}" --out "$tmp/two.xyz" > /dev/null 2>&1
check "sample: the interrupted run's first molecules = an uninterrupted run's" bash -c \
  "cmp -s '$tmp/two.xyz' <(head -n \$(wc -l < '$tmp/two.xyz') '$tmp/term.xyz')"

# Determinism: the same file whatever the thread count.
"$enf" sample --model "$M" --n 3 --seed 7 --threads 2 --no-score "${fast[@]}" --out "$tmp/t2.xyz" > /dev/null 2>&1
"$enf" sample --model "$M" --n 3 --seed 7 --threads 1 --no-score "${fast[@]}" --out "$tmp/t1.xyz" > /dev/null 2>&1
check "sample: --threads 1 and 2 write the same file, in index order" bash -c \
  "cmp -s '$tmp/t1.xyz' '$tmp/t2.xyz' && test \"\$(grep -o '^enf sample [0-9]*' '$tmp/t2.xyz' | tr '\n' ,)\" = 'enf sample 0,enf sample 1,enf sample 2,'"

# Scoring by default with Hutchinson's estimator; --trace exact accepted; --no-score omits it.
"$enf" sample --model "$M" --n 3 --seed 3 --threads 1 --rtol 1e-4 --atol 1e-4 --out "$tmp/h.sdf" > /dev/null 2> "$tmp/h.log"
check "sample: scored by default, with the Gaussian Hutchinson trace" bash -c \
  "test \$(grep -c '<log_likelihood>' '$tmp/h.sdf') -eq 3 && grep -q 'gaussian trace' '$tmp/h.log'"
check "sample: an estimate of the time after the first molecules" grep -q 'about [0-9]* s for 3 molecules' "$tmp/h.log"
"$enf" sample --model "$M" --n 1 --atoms 3 --seed 3 --trace exact --rtol 1e-3 --atol 1e-3 --out "$tmp/e.sdf" \
  > /dev/null 2> "$tmp/e.log"
check "sample --trace exact: accepted, scored" bash -c \
  "grep -q 'exact trace' '$tmp/e.log' && test \$(grep -c '<log_likelihood>' '$tmp/e.sdf') -eq 1"
check "sample --no-score: no log_likelihood" bash -c "! grep -q '<log_likelihood>' '$tmp/int.sdf'"

# Score streams in input order; JSON lines each parse, the summary last.
"$enf" score --model "$M" --input "$qm9/qm9_first500.sdf" --limit 4 --threads 2 "${fast[@]}" > "$tmp/s.csv" 2>/dev/null
check "score csv: header and rows 0..3 in order" bash -c \
  "test \"\$(cut -d, -f1 '$tmp/s.csv' | tr '\n' ,)\" = 'index,0,1,2,3,'"
"$enf" score --model "$M" --input "$qm9/qm9_first500.sdf" --limit 4 --threads 2 "${fast[@]}" --format json \
  > "$tmp/s.jsonl" 2>/dev/null
check "score json: every line parses; rows 0..3 in order, then the summary" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["index"] for r in rows[:-1]] == [0, 1, 2, 3], rows
s = rows[-1]["summary"]
assert s["count"] == 4 and s["excluded"] == 0 and isinstance(s["mean_log_likelihood"], float)' "$tmp/s.jsonl"

# Interrupted score: the printed rows stay, then the summary; exit 130.
"$enf" score --model "$M" --input "$qm9/qm9_first500.sdf" --limit 200 --threads 2 "${fast[@]}" \
  > "$tmp/is.csv" 2> "$tmp/is.log" &
pid=$!
rows() { tail -n +2 "$1" | grep -c '^[0-9]*,.*,$'; }
wait_records "$tmp/is.csv" rows 1
kill -INT $pid
wait $pid
rc=$?
check "score SIGINT: exit 130" test $rc -eq 130
check "score SIGINT: header and >= 1 complete row kept" bash -c \
  "head -1 '$tmp/is.csv' | grep -q '^index,name' && test \$(tail -n +2 '$tmp/is.csv' | grep -c ',\$') -ge 1"
check "score SIGINT: summary of the rows printed" bash -c \
  "grep -q 'interrupted' '$tmp/is.log' && grep -q '^NLL' '$tmp/is.log'"

# p(N) = 0 (QM9 has no 2-atom molecule; methane, 5 atoms, is in it): not
# integrated, reported on its row, excluded from a finite summary.
printf '2\nhydrogen\nH 0 0 0\nH 0 0 0.74\n5\nmethane\nC 0 0 0\nH 0.63 0.63 0.63\nH -0.63 -0.63 0.63\nH -0.63 0.63 -0.63\nH 0.63 -0.63 -0.63\n' \
  > "$tmp/pn.xyz"
"$enf" score --model "$M" --input "$tmp/pn.xyz" "${fast[@]}" > "$tmp/pn.csv" 2> "$tmp/pn.log"
check "p(N) = 0: exit 0, its row says why" bash -c "grep -q '^0,hydrogen,2,-inf,-inf,.*p(N) = 0' '$tmp/pn.csv'"
check "p(N) = 0: the other molecule scores finitely" bash -c "grep -qE '^1,methane,5,-?[0-9]' '$tmp/pn.csv'"
check "p(N) = 0: summary finite, 1 excluded" bash -c \
  "grep '^NLL' '$tmp/pn.log' | grep -q '1 excluded' && ! grep '^NLL' '$tmp/pn.log' | grep -qiE 'nan|inf'"
"$enf" score --model "$M" --input "$tmp/pn.xyz" "${fast[@]}" --format json > "$tmp/pn.jsonl" 2>/dev/null
check "p(N) = 0 json: excluded row, summary without null" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[0]["excluded"] is True and rows[0]["log_likelihood"] is None
s = rows[-1]["summary"]
assert s["excluded"] == 1 and s["count"] == 1
assert all(v is not None for v in s.values()), s' "$tmp/pn.jsonl"

# Particle models: score streams and keeps its rows on Ctrl-C too; sample
# --log-q prints a summary to a terminal, the CSV to a file or pipe.
"$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/dw4" > /dev/null 2>&1
"$enf" score --model "$tmp/dw4" --input dw4:test --threads 2 --format json > "$tmp/p.jsonl" 2> "$tmp/p.log" &
pid=$!
lines() { wc -l < "$1"; }
wait_records "$tmp/p.jsonl" lines 2
kill -INT $pid
wait $pid
rc=$?
check "particle score SIGINT: exit 130, rows in order, then a summary of them" python3 -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert int(sys.argv[2]) == 130
assert [r["index"] for r in rows[:-1]] == list(range(len(rows) - 1)) and len(rows) >= 2
s = rows[-1]["summary"]
assert s["interrupted"] is True and s["count"] == len(rows) - 1 and s["rows"] == 10000' "$tmp/p.jsonl" $rc
out=$(script -qc "'$enf' sample --model '$tmp/dw4' --n 20 --out '$tmp/lq.xyz' --log-q" /dev/null)
check "sample --log-q to a terminal: a summary, no CSV" bash -c \
  "grep -q 'effective sample size' <<< \"\$0\" && ! grep -q '^index,' <<< \"\$0\"" "$out"
check "sample --log-q to a pipe: the CSV" bash -c \
  "'$enf' sample --model '$tmp/dw4' --n 20 --out '$tmp/lq2.xyz' --log-q 2>/dev/null | tail -n +2 | wc -l | grep -qx 20"

finish
