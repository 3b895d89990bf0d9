#!/usr/bin/env bash
# Issue 16: `mpirun -np K enf train` takes the steps one process takes, bit
# for bit (weights, optimizer state, validations), for DW4 by maximum
# likelihood and flow matching, for QM9 molecules and for the conformer model
# by maximum likelihood; a run resumes with another K; a stop asked of one
# rank stops all with last/ saved; a killed
# rank ends the job (no hang) with a line from the survivor and an intact
# checkpoint. Run by ctest only when enf is built with ENF_MPI=ON.
#   tests/cli/cli_mpi_train_test.sh ENF
source "$(dirname "$0")/cli_lib.sh"
# As root in CI, more ranks than cores, and no ssh needed: every rank is local
# (Open MPI looks for an ssh or rsh agent even then; /bin/false satisfies it).
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
  OMPI_MCA_plm_rsh_agent=false
# A job that takes longer than this has hung (a rank waiting for a dead peer);
# the sanitizers' build runs ~10× slower, so it gets ten times the bound.
hang_limit=120
"$enf" --version | grep -q sanitizers && hang_limit=$((120 * 10))
# mpi K args...: enf on K ranks, bounded so that a hang fails instead of waiting.
# Under the sanitizers the ranks run without LeakSanitizer: Open MPI 4.1 leaves
# its own allocations at MPI_Finalize, from plugins it has unloaded by then (no
# name a suppression could match); enf's code on these paths is leak-checked
# with ranks as threads (test_distributed) and as one process (below).
mpi() {
  local k=$1; shift
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout "$hang_limit" mpirun -np "$k" "$enf" "$@"
}
rank_pids() {  # rank_pids RUN_DIR: the pids of the enf ranks training RUN_DIR, in rank order of start
  local p
  for p in $(pgrep -f -- "--out $1( |$)"); do
    [ "$(cat "/proc/$p/comm" 2> /dev/null)" = enf ] && echo "$p"
  done | sort -n
}
# Same bytes in both checkpoints (weights and training state) and the same validation lines.
same_run() {  # same_run DIR_A DIR_B
  cmp -s "$1/last/weights.safetensors" "$2/last/weights.safetensors" &&
    cmp -s "$1/last/state.safetensors" "$2/last/state.safetensors" &&
    cmp -s "$1/best/weights.safetensors" "$2/best/weights.safetensors" &&
    diff <(grep '"validation"' "$1/metrics.jsonl") <(grep '"validation"' "$2/metrics.jsonl") > /dev/null
}

dw4=(train --system dw4 --n-data 120 --batch 40 --val-samples 30 --threads 1)
"$enf" "${dw4[@]}" --epochs 3 --out "$tmp/one" 2> "$tmp/one.err"
check "one process trains" test -f "$tmp/one/last/weights.safetensors"
for k in 1 2 3; do
  mpi "$k" "${dw4[@]}" --epochs 3 --out "$tmp/k$k" > "$tmp/k$k.out" 2> "$tmp/k$k.err"
  check "mpirun -np $k: exits 0" test $? -eq 0
  check "mpirun -np $k: weights, optimizer state and validations equal one process's" same_run "$tmp/one" "$tmp/k$k"
done
check "rank 0 alone prints the result" test "$(grep -c '^run ' "$tmp/k3.out")" -eq 1
check "rank 0 alone reports progress" test "$(grep -c '^enf train:' "$tmp/k3.err")" -eq 1
check "the first line names the ranks" grep -q '3 ranks (MPI)' "$tmp/k3.err"
check "steps record each rank's busy and idle time" grep -q '"rank_busy":\[[^]]*,[^]]*,' "$tmp/k3/metrics.jsonl"

# The result does not depend on K, so a run continues on another K: 1 epoch on 2
# ranks, then to 3 epochs on 3 ranks, ends as the uninterrupted run.
mpi 2 "${dw4[@]}" --epochs 1 --out "$tmp/resumed" > /dev/null 2>&1
mpi 3 train --resume "$tmp/resumed" --epochs 3 --threads 1 > /dev/null 2> "$tmp/resumed.err"
check "resumed on 3 ranks after 1 epoch on 2: the uninterrupted run" same_run "$tmp/one" "$tmp/resumed"

# Flow matching: the same bits on 2 ranks (equivariant-OT coupling on every rank alike).
fm=("${dw4[@]}" --objective flow-matching --coupling equivariant-ot --epochs 2)
"$enf" "${fm[@]}" --out "$tmp/fm1" 2> /dev/null
mpi 2 "${fm[@]}" --out "$tmp/fm2" > /dev/null 2>&1
check "flow matching on 2 ranks: one process's weights and EMA" same_run "$tmp/fm1" "$tmp/fm2"

# QM9 molecules (atoms² cost balancing puts unequal counts of molecules on the ranks).
qm9=(train --system qm9 --data qm9:test --n-data 24 --val-samples 8 --batch 8 --epochs 1 --nf 8 --layers 2
  --dequantizer-nf 8 --dequantizer-layers 2 --rtol 1e-3 --atol 1e-3 --threads 1)
"$enf" "${qm9[@]}" --out "$tmp/q1" 2> "$tmp/q1.err"
check "one process trains QM9" test -f "$tmp/q1/last/weights.safetensors"
mpi 3 "${qm9[@]}" --out "$tmp/q3" > /dev/null 2> "$tmp/q3.err"
check "QM9 on 3 ranks: one process's weights and validations" same_run "$tmp/q1" "$tmp/q3"

# The conformer model by maximum likelihood (issue 15): molecules of mixed
# sizes shared by their atoms² over the ranks, each with its own conditioning.
conf=(train --system qm9-conformers --objective maximum-likelihood --n-data 24 --val-samples 4 --batch 8 --epochs 1
  --nf 8 --layers 2 --rtol 1e-3 --atol 1e-3 --threads 1)
"$enf" "${conf[@]}" --out "$tmp/c1" 2> /dev/null
check "one process trains the conformer model by maximum likelihood" test -f "$tmp/c1/last/weights.safetensors"
mpi 2 "${conf[@]}" --out "$tmp/c2" > /dev/null 2>&1
check "conformer model by maximum likelihood on 2 ranks: one process's weights and validations" same_run "$tmp/c1" "$tmp/c2"

# A stop asked of one rank (SIGTERM to one rank alone) stops every rank at
# the same step; rank 0 saves last/ and the resume ends as the uninterrupted
# run. One epoch is 50 steps, so the stop (sent after the first step) falls
# within it even on a loaded machine.
long=(train --system dw4 --n-data 1000 --batch 20 --val-samples 20 --threads 1 --epochs 1)
"$enf" "${long[@]}" --out "$tmp/long" 2> /dev/null > /dev/null
mpi 2 "${long[@]}" --out "$tmp/stop" > /dev/null 2> "$tmp/stop.err" &
runner=$!
for _ in $(seq 100); do [ -e "$tmp/stop/last" ] && break; sleep 0.1; done
kill -TERM "$(rank_pids "$tmp/stop" | tail -n 1)"
wait $runner
code=$?
check "a stop of one rank ends the job with its code" test "$code" -ne 0
check "rank 0 saved the state and says how to resume" grep -q 'continue with: enf train --resume' "$tmp/stop.err"
check "... within the epoch" grep -q '"epoch":0,' <(tail -n 1 "$tmp/stop/metrics.jsonl")
mpi 2 train --resume "$tmp/stop" --threads 1 > /dev/null 2>&1
check "after the stop, resumed: the uninterrupted run" same_run "$tmp/long" "$tmp/stop"

# A rank killed outright (SIGKILL): the job ends, no rank hangs, the survivor
# says why in one line, and the last checkpoint is whole.
mpi 2 "${long[@]}" --epochs 100 --out "$tmp/kill" > /dev/null 2> "$tmp/kill.err" &
runner=$!
for _ in $(seq 100); do [ -e "$tmp/kill/last" ] && break; sleep 0.1; done
sleep 0.5
kill -KILL "$(rank_pids "$tmp/kill" | tail -n 1)"
start=$SECONDS
wait $runner
code=$?
check "a killed rank ends the job with a failure" test "$code" -ne 0 -a "$code" -ne 124
check "... within seconds (no hang)" test $((SECONDS - start)) -lt 60
check "the surviving rank says why in one line" grep -q '^enf: rank [01] of 2: told to stop' "$tmp/kill.err"
"$enf" train --resume "$tmp/kill" --epochs 2 --threads 1 > /dev/null 2> "$tmp/kill_resume.err"
check "the last checkpoint is whole: one process resumes it" test $? -eq 0
# The scaling benchmark runs (its figures are measured by tools/experiments/mpi_scaling.sh)
# and checks that its shared steps equal one process's.
out=$(mpi 2 bench step --mpi --batch 8 --repeats 1 --exchange-repeats 2 --threads 1 2>&1)
check "bench step --mpi on 2 ranks: the weights are one process's" contains "$out" "bit for bit"

# Commands that do not share their work refuse to run K times over.
out=$(mpi 2 eval --model "$tmp/one/best" --data dw4:test 2>&1)
check "enf eval under mpirun -np 2: refused in one line" contains "$out" "'enf eval' runs as one process (started as 2 ranks)"
finish
