#!/usr/bin/env bash
# Issue 13: enf bench scaling — time per evaluation and per sample against
# atoms and batch size, gradient memory against solver steps: tables, one
# JSON file and SVG plots. The memory part is a measurement (peak resident
# set), so it is checked for the shape the two methods must show: the
# discrete gradient records one state per step and grows with the steps, the
# continuous adjoint does not.
# Usage: cli_bench_scaling_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"

"$enf" bench scaling --parts atoms,batch --atoms 4,6 --batches 1,3 --repeat 1 --out "$tmp/s" > "$tmp/s.md" 2> "$tmp/s.log"
check "atoms and batch parts: exit 0" test $? -eq 0
check "  the plots are well-formed SVG" python3 -c "
import xml.dom.minidom as m
for f in ['atoms_per_nfe', 'atoms_per_sample', 'batch_per_sample']:
    d = m.parse('$tmp/s/' + f + '.svg')
    assert d.getElementsByTagName('polyline'), f
    assert len(d.getElementsByTagName('circle')) >= 4, f"
check "  scaling.json: every point, positive finite times, batches and atoms as asked" python3 -c "
import json, math
j = json.load(open('$tmp/s/scaling.json'))
assert j['cpu'] and j['date'] and j['precision'] == 'float', j
a, b = j['atoms'], j['batch']
assert sorted((p['atoms'], p['task']) for p in a) == sorted((n, t) for n in (4, 6) for t in ('sampling, dopri5 1e-4', 'training step, adjoint')), a
assert sorted((p['system'], p['batch'], p['task']) for p in b) == sorted((s, n, t) for s in ('dw4', 'lj13') for n in (1, 3) for t in ('sampling, dopri5 1e-4', 'training step, adjoint')), b
for p in a + b:
    for k in ('seconds', 'seconds_per_sample', 'nfe_per_sample', 'ms_per_nfe_per_thread', 'gflops', 'peak_gflops'):
        assert math.isfinite(p[k]) and p[k] > 0, (k, p)
    assert abs(p['seconds_per_sample'] * p['batch'] - p['seconds']) < 1e-12 * p['seconds'] + 1e-15, p
    # A training step evaluates forward and backward: more evaluations per sample than sampling.
tr = {p['atoms']: p['nfe_per_sample'] for p in a if p['task'].startswith('training')}
sa = {p['atoms']: p['nfe_per_sample'] for p in a if p['task'].startswith('sampling')}
assert all(tr[n] > sa[n] for n in tr), (tr, sa)"
check "  the table on stdout, logs on stderr" bash -c "grep -q '^| 3-D | sampling, dopri5 1e-4 | 4 |' '$tmp/s.md' && grep -q '^| lj13 | training step, adjoint | 13 | 3 |' '$tmp/s.md' && ! grep -q 'GFLOP/s$' '$tmp/s.md' && grep -q 'time against atoms' '$tmp/s.log'"

# Memory: the discrete gradient's 2000 recorded states (609 KiB of them)
# against 10 steps'; the adjoint's peak does not depend on the steps. The
# bounds leave the allocator room: the discrete gradient must add at least
# half of what it records (measured: 688 KiB more at 2000 steps than at 10),
# the adjoint's peak move by less than a quarter of it either way.
"$enf" bench scaling --parts memory --steps 10,2000 --repeat 1 --out "$tmp/m" --format json > "$tmp/m.json" 2> "$tmp/m.log"
check "memory part: exit 0, JSON on stdout" python3 -c "import json; json.load(open('$tmp/m.json'))"
check "  discrete grows with the steps, the adjoint does not" python3 -c "
import json
j = json.load(open('$tmp/m/scaling.json'))
m = {(p['gradient'], p['steps']): p for p in j['memory']}
rec = m[('discrete', 2000)]['recorded_kib']
assert abs(rec - 2000 * 39 * 8 / 1024) < 1e-9, rec
# rk4: 4 evaluations per step forward; the adjoint 4 back, the discrete 4 recomputed and 4 reversed.
assert m[('adjoint', 2000)]['nfe'] == 8 * 2000 and m[('discrete', 2000)]['nfe'] == 12 * 2000, m
if 'memory_note' in j:  # an AddressSanitizer build: no figure, and the output says why
    assert 'AddressSanitizer' in j['memory_note'] and all(p['peak_kib'] is None for p in m.values()), j
    print('     (sanitizer build: memory not measured, as the output says)')
    raise SystemExit(0)
assert all(p['peak_kib'] is not None for p in m.values()), m  # Linux: measurable
grow_d = m[('discrete', 2000)]['peak_kib'] - m[('discrete', 10)]['peak_kib']
grow_a = m[('adjoint', 2000)]['peak_kib'] - m[('adjoint', 10)]['peak_kib']
assert grow_d > rec / 2, (grow_d, rec, m)
assert abs(grow_a) < rec / 4, (grow_a, rec, m)"
check "  memory_vs_steps.svg is well-formed" python3 -c "import xml.dom.minidom as m; m.parse('$tmp/m/memory_vs_steps.svg')"

"$enf" bench scaling --atoms 4,x > /dev/null 2> "$tmp/err"
check "a bad list is refused naming the option and the item" bash -c "[ $? -ne 0 ] && grep -q -- \"--atoms: 'x' is not an integer\" '$tmp/err'"
"$enf" bench scaling --parts atoms,nope > /dev/null 2> "$tmp/err"
check "an unknown part is refused" grep -q "unknown part 'nope'" "$tmp/err"
"$enf" bench scaling --help > "$tmp/help"
check "--help teaches the three parts" bash -c "grep -q 'atoms   particles in 3-D' '$tmp/help' && grep -q 'memory  one LJ13' '$tmp/help'"
finish
