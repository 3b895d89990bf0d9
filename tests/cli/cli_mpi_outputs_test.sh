#!/usr/bin/env bash
# Issue 16: enf score and enf sample under mpirun. Each rank takes a share of
# the structures (molecules in rounds), rank 0 writes: the output of 2 and 3
# ranks is the same bytes as one process's (the JSON summary's wall-clock
# seconds and the SDF records' time stamps aside), for a particle model (DW4)
# and the pretrained QM9 model; a structure that fails on one rank, a bad
# input and a refused --out end every rank with one message and a non-zero
# exit, without hanging; SIGTERM to one rank stops the job after its round
# with the rows so far and exit 143.
# Usage: cli_mpi_outputs_test.sh path/to/enf (run from the repository root;
# ctest sets the Open MPI variables for root and oversubscription).
set -u
source "$(dirname "$0")/cli_lib.sh"
: "${OMPI_ALLOW_RUN_AS_ROOT:=1}" "${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:=1}"
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
# A hang (a rank missing a collective) fails the check instead of the suite: a
# job that takes longer than this has hung; the sanitizers' build runs ~10×
# slower, so it gets ten times the bound.
hang_limit=60
"$enf" --version | grep -q sanitizers && hang_limit=$((60 * 10))
# Under the sanitizers (tools/test.sh --sanitize) the ranks run without
# LeakSanitizer: Open MPI 4.1 leaves its own allocations at MPI_Finalize, from
# plugins it has unloaded by then (no name a suppression could match). enf's
# code on these paths is leak-checked with ranks as threads (test_distributed)
# and as one process (every run of this script without mpirun).
mpi() {
  local k="$1"; shift
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" timeout "$hang_limit" mpirun --oversubscribe -np "$k" "$enf" "$@"
}
# The JSON summary's wall-clock fields differ from run to run: left out.
no_clock() { sed -E 's/"seconds(_per_molecule)?":[-+0-9.e]+,?//g' "$1"; }
# Open Babel stamps each SDF record's second line with the minute it was
# written (" OpenBabelMMDDYYHHmm3D"): left out too.
no_stamp() { sed -E 's/^( OpenBabel)[0-9]{10}(3D)$/\1MMDDYYHHmm\2/' "$1"; }
# same_as_one "what" REF OUT: byte-identical files.
same_as_one() { check "$1" cmp "$2" "$3"; }

"$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/dw4" > /dev/null 2>&1
"$enf" import --reference qm9-pretrained --out "$tmp/qm9" > /dev/null 2>&1
"$enf" data generate dw4 --n 30 --out "$tmp/dw4.npy" > /dev/null 2>&1
sdf=datasets/data/qm9/qm9_first500.sdf
# Loose tolerances keep the solves short; outputs must match bit for bit all the same.
fast=(--trace gaussian --rtol 1e-3 --atol 1e-3)

# ---- particles: score (csv, json), sample (.npy; .xyz with --log-q's CSV)
# 30 structures over 2 and 3 ranks: uneven shares, one round per rank count
# (4 per worker), so with --threads 1 three rounds on 2 ranks.
"$enf" score --model "$tmp/dw4" --input "$tmp/dw4.npy" --threads 1 > "$tmp/p1.csv" 2> /dev/null
"$enf" score --model "$tmp/dw4" --input "$tmp/dw4.npy" --threads 1 --format json > "$tmp/p1.json" 2> /dev/null
"$enf" sample --model "$tmp/dw4" --n 7 --seed 3 --threads 1 --out "$tmp/p1.npy" > /dev/null 2>&1
"$enf" sample --model "$tmp/dw4" --n 7 --seed 3 --threads 1 --out "$tmp/p1.xyz" --log-q > "$tmp/q1.csv" 2> /dev/null
check "particles: one process scored 30 rows" test "$(wc -l < "$tmp/p1.csv")" -eq 31
for k in 2 3; do
  mpi $k score --model "$tmp/dw4" --input "$tmp/dw4.npy" --threads 1 > "$tmp/p$k.csv" 2> "$tmp/p$k.log"
  check "particles score csv, -np $k: exit 0" test $? -eq 0
  same_as_one "particles score csv, -np $k = one process" "$tmp/p1.csv" "$tmp/p$k.csv"
  check "particles score, -np $k: the NLL once on stderr" test "$(grep -c '^NLL' "$tmp/p$k.log")" -eq 1
  mpi $k score --model "$tmp/dw4" --input "$tmp/dw4.npy" --threads 1 --format json > "$tmp/p$k.json" 2> /dev/null
  same_as_one "particles score json, -np $k = one process (seconds aside)" <(no_clock "$tmp/p1.json") \
    <(no_clock "$tmp/p$k.json")
  mpi $k sample --model "$tmp/dw4" --n 7 --seed 3 --threads 1 --out "$tmp/p$k.npy" > /dev/null 2>&1
  same_as_one "particles sample .npy, -np $k = one process" "$tmp/p1.npy" "$tmp/p$k.npy"
  mpi $k sample --model "$tmp/dw4" --n 7 --seed 3 --threads 1 --out "$tmp/p$k.xyz" --log-q > "$tmp/q$k.csv" 2> /dev/null
  same_as_one "particles sample .xyz with log q, -np $k = one process" "$tmp/p1.xyz" "$tmp/p$k.xyz"
  same_as_one "particles sample --log-q CSV, -np $k = one process" "$tmp/q1.csv" "$tmp/q$k.csv"
done
# Fewer samples than ranks: a rank with an empty share still takes part.
"$enf" sample --model "$tmp/dw4" --n 2 --seed 5 --threads 1 --out "$tmp/e1.npy" > /dev/null 2>&1
mpi 3 sample --model "$tmp/dw4" --n 2 --seed 5 --threads 1 --out "$tmp/e3.npy" > /dev/null 2>&1
same_as_one "particles sample, 2 samples on 3 ranks = one process" "$tmp/e1.npy" "$tmp/e3.npy"

# ---- molecules (pretrained QM9): score (csv, json), sample (.sdf)
# 30 molecules: several rounds, shares balanced by atoms².
mol_score=(score --model "$tmp/qm9" --input "$sdf" --limit 30 --threads 1 "${fast[@]}")
"$enf" "${mol_score[@]}" > "$tmp/m1.csv" 2> /dev/null
"$enf" "${mol_score[@]}" --format json > "$tmp/m1.json" 2> /dev/null
check "molecules: one process scored 30 rows" test "$(wc -l < "$tmp/m1.csv")" -eq 31
mol_sample=(sample --model "$tmp/qm9" --seed 4 --threads 1 --no-score "${fast[@]}")
"$enf" "${mol_sample[@]}" --n 5 --out "$tmp/m1.sdf" > /dev/null 2>&1
# Scored samples: each record's log_likelihood comes from the rank that drew it.
"$enf" sample --model "$tmp/qm9" --n 2 --seed 6 --threads 1 "${fast[@]}" --out "$tmp/ms1.sdf" > /dev/null 2>&1
for k in 2 3; do
  mpi $k "${mol_score[@]}" > "$tmp/m$k.csv" 2> "$tmp/m$k.log"
  check "molecules score csv, -np $k: exit 0" test $? -eq 0
  same_as_one "molecules score csv, -np $k = one process" "$tmp/m1.csv" "$tmp/m$k.csv"
  mpi $k "${mol_score[@]}" --format json > "$tmp/m$k.json" 2> /dev/null
  same_as_one "molecules score json, -np $k = one process (seconds aside)" <(no_clock "$tmp/m1.json") \
    <(no_clock "$tmp/m$k.json")
  mpi $k "${mol_sample[@]}" --n 5 --out "$tmp/m$k.sdf" > /dev/null 2>&1
  same_as_one "molecules sample .sdf, -np $k = one process (time stamps aside)" <(no_stamp "$tmp/m1.sdf") \
    <(no_stamp "$tmp/m$k.sdf")
done
mpi 2 sample --model "$tmp/qm9" --n 2 --seed 6 --threads 1 "${fast[@]}" --out "$tmp/ms2.sdf" > /dev/null 2>&1
same_as_one "molecules sample scored .sdf, -np 2 = one process (time stamps aside)" <(no_stamp "$tmp/ms1.sdf") \
  <(no_stamp "$tmp/ms2.sdf")
check "molecules sample scored: log_likelihood in each record" test "$(grep -c '<log_likelihood>' "$tmp/ms2.sdf")" -eq 2

# ---- failures: every rank ends, one message, non-zero exit, no hang
# A structure whose solve fails (x = 1e300: non-finite derivative) is the
# last share's (rank 2 of 3): the rows before it are printed, as by one process.
awk 'NR == 33 { $2 = "1e300" } { print }' "$tmp/p1.xyz" > "$tmp/huge.xyz"  # frame 5's first atom
"$enf" score --model "$tmp/dw4" --input "$tmp/huge.xyz" --threads 1 > "$tmp/h1.csv" 2> "$tmp/h1.log"
check "a failing structure, one process: exit 1 naming sample 5" bash -c \
  "test $? -eq 1 && grep -q 'sample 5' '$tmp/h1.log'"
mpi 3 score --model "$tmp/dw4" --input "$tmp/huge.xyz" --threads 1 > "$tmp/h3.csv" 2> "$tmp/h3.log"
rc=$?
check "a structure failing on rank 2 of 3: exit 1, not a hang (124)" test $rc -eq 1
check "a structure failing on rank 2 of 3: one error line naming sample 5" bash -c \
  "test \$(grep -c 'enf: error' '$tmp/h3.log') -eq 1 && grep 'enf: error' '$tmp/h3.log' | grep -q 'sample 5'"
same_as_one "a structure failing on rank 2 of 3: the rows before it, as one process" "$tmp/h1.csv" "$tmp/h3.csv"
mpi 2 score --model "$tmp/dw4" --input "$tmp/nope.npy" --threads 1 > /dev/null 2> "$tmp/bad.log"
rc=$?
check "a missing input under mpirun: exit 1, one error line" bash -c \
  "test $rc -eq 1 && test \$(grep -c 'enf: error' '$tmp/bad.log') -eq 1"
cp "$tmp/m1.sdf" "$tmp/m1.keep"
mpi 3 sample --model "$tmp/qm9" --n 2 --out "$tmp/m1.sdf" > /dev/null 2> "$tmp/exists.log"
rc=$?
check "an existing --out (checked by rank 0 alone): exit 2 on every rank, said once" bash -c \
  "test $rc -eq 2 && test \$(grep -c 'exists; give --force' '$tmp/exists.log') -eq 1"
check "an existing --out: left as it was" cmp "$tmp/m1.sdf" "$tmp/m1.keep"

# ---- SIGTERM to one rank (rank 1 of 2): the job stops after its current
# round; rank 0 prints the rows so far (each as one process prints it), then
# the summary; every rank exits 143.
# rank_pid JOB RANK: the pid of rank RANK among JOB's descendants (Open MPI
# gives each rank OMPI_COMM_WORLD_RANK).
rank_pid() {
  local todo=("$1") p
  while [ ${#todo[@]} -gt 0 ]; do  # breadth first: the job is a subshell, then timeout, mpirun, the ranks
    p=${todo[0]}
    todo=("${todo[@]:1}" $(pgrep -P "$p"))
    tr '\0' '\n' 2> /dev/null < "/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$p" && return 0
  done
  return 1
}
rows() { tail -n +2 "$1" | grep -c ',$'; }
mpi 2 score --model "$tmp/qm9" --input "$sdf" --limit 500 --threads 1 "${fast[@]}" > "$tmp/t.csv" 2> "$tmp/t.log" &
job=$!
r1=""
for _ in $(seq 300); do  # up to 30 s for rank 1 and the first rows
  [ -z "$r1" ] && r1=$(rank_pid $job 1)
  [ -n "$r1" ] && [ -f "$tmp/t.csv" ] && [ "$(rows "$tmp/t.csv")" -ge 2 ] && break
  sleep 0.1
done
[ -n "$r1" ] && kill -TERM "$r1"
wait $job
rc=$?
n=$(rows "$tmp/t.csv")
check "SIGTERM to rank 1 (pid ${r1:-not found}): exit 143 (got $rc)" test $rc -eq 143
check "SIGTERM to rank 1: stopped early (rows 2..499: $n)" bash -c "test $n -ge 2 && test $n -lt 500"
check "SIGTERM to rank 1: rows 0..n-1 in order, each as one process prints it" bash -c \
  "test \"\$(cut -d, -f1 '$tmp/t.csv' | tail -n +2 | tr '\n' ,)\" = \"\$(seq -s, 0 $((n - 1))),\" &&
   cmp <(head -n $((n < 30 ? n + 1 : 31)) '$tmp/t.csv') <(head -n $((n < 30 ? n + 1 : 31)) '$tmp/m1.csv')"
check "SIGTERM to rank 1: the summary of the rows printed, once" bash -c \
  "grep -q 'interrupted: $n of 500' '$tmp/t.log' && test \$(grep -c '^NLL' '$tmp/t.log') -eq 1"

# The same for enf sample (molecules, SDF), killed once 5 records are written: --out holds the molecules written
# (no .part left), in index order, the first 5 as one process's --n 5 run.
sdf_records() { grep -c '^\$\$\$\$' "$1"; }
mpi 2 "${mol_sample[@]}" --n 200 --out "$tmp/ts.sdf" > /dev/null 2> "$tmp/ts.log" &
job=$!
r1=""
for _ in $(seq 300); do
  [ -z "$r1" ] && r1=$(rank_pid $job 1)
  [ -n "$r1" ] && [ -f "$tmp/ts.sdf.part" ] && [ "$(sdf_records "$tmp/ts.sdf.part")" -ge 5 ] && break
  sleep 0.1
done
[ -n "$r1" ] && kill -TERM "$r1"
wait $job
rc=$?
n=$(grep -o 'wrote [0-9]* of 200' "$tmp/ts.log" | grep -o '[0-9]*' | head -1)
check "sample, SIGTERM to rank 1 (pid ${r1:-not found}): exit 143 (got $rc), --out written, no .part" bash -c \
  "test $rc -eq 143 && test -f '$tmp/ts.sdf' && test ! -e '$tmp/ts.sdf.part'"
check "sample, SIGTERM to rank 1: the records it reports (${n:-?}), in index order" bash -c \
  "test '${n:-0}' -ge 5 && test '${n:-0}' -lt 200 &&
   diff <(grep '^enf sample' '$tmp/ts.sdf') <(for i in \$(seq 0 $((${n:-1} - 1))); do echo \"enf sample \$i\"; done)"
check "sample, SIGTERM to rank 1: the first 5 records = one process's --n 5" \
  cmp <(no_stamp "$tmp/ts.sdf" | head -n "$(wc -l < "$tmp/m1.sdf")") <(no_stamp "$tmp/m1.sdf")

finish
