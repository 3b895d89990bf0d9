# Crash safety of enf train (issue 17): a run killed with SIGKILL at random
# instants and resumed each time ends bit for bit where an uninterrupted run
# ends, with the same metrics.jsonl and no leftovers; SIGTERM stops a run as
# Ctrl-C does; a run started with a relative --data resumes from elsewhere;
# checkpoints and config.json are synced to disk.
source "$(dirname "$0")/cli_lib.sh"
enf=$(realpath "$enf")
root=$PWD
# A tiny flow, 4 steps an epoch, 20 epochs (about 3 s): many epoch ends and
# checkpoints for the kills to land in.
epochs=20
run=(train --system dw4 --n-data 40 --batch 10 --val-samples 10 --nf 8 --layers 2 --epochs $epochs --threads 1)
# metrics.jsonl without the step timings, which differ between runs.
untimed() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line); j.pop("seconds", None); print(json.dumps(j, sort_keys=True))' "$1"; }
same_run() {  # same_run DIR REF: last/ and best/ weights and the metrics agree
  cmp -s "$1/last/weights.safetensors" "$2/last/weights.safetensors" &&
    cmp -s "$1/best/weights.safetensors" "$2/best/weights.safetensors" &&
    diff <(untimed "$1/metrics.jsonl") <(untimed "$2/metrics.jsonl") > /dev/null
}
no_leftovers() { test -z "$(find "$1" -name '*.tmp*' -o -name '*.old-*')"; }

start=$(date +%s)
"$enf" "${run[@]}" --out "$tmp/ref" > /dev/null 2>&1
check "reference run: exit 0" test $? -eq 0
ref_ms=$(( $(date +%s%3N) - start * 1000 ))

# The kill test: 5 SIGKILLs, each after a random 0.2-2 s (at most a fifth of
# the reference run's duration, so that all five land before the run ends),
# resuming each time; a kill before config.json exists (no run yet) starts
# the run again.
max_ms=$(( ref_ms / 5 < 2000 ? ref_ms / 5 : 2000 ))
max_ms=$(( max_ms > 300 ? max_ms : 300 ))
seed=${ENF_KILL_SEED:-$RANDOM}
RANDOM=$seed
echo "kill test: seed $seed (ENF_KILL_SEED=$seed repeats the delays), reference run ${ref_ms} ms"
K="$tmp/K"
kills=0 finished=0
for _ in $(seq 20); do
  if [ -f "$K/config.json" ]; then cmd=(train --resume "$K"); else rm -rf "$K"; cmd=("${run[@]}" --out "$K"); fi
  if [ $kills -ge 5 ]; then
    "$enf" "${cmd[@]}" > /dev/null 2>&1 && finished=1
    break
  fi
  "$enf" "${cmd[@]}" > /dev/null 2>&1 &
  pid=$!
  ms=$(( 200 + RANDOM % (max_ms - 200) ))
  sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
  if kill -KILL $pid 2> /dev/null; then
    wait $pid 2> /dev/null
    kills=$((kills + 1))
    step=$(tail -n 1 "$K/metrics.jsonl" 2> /dev/null | grep -o '"step":[0-9]*')
    echo "  kill $kills after ${ms} ms (${step:-no step yet})"
  else
    wait $pid && finished=1
    break
  fi
done
check "kill test: the run finished" test $finished -eq 1
check "kill test: killed at least once" test $kills -ge 1
check "kill test: same weights and metrics as the uninterrupted run" same_run "$K" "$tmp/ref"
check "kill test: no leftovers (*.tmp*, *.old-*)" no_leftovers "$K"

# SIGTERM (Slurm, containers) saves the state and stops as Ctrl-C does.
"$enf" "${run[@]}" --out "$tmp/T" > /dev/null 2> "$tmp/T.log" &
pid=$!
for _ in $(seq 400); do [ -s "$tmp/T/metrics.jsonl" ] && break; sleep 0.05; done
kill -TERM $pid
wait $pid
code=$?
check "SIGTERM: exit 143, saved and told how to resume" bash -c "test $code -eq 143 && grep -q 'enf train --resume' '$tmp/T.log'"
"$enf" train --resume "$tmp/T" > /dev/null 2>&1
check "SIGTERM: resume is exact" same_run "$tmp/T" "$tmp/ref"

# Ctrl-C during a validation stops at once (the validation is dropped, the
# state saved as before it) and the resume validates that epoch: the same
# weights and metrics as an uninterrupted run. One step an epoch and a large
# exact-trace validation (LJ13, about 4 s), so the signal lands in it.
vrun=(train --system lj13 --n-data 10 --batch 10 --val-samples 150 --nf 16 --layers 2 --epochs 1 --threads 1)
"$enf" "${vrun[@]}" --out "$tmp/vref" > /dev/null 2>&1
"$enf" "${vrun[@]}" --out "$tmp/V" > /dev/null 2> "$tmp/V.log" &
pid=$!
for _ in $(seq 400); do [ -s "$tmp/V/metrics.jsonl" ] && break; sleep 0.05; done
sleep 0.3
kill -INT $pid
wait $pid
code=$?
check "SIGINT in a validation: exit 130, no validation line written" \
  bash -c "test $code -eq 130 && ! grep -q '\"type\": *\"validation\"' '$tmp/V/metrics.jsonl'"
"$enf" train --resume "$tmp/V" > /dev/null 2>&1
check "SIGINT in a validation: resume validates the epoch, exact" same_run "$tmp/V" "$tmp/vref"

# One process trains a run at a time: a second --resume while the first runs
# is refused and leaves it alone.
"$enf" "${run[@]}" --out "$tmp/L" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 400); do [ -s "$tmp/L/metrics.jsonl" ] && break; sleep 0.05; done
out=$("$enf" train --resume "$tmp/L" 2>&1); code=$?
kill -TERM $pid
wait $pid
check "a run being trained: a second process is refused" bash -c "test $code -ne 0 && grep -q 'in use' <<< \"\$0\"" "$out"

# What a save killed between its two renames leaves: no last/, the previous
# state at last.old-PID, an incomplete last.tmp-PID.
"$enf" "${run[@]}" --epochs 3 --out "$tmp/D" > /dev/null 2>&1
mv "$tmp/D/last" "$tmp/D/last.old-99999"
mkdir "$tmp/D/last.tmp-99999" && head -c 100 "$tmp/D/last.old-99999/weights.safetensors" > "$tmp/D/last.tmp-99999/weights.safetensors"
cp -r "$tmp/D/best" "$tmp/D/best.tmp-99998"
"$enf" sample --model "$tmp/D/last" --n 2 --out "$tmp/D.npy" > /dev/null 2>&1
check "killed between renames: the checkpoint still loads" test $? -eq 0
out=$("$enf" "${run[@]}" --out "$tmp/D" 2>&1)
check "killed between renames: a new run there is refused" contains "$out" "already holds a run"
"$enf" train --resume "$tmp/D" --epochs $epochs > /dev/null 2>&1
check "killed between renames: resume is exact" same_run "$tmp/D" "$tmp/ref"
check "killed between renames: leftovers removed" no_leftovers "$tmp/D"

# A run started with relative data paths resumes from another directory.
mkdir -p "$tmp/work/data" "$tmp/elsewhere"
cp datasets/data/efm_splits/test_split_DW4.npy "$tmp/work/data/dw4.npy"
(cd "$tmp/work" && "$enf" "${run[@]}" --data data/dw4.npy --val-data data/dw4.npy --epochs 1 --out P > /dev/null 2>&1)
check "relative --data: config.json holds absolute paths" grep -q "\"data\": \"$tmp/work/data/dw4.npy\"" "$tmp/work/P/config.json"
(cd "$tmp/elsewhere" && "$enf" train --resume ../work/P --epochs 2 > /dev/null 2>&1)
check "relative --data: resumes from another directory" test $? -eq 0
cd "$root"

# enf eval --work DIR (hours for LJ55 with the exact trace): SIGKILLed at
# random instants and run again, it ends with the uninterrupted result; a
# SIGTERM stops it with exit 143 saying what is kept; another job's DIR is refused.
ev=(eval --model "$tmp/ref/best" --data datasets/data/efm_splits/test_split_DW4.npy --limit 1000 --samples 1000
  --rtol 1e-7 --atol 1e-7 --threads 2 --format json)
summary() { python3 -c '
import json, sys
j = json.load(open(sys.argv[1])); j.pop("seconds", None); j.pop("work", None); print(json.dumps(j, sort_keys=True))' "$1"; }
"$enf" "${ev[@]}" > "$tmp/ev_ref.json" 2> /dev/null
ev_kills=0
for attempt in $(seq 12); do
  "$enf" "${ev[@]}" --work "$tmp/EW" > "$tmp/ev_work.json" 2> /dev/null &
  pid=$!
  sleep "0.$((RANDOM % 5 + 1))"  # the whole job: about 0.9 s
  kill -KILL $pid 2> /dev/null && ev_kills=$((ev_kills + 1))
  wait $pid 2> /dev/null && break
done
"$enf" "${ev[@]}" --work "$tmp/EW" > "$tmp/ev_work.json" 2> /dev/null
check "eval --work: killed $ev_kills times, then the uninterrupted result" \
  bash -c "test $ev_kills -ge 1 && test \"\$(summary '$tmp/ev_ref.json')\" = \"\$(summary '$tmp/ev_work.json')\""
"$enf" "${ev[@]}" --work "$tmp/ET" > /dev/null 2> "$tmp/ET.log" &
pid=$!
for _ in $(seq 400); do [ -s "$tmp/ET/nll.jsonl" ] && break; sleep 0.05; done
kill -TERM $pid
wait $pid
code=$?
check "eval --work: SIGTERM stops with exit 143, telling what is kept" \
  bash -c "test $code -eq 143 && grep -q 'the same command continues' '$tmp/ET.log'"
out=$("$enf" "${ev[@]}" --rtol 1e-5 --work "$tmp/EW" 2>&1); code=$?
check "eval --work: a directory of another job is refused, naming the difference" \
  bash -c "test $code -eq 1 && grep -q 'rtol: the file has 1e-07, this job 1e-05' <<< \"\$0\"" "$out"

# Files and directories are synced before and after each rename.
if strace -f -e trace=fsync -o "$tmp/strace.txt" true 2> /dev/null; then
  strace -f -e trace=fsync,rename,renameat,renameat2 -o "$tmp/strace.txt" "$enf" "${run[@]}" --epochs 1 --out "$tmp/S" > /dev/null 2>&1
  check "fsync: files and directories synced" test "$(grep -c 'fsync(' "$tmp/strace.txt")" -ge 10
else
  echo "skip fsync check (no strace)"
fi
echo "$(( $(date +%s) - start ))s"
finish
