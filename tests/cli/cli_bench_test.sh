#!/usr/bin/env bash
# Issue 13: enf bench score, bench sample and bench step name the limit: per system,
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
    m = re.fullmatch(r'([0-9.]+(?:e-\d+)?)%( \(peak disturbed\))?', v['% of GEMM peak'])
    assert m and (0 < float(m.group(1)) <= 100 or m.group(2)), v
    assert v['precision'] in ('float', 'double'), v
assert any(l.startswith('enf bench ') and 'load average' in l for l in lines), lines
assert any(l.startswith('Model of dw4: randomly initialised') or l.startswith('Model of dw4: trained model') for l in lines), lines
PY
}

"$enf" bench score --system dw4 --structures 2 --repeat 1 > "$tmp/score.md" 2> "$tmp/score.log"
check "bench score dw4: lockstep and one by one, table with every column, positive finite numbers" \
  table_ok "$tmp/score.md" 2
check "  exact trace, at enf eval's tolerance" contains "$(cat "$tmp/score.md")" "| log p(x), exact trace, dopri5 1e-05 |"
check "  and one by one" contains "$(cat "$tmp/score.md")" "| log p(x) one by one, exact trace, dopri5 1e-05 |"
check "  lockstep and one by one: the same evaluations per structure" python3 -c "
rows = [l.split('|') for l in open('$tmp/score.md') if l.startswith('| dw4 | log p(x)')]
assert len(rows) == 2 and rows[0][6].strip() == rows[1][6].strip(), rows"
check "  says the model is random" contains "$(cat "$tmp/score.md")" "randomly initialised (untrained)"
check "  logs on stderr, not stdout" bash -c "grep -q 'run 1/1' '$tmp/score.log' && ! grep -q 'run 1/1' '$tmp/score.md'"
"$enf" bench sample --system dw4 --structures 2 --repeat 1 > "$tmp/sample.md" 2> /dev/null
check "bench sample dw4: dopri5, rk4 and dopri5 one by one, rows with every column" table_ok "$tmp/sample.md" 3
check "  rk4 in 10 steps: 40 evaluations per structure" contains "$(cat "$tmp/sample.md")" \
  "| dw4 | sampling, rk4 10 steps | 2 | [0-9.e+-]* | [0-9.e+-]* | 40.0 |"
check "  lockstep and one by one: the same evaluations per structure" python3 -c "
rows = [l.split('|') for l in open('$tmp/sample.md') if l.startswith('| dw4 | sampling')]
nfe = {r[2].strip(): r[6].strip() for r in rows}
assert nfe['sampling, dopri5 0.0001'] == nfe['sampling one by one, dopri5 0.0001'], nfe"

# JSON, and the FLOPs of one evaluation as bench field counts them (its exact
# trace of one DW4 sample: GFLOP/s x ms).
"$enf" bench score --system dw4 --structures 2 --repeat 2 --format json > "$tmp/score.json" 2> /dev/null
"$enf" bench field --cases dw4 --precision double --min-time 0.01 --format json > "$tmp/bf.json" 2> /dev/null
check "bench score json: FLOP per structure / NFE = bench field's exact-trace FLOPs" python3 -c "
import json
s = json.load(open('$tmp/score.json'))
r = s['results']
assert len(r) == 2 and r[0]['repeats'] == 2 and r[0]['nfe_per_structure'] > 0 and s['cpu'], s
assert 0 < r[0]['fraction_of_peak'] <= 1 or r[0]['peak_disturbed'], r
t = json.load(open('$tmp/bf.json'))['exact_trace'][0]
per_eval = r[0]['flop_per_structure'] / r[0]['nfe_per_structure']
field = t['gflops'] * t['trace_ms'] * 1e6
assert abs(per_eval / field - 1) < 1e-9, (per_eval, field)"

# --model: a trained checkpoint, of its own system only.
"$enf" import --reference tests/fixtures/models/oracle_dw4_mild --out "$tmp/dw4model" > /dev/null 2>&1
"$enf" bench sample --model "$tmp/dw4model" --structures 2 --repeat 1 > "$tmp/model.md" 2> /dev/null
check "bench sample --model: the trained model, named" bash -c "grep -q 'Model of dw4: trained model $tmp/dw4model' '$tmp/model.md'"
check "  its rows complete" table_ok "$tmp/model.md" 3
out=$("$enf" bench score --model "$tmp/dw4model" --system lj13 --structures 2 2>&1); code=$?
check "bench score --model of dw4 with --system lj13: usage error" bash -c "test $code -eq 2 && grep -q 'the model is of dw4' <<< \"\$0\"" "$out"

# bench step: every timed iteration with its FLOPs, GFLOP/s and % of the
# GEMM peak measured in the same run (finite, positive, % in (0, 100] unless
# marked), the old columns kept; the JSON the same, and the per-iteration FLOPs
# those of the step's NFE (forward and adjoint evaluations of one DW4 sample).
"$enf" bench step --system dw4 --batch 4 --train-steps 1 --repeats 1 --eval-samples 2 > "$tmp/step.md" 2> /dev/null
check "bench step dw4: FLOP, GFLOP/s and % of peak per timed iteration" python3 - "$tmp/step.md" <<'PY'
import math, re, sys
lines = open(sys.argv[1]).read().splitlines()
head = [l for l in lines if l.startswith('| dw4, batch 4 |')]
assert len(head) == 1, lines
cols = [c.strip() for c in head[0].strip('|').split('|')]
for c in ['s / iteration', 'forward', 'backward', 'optimizer', 'NFE fwd + bwd (per sample)', 'ms / NFE',
          'GFLOP / iteration', 'GFLOP/s', '% of GEMM peak', 'GEMM peak GFLOP/s']:
    assert c in cols, (c, cols)
rows = [l for l in lines if re.match(r'\| (at initialisation|after 1 steps|flow matching, )', l)]
assert len(rows) == 5, rows
for r in rows:
    v = dict(zip(cols, [c.strip() for c in r.strip('|').split('|')]))
    for c in ['s / iteration', 'GFLOP / iteration', 'GFLOP/s', 'GEMM peak GFLOP/s']:
        x = float(v[c])
        assert math.isfinite(x) and x > 0, (c, v)
    m = re.fullmatch(r'([0-9.]+(?:e-\d+)?)%( \(peak disturbed\))?', v['% of GEMM peak'])
    assert m and (0 < float(m.group(1)) <= 100 or m.group(2)), v
assert any(l.startswith('enf bench step: ') and 'load average' in l for l in lines), lines
PY
"$enf" bench step --system dw4 --batch 4 --train-steps 0 --repeats 2 --eval-samples 2 --format json > "$tmp/step.json" 2> /dev/null
check "bench step json: flop_per_iteration, gflops, fraction_of_peak, the peak" python3 - "$tmp/step.json" <<'PY'
import json, math, sys
s = json.load(open(sys.argv[1]))
assert s['cpu'] and s['date'] and 'load_average_1min' in s, s
it = s['iterations']
assert len(it) == 5, it
for p in it:
    for k in ['seconds', 'nfe_forward_per_sample', 'seconds_per_nfe', 'flop_per_iteration', 'gflops', 'peak_gflops']:
        assert math.isfinite(p[k]) and p[k] > 0, (k, p)
    assert abs(p['gflops'] / (p['flop_per_iteration'] / p['seconds'] * 1e-9) - 1) < 1e-9, p
    assert abs(p['fraction_of_peak'] - p['gflops'] / p['peak_gflops']) < 1e-12, p
    assert 0 < p['fraction_of_peak'] <= 1 or p['peak_disturbed'], p
# Flow matching: one velocity and its reverse pass per structure, whatever the coupling.
fm = [p['flop_per_iteration'] for p in it if p['when'].startswith('flow matching')]
assert len(fm) == 3 and max(fm) == min(fm), fm
PY
check "bench step --help: what the FLOP count includes and excludes" bash -c \
  "'$enf' bench step --help | grep -q 'Not counted: the' && '$enf' bench step --help | grep -q 'optimizer'"

# No timing of another machine's PyTorch in the program's output or help.
for cmd in "bench field" "bench step" "bench score" "bench sample"; do
  check "$cmd --help: no PyTorch timings" bash -c "! '$enf' $cmd --help | grep -qiE 'vs pytorch|0\\.49 s|71 ms'"
done
check "bench field json: no ratio to the PyTorch timings" bash -c "! grep -qiE 'pytorch|speedup_vs_reference' '$tmp/bf.json'"
finish
