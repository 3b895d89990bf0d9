#!/bin/bash
# LJ55 end to end, tiny: enf data generate lj55 (single-particle sweeps by
# default), a one-epoch training run on the shipped lj55:train, and the
# checkpoint scored, evaluated and sampled at 165 coordinates.
source "$(dirname "$0")/cli_lib.sh"

"$enf" data generate lj55 --n 4 --chains 2 --burn-in 200 --thin 10 --seed 3 --out "$tmp/gen.npy" \
  > "$tmp/gen.out" 2> "$tmp/gen.err"
check "data generate lj55: exit 0" test $? -eq 0
check "data generate lj55: 4 rows of 165" grep -q 'float32 \[4, 165\], lj55' "$tmp/gen.out"
check "data generate lj55: single-particle sweeps at 0.25 by default" \
  grep -q 'single moves, burn-in 200 sweeps, thin 10 sweeps, target acceptance 0.25' "$tmp/gen.err"
check "data generate --help names lj55" bash -c "'$enf' data generate --help | grep -q 'dw4|lj13|lj55'"
out=$("$enf" data generate lj55 --n 4 --moves some --out "$tmp/bad.npy" 2>&1); code=$?
check "data generate --moves some: usage error naming the choices" bash -c "test $code -eq 2 && grep -q 'single' <<< \"\$0\"" "$out"

# --nf 8 --layers 1 on 20 structures of lj55:train: two steps, one validation.
"$enf" train --system lj55 --epochs 1 --n-data 20 --val-samples 4 --nf 8 --layers 1 --batch 10 \
  --out "$tmp/run" > "$tmp/train.out" 2> "$tmp/train.err"
check "train --system lj55: exit 0" test $? -eq 0
check "train --system lj55: reads the shipped splits" grep -q 'lj55, 20 training / 4 validation structures' "$tmp/train.err"
check "train --system lj55: a validation line" grep -q '"type":"validation"' "$tmp/run/metrics.jsonl"
"$enf" sample --model "$tmp/run/best" --n 2 --out "$tmp/s.npy" > /dev/null 2>&1
check "an lj55 checkpoint samples" test -s "$tmp/s.npy"
"$enf" score --model "$tmp/run/best" --input "$tmp/s.npy" --rtol 1e-3 --atol 1e-3 --format json > "$tmp/score.json" 2> /dev/null
check "an lj55 checkpoint scores its samples" grep -q '"nll"' "$tmp/score.json"
# The ESS needs the LJ55 target energy of the samples.
"$enf" eval --model "$tmp/run/best" --data lj55:test --limit 1 --samples 2 --rtol 1e-3 --atol 1e-3 --format json > "$tmp/eval.json" 2> /dev/null
check "enf eval on lj55: NLL and ESS" bash -c "grep -q '\"nll\"' '$tmp/eval.json' && grep -q '\"ess\"' '$tmp/eval.json'"
finish
