#!/usr/bin/env bash
# Where float32 is accurate enough (issue 13): each command's field in float32
# against float64 on the same structures, seeds and settings, at the command's
# default tolerances (and at the tolerances users quote).
#   enf score: per-structure |Δ log p| against the solver's own error scale
#     rtol·|log p| + atol (the tolerance it was asked to meet), and the time;
#   enf sample: per-coordinate |Δx| of the samples drawn from the same prior
#     draws, against rtol·|x| + atol, and the time.
#   ENF=build/enf [CASES=score|sample] tools/experiments/float32_defaults.sh [OUT]
# (CASES: only the scoring or only the sampling cases; default both.)
#   Sampling also at 1e-7 in float64, the reference both 1e-5 runs' errors are
#   measured against (float32's beside float64's own).
# Models: trained runs under runs/ (flow_matching.sh dw4 2 / lj13 10: FM models
# whose exact log-likelihood is the same CNF's), the shipped QM9 pretrained and
# conformer models. A missing DW4 or LJ13 model is trained the same way
# (enf train --objective flow-matching --n-data 1000 --max-time 2 / 10) into
# runs/float32_defaults/. A case whose result files exist is not rerun
# (resumable).
set -euo pipefail
cd "$(dirname "$0")/../.."
enf=${ENF:-build/enf}
out=${1:-tools/experiments/results/float32_defaults}
work=runs/float32_defaults  # the test-split slices scored (not kept in git)
mkdir -p "$out" "$work"
threads=${THREADS:-2}
cases=${CASES:-score sample}

run_timed() {  # run_timed FILE.time cmd...: stdout of cmd to FILE, wall seconds to FILE.time
  local file=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > "$file.part"
  t1=$(date +%s.%N)
  mv "$file.part" "$file"
  python3 -c "print('%.3f' % ($t1 - $t0))" > "$file.time"
}

# score_case NAME MODEL INPUT LIMIT RTOL TRACE [extra...]
score_case() {
  local name=$1 model=$2 input=$3 limit=$4 rtol=$5 trace=$6
  shift 6
  [[ " $cases " = *" score "* ]] || return 0
  [ -e "$model" ] || [ "${model#*/}" = "$model" ] || { echo "skip $name: no $model" >&2; return; }
  for p in double float; do
    local f="$out/score_${name}_${p}.jsonl"
    [ -s "$f" ] && continue
    local lim=()
    [ "$limit" -gt 0 ] && lim=(--limit "$limit")
    run_timed "$f" "$enf" score --model "$model" --input "$input" "${lim[@]}" --rtol "$rtol" --atol "$rtol" \
      --trace "$trace" --precision "$p" --threads "$threads" --format json "$@"
  done
}

# sample_case NAME MODEL N RTOL PRECISIONS [extra...]: the same prior draws
# (seed 0) integrated in each of PRECISIONS ("double float" or "double").
sample_case() {
  local name=$1 model=$2 n=$3 rtol=$4 precisions=$5
  shift 5
  [[ " $cases " = *" sample "* ]] || return 0
  [ -e "$model" ] || { echo "skip $name: no $model" >&2; return; }
  for p in $precisions; do
    local f="$out/sample_${name}_${p}.xyz"
    [ -s "$f" ] && continue
    local t0 t1
    t0=$(date +%s.%N)
    "$enf" sample --model "$model" --n "$n" --rtol "$rtol" --atol "$rtol" --precision "$p" --threads "$threads" \
      --out "$f" --force "$@" 2> "$f.log"
    t1=$(date +%s.%N)
    python3 -c "print('%.3f' % ($t1 - $t0))" > "$f.time"
  done
}

# The first ROWS rows of a version-1 .npy (enf score's --limit is for molecules).
head_npy() {  # head_npy IN OUT ROWS
  [ -s "$2" ] && return 0
  python3 - "$@" <<'PY'
import ast, sys
src, dst, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
b = open(src, "rb").read()
hl = int.from_bytes(b[8:10], "little")
h = ast.literal_eval(b[10:10 + hl].decode())
shape = h["shape"]
row = int(b[10 + hl:].__len__() / shape[0])
rows = min(rows, shape[0])
h["shape"] = (rows,) + tuple(shape[1:])
text = repr(h).encode()
pad = 64 - (10 + len(text) + 1) % 64
header = text + b" " * pad + b"\n"
open(dst, "wb").write(b[:8] + len(header).to_bytes(2, "little") + header + b[10 + hl:10 + hl + rows * row])
PY
}
head_npy datasets/data/efm_splits/test_split_DW4.npy "$work/dw4_test_2000.npy" 2000

# model_for SYSTEM MINUTES: flow_matching.sh's model of SYSTEM if it is there,
# else one trained by the same command into $work.
model_for() {
  local m=runs/fm_${1}_${2}min/best
  if [ ! -e "$m" ]; then
    m=$work/fm_${1}_${2}min/best
    if [ ! -e "$m" ]; then  # (a run stopped before its best/ is started again)
      rm -rf "$work/fm_${1}_${2}min"
      "$enf" train --system "$1" --objective flow-matching --n-data 1000 --max-time "$2" --threads "$threads" \
        --out "$work/fm_${1}_${2}min" > /dev/null 2> "$work/fm_${1}_${2}min.log"
    fi
  fi
  echo "$m"
}
dw4=$(model_for dw4 2)
lj13=$(model_for lj13 10)
qm9=$work/qm9_pretrained
[ -d "$qm9" ] || "$enf" import --reference qm9-pretrained --out "$qm9" > /dev/null

# enf score's defaults: exact trace, 1e-7; and 1e-5, the README's evaluations.
score_case dw4_1e-7 "$dw4" "$work/dw4_test_2000.npy" 0 1e-7 exact
score_case dw4_1e-5 "$dw4" "$work/dw4_test_2000.npy" 0 1e-5 exact
head_npy datasets/data/efm_splits/test_split_LJ13-1000.npy "$work/lj13_test_200.npy" 200
score_case lj13_1e-7 "$lj13" "$work/lj13_test_200.npy" 0 1e-7 exact
score_case lj13_1e-5 "$lj13" "$work/lj13_test_200.npy" 0 1e-5 exact
# QM9: the reference's published setting (Gaussian Hutchinson, 1e-4), and the
# default exact trace at 1e-5 on fewer molecules.
score_case qm9_gauss_1e-4 "$qm9" qm9:test 100 1e-4 gaussian
score_case qm9_exact_1e-5 "$qm9" qm9:test 20 1e-5 exact
score_case conformers_1e-5 qm9-conformers qm9:test 100 1e-5 exact
# enf sample's default: dopri5 1e-5.
sample_case dw4_1e-5 "$dw4" 1000 1e-5 "double float"
sample_case dw4_1e-7 "$dw4" 1000 1e-7 double
sample_case lj13_1e-5 "$lj13" 1000 1e-5 "double float"
sample_case lj13_1e-7 "$lj13" 1000 1e-7 double
sample_case qm9_1e-5 "$qm9" 100 1e-5 "double float"

python3 - "$out" <<'EOF'
import json, os, sys, statistics
out = sys.argv[1]
def rows(path):
    r = []
    for line in open(path):
        j = json.loads(line)
        if "summary" in j or j.get("log_likelihood") is None:
            continue
        r.append(j["log_likelihood"])
    return r
def secs(path):
    return float(open(path + ".time").read())
lines = ["| case | structures | median abs diff | max abs diff | max diff / (rtol·abs(log p) + atol) | float64 s | float32 s | speed-up |",
         "|---|---:|---:|---:|---:|---:|---:|---:|"]
names = sorted({f[len("score_"):-len("_double.jsonl")] for f in os.listdir(out)
                if f.startswith("score_") and f.endswith("_double.jsonl")})
for name in names:
    d, f = (os.path.join(out, "score_%s_%s.jsonl" % (name, p)) for p in ("double", "float"))
    if not os.path.exists(f):
        continue
    a, b = rows(d), rows(f)
    n = min(len(a), len(b))
    tol = float(name.rsplit("_", 1)[1])
    diff = [abs(a[i] - b[i]) for i in range(n)]
    ratio = max(diff[i] / (tol * abs(a[i]) + tol) for i in range(n))
    lines.append("| score %s | %d | %.2e | %.2e | %.3f | %.1f | %.1f | %.2f× |" % (
        name, n, statistics.median(diff), max(diff), ratio, secs(d), secs(f), secs(d) / secs(f)))
# The solver's own error: each run's distance to the float64 solve at 1e-7
# (the tightest run of that system), per structure.
lines.append("")
lines.append("| case | structures | float64 error: median, max | float32 error: median, max | mean log p: float32 − float64 |")
lines.append("|---|---:|---:|---:|---:|")
for system in sorted({n.rsplit("_", 1)[0] for n in names}):
    ref = os.path.join(out, "score_%s_1e-7_double.jsonl" % system)
    if not os.path.exists(ref):
        continue
    r = rows(ref)
    for tol in ("1e-7", "1e-5"):
        got = {}
        for p in ("double", "float"):
            f = os.path.join(out, "score_%s_%s_%s.jsonl" % (system, tol, p))
            if os.path.exists(f):
                got[p] = rows(f)
        if "float" not in got or "double" not in got:
            continue
        def err(x):
            e = sorted(abs(a - b) for a, b in zip(x, r))
            return "%.2e, %.2e" % (statistics.median(e), e[-1])
        d = "—" if tol == "1e-7" else err(got["double"])
        lines.append("| score %s_%s | %d | %s | %s | %.1e |" % (system, tol, len(r), d, err(got["float"]),
                     statistics.mean(got["float"]) - statistics.mean(got["double"])))
def coords(path):
    v, lines_ = [], open(path).read().split("\n")
    i = 0
    while i < len(lines_) and lines_[i].strip():
        k = int(lines_[i]); i += 2
        for _ in range(k):
            v.extend(float(x) for x in lines_[i].split()[1:4]); i += 1
    return v
names = sorted({f[len("sample_"):-len("_double.xyz")] for f in os.listdir(out)
                if f.startswith("sample_") and f.endswith("_double.xyz")})
lines.append("")
lines.append("| case | coordinates | median abs diff | max abs diff | max diff / (rtol·abs(x) + atol) | float64 s | float32 s | speed-up |")
lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
for name in names:
    d, f = (os.path.join(out, "sample_%s_%s.xyz" % (name, p)) for p in ("double", "float"))
    if not os.path.exists(f):
        continue
    a, b = coords(d), coords(f)
    tol = float(name.rsplit("_", 1)[1])
    diff = [abs(x - y) for x, y in zip(a, b)]
    ratio = max(abs(x - y) / (tol * abs(x) + tol) for x, y in zip(a, b))
    lines.append("| sample %s | %d | %.2e | %.2e | %.1f | %.1f | %.1f | %.2f× |" % (
        name, len(diff), statistics.median(diff), max(diff), ratio, secs(d), secs(f), secs(d) / secs(f)))
# Each 1e-5 run's distance to the float64 solve at 1e-7 (same prior draws), per coordinate.
lines.append("")
lines.append("| case | coordinates | float64 error: median, max | float32 error: median, max |")
lines.append("|---|---:|---:|---:|")
for name in names:
    system, tol = name.rsplit("_", 1)
    ref = os.path.join(out, "sample_%s_1e-7_double.xyz" % system)
    f = os.path.join(out, "sample_%s_float.xyz" % name)
    if tol == "1e-7" or not os.path.exists(ref) or not os.path.exists(f):
        continue
    r = coords(ref)
    def err(path):
        e = sorted(abs(x - y) for x, y in zip(coords(path), r))
        return "%.2e, %.2e" % (statistics.median(e), e[-1])
    lines.append("| sample %s | %d | %s | %s |" % (name, len(r), err(os.path.join(out, "sample_%s_double.xyz" % name)), err(f)))
open(os.path.join(out, "table.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
# Appended: a resumed run adds its cases under the earlier runs' lines.
{
  echo "$(date -u +%F): ENF=$enf CASES=\"$cases\" tools/experiments/float32_defaults.sh $out"
  echo "  machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "  enf: $("$enf" --version | head -n 2 | tr -s " \n" " ")"
  echo "  DW4, LJ13 models: $dw4, $lj13"
} >> "$out/run.txt"
