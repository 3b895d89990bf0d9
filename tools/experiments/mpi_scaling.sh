#!/usr/bin/env bash
# Data-parallel training on this machine (issue 16): `enf bench step --mpi` at
# K = 1 and 2 ranks, and ranks against threads on the same cores, then the
# cluster model (mpi_model.py) fed with these measurements.
#   tools/experiments/mpi_scaling.sh [ROUNDS] [SYSTEMS...]      (default: 3 dw4 lj13)
# ENF=path/to/enf (an ENF_MPI=ON build), MPIRUN=path/to/mpirun.
#
# Per system and round, in this order (so a drift of the machine's load falls
# on all three alike; the summary takes the median over rounds):
#   t1  enf bench step --mpi --threads 1            one process, one core
#   t2  enf bench step --mpi --threads 2            one process, two threads
#   k2  mpirun -np 2 enf bench step --mpi --threads 1
#       two ranks of one thread, with rank 0's K = 1 reference step by step
# and once per system the same K = 2 run over TCP loopback instead of shared
# memory (--mca btl self,tcp: the network stack a cluster's Ethernet uses).
# The machine is shared: load averages are recorded before every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-3}
shift $(($# > 0 ? 1 : 0))
systems=("$@")
[ ${#systems[@]} -gt 0 ] || systems=(dw4 lj13)
enf=${ENF:-build/enf}
mpirun=${MPIRUN:-mpirun}
out=tools/experiments/results/mpi_scaling
mkdir -p "$out"
# Open MPI refuses root without these (containers); harmless otherwise.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

"$enf" --version | grep -q "ENF_MPI=ON" || { echo "mpi_scaling.sh: $enf is not an ENF_MPI=ON build" >&2; exit 2; }

# Repeats per point: enough for a median on a shared machine, LJ13 steps are ~10x DW4's.
repeats_of() { case "$1" in dw4) echo 15 ;; *) echo 7 ;; esac; }
# The full-size QM9 model's gradient (H = 64, L = 6 and the dequantizer: 294 k
# values): its exchange is timed alongside DW4's, for the model.
qm9_parameters=294000

log="$out/run.txt"
{
  echo "# tools/experiments/mpi_scaling.sh $rounds ${systems[*]}"
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores"
  echo "enf: $("$enf" --version | tr '\n' ' ')"
  echo "mpirun: $("$mpirun" --version 2>&1 | head -1)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
} >"$log"

# run NAME CMD...: stdout (JSON) to NAME.json, progress to NAME.log, the command and load to run.txt.
run() {
  local name=$1
  shift
  echo "$name: load $(cut -d' ' -f1-3 /proc/loadavg): $*" | tee -a "$log" >&2
  nice -n 0 "$@" >"$out/$name.json" 2>"$out/$name.log"
}

for sys in "${systems[@]}"; do
  r=$(repeats_of "$sys")
  common=(bench step --mpi --system "$sys" --batch 100 --repeats "$r" --format json)
  extra=()
  [ "$sys" = dw4 ] && extra=(--exchange-parameters "$qm9_parameters")
  for ((k = 1; k <= rounds; ++k)); do
    run "${sys}_t1_r$k" "$enf" "${common[@]}" --threads 1
    run "${sys}_t2_r$k" "$enf" "${common[@]}" --threads 2
    run "${sys}_k2_r$k" "$mpirun" -np 2 "$enf" "${common[@]}" --threads 1 "${extra[@]}"
  done
  run "${sys}_k2tcp" "$mpirun" --mca btl self,tcp -np 2 "$enf" "${common[@]}" --threads 1 "${extra[@]}"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$log"

python3 tools/experiments/mpi_model.py --measured "$out" >"$out/summary.md"
echo "wrote $out/summary.md" >&2
