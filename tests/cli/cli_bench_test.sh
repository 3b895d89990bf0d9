#!/usr/bin/env bash
# Issue 13: enf bench score and enf bench sample name the limit: per system,
# seconds, NFE, FLOP per structure, GFLOP/s and the % of a GEMM peak measured
# in the same run, with the CPU, threads and precision; FLOPs counted as bench
# field counts them; --model times a given checkpoint; no figure from another
# machine (the PyTorch timings live in the README, with their provenance).
# Usage: cli_bench_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"

# The tables' columns, and every row's numbers finite and positive, NFE > 0,
# the % of the peak in (0, 100] (above only when marked: bench_timing.hpp).
table_ok() {  # table_ok FILE ROWS
  python3 - "$1" "$2" <<'PY'
import math, re, sys
lines = open(sys.argv[1]).read().splitlines()
head = [l for l in lines if l.startswith('| system |')]
assert len(head) == 1, lines
cols = [c.strip() for c in head[0].strip('|').split('|')]
for c in ['system', 'task', 'structures', 'seconds', 'structures/s', 'NFE / structure', 'MFLOP / structure',
          'GFLOP/s', '% of GEMM peak', 'GEMM peak GFLOP/s', 'threads', 'precision']:
    assert c in cols, (c, cols)
rows = [l for l in lines if l.startswith('| dw4 |')]
assert len(rows) == int(sys.argv[2]), rows
for r in rows:
    v = dict(zip(cols, [c.strip() for c in r.strip('|').split('|')]))
    for c in ['structures', 'seconds', 'structures/s', 'NFE / structure', 'MFLOP / structure', 'GFLOP/s',
              'GEMM peak GFLOP/s', 'threads']:
        x = float(v[c])
        assert math.isfinite(x) and x > 0, (c, v)
    m = re.fullmatch(r'(\d+)%( \(peak disturbed\))?', v['% of GEMM peak'])
    assert m and (0 < int(m.group(1)) <= 100 or m.group(2)), v
    assert v['precision'] in ('float', 'double'), v
assert any(l.startswith('enf bench ') and 'load average' in l for l in lines), lines
assert any(l.startswith('Model of dw4: randomly initialised') or l.startswith('Model of dw4: trained model') for l in lines), lines
PY
}

"$enf" bench score --system dw4 --structures 2 --repeat 1 > "$tmp/score.md" 2> "$tmp/score.log"
check "bench score dw4: table with every column, positive finite numbers" table_ok "$tmp/score.md" 1
check "  exact trace, at enf eval's tolerance" contains "$(cat "$tmp/score.md")" "| log p(x), exact trace, dopri5 1e-05 |"
check "  says the model is random" contains "$(cat "$tmp/score.md")" "randomly initialised (untrained)"
check "  logs on stderr, not stdout" bash -c "grep -q 'run 1/1' '$tmp/score.log' && ! grep -q 'run 1/1' '$tmp/score.md'"
"$enf" bench sample --system dw4 --structures 2 --repeat 1 > "$tmp/sample.md" 2> /dev/null
check "bench sample dw4: dopri5 and rk4 rows with every column" table_ok "$tmp/sample.md" 2
check "  rk4 in 10 steps: 40 evaluations per structure" contains "$(cat "$tmp/sample.md")" \
  "| dw4 | sampling, rk4 10 steps | 2 | [0-9.e+-]* | [0-9.e+-]* | 40.0 |"

# JSON, and the FLOPs of one evaluation as bench field counts them (its exact
# trace of one DW4 sample: GFLOP/s x ms).
"$enf" bench score --system dw4 --structures 2 --repeat 2 --format json > "$tmp/score.json" 2> /dev/null
"$enf" bench field --cases dw4 --precision double --min-time 0.01 --format json > "$tmp/bf.json" 2> /dev/null
check "bench score json: FLOP per structure / NFE = bench field's exact-trace FLOPs" python3 -c "
import json
s = json.load(open('$tmp/score.json'))
r = s['results']
assert len(r) == 1 and r[0]['repeats'] == 2 and r[0]['nfe_per_structure'] > 0 and s['cpu'], s
assert 0 < r[0]['fraction_of_peak'] <= 1 or r[0]['peak_disturbed'], r
t = json.load(open('$tmp/bf.json'))['exact_trace'][0]
per_eval = r[0]['flop_per_structure'] / r[0]['nfe_per_structure']
field = t['gflops'] * t['trace_ms'] * 1e6
assert abs(per_eval / field - 1) < 1e-9, (per_eval, field)"

# --model: a trained checkpoint, of its own system only.
"$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/dw4model" > /dev/null 2>&1
"$enf" bench sample --model "$tmp/dw4model" --structures 2 --repeat 1 > "$tmp/model.md" 2> /dev/null
check "bench sample --model: the trained model, named" bash -c "grep -q 'Model of dw4: trained model $tmp/dw4model' '$tmp/model.md'"
check "  its rows complete" table_ok "$tmp/model.md" 2
out=$("$enf" bench score --model "$tmp/dw4model" --system lj13 --structures 2 2>&1); code=$?
check "bench score --model of dw4 with --system lj13: usage error" bash -c "test $code -eq 2 && grep -q 'the model is of dw4' <<< \"\$0\"" "$out"

# No timing of another machine's PyTorch in the program's output or help.
for cmd in "bench field" "bench step" "bench score" "bench sample"; do
  check "$cmd --help: no PyTorch timings" bash -c "! '$enf' $cmd --help | grep -qiE 'vs pytorch|0\\.49 s|71 ms'"
done
check "bench field json: no ratio to the PyTorch timings" bash -c "! grep -qiE 'pytorch|speedup_vs_reference' '$tmp/bf.json'"
finish
