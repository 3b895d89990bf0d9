#!/usr/bin/env bash
# Sets everything up and runs the main job on a built-in default: train a
# small E(n)-equivariant flow on the shipped DW4 data, sample conformations to
# XYZ, score the DW4 test split. Takes a minute or two on 2 cores.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
cd "$ENF_ROOT"

# Everything the run reads and writes is checked first: a missing or
# unfetched data file must fail now, not after the packages and a build of
# several minutes.
quickstart_fail() { echo "quickstart: $*" >&2; exit 1; }
for f in datasets/data/efm_splits/{train,val,test}_split_DW4.npy; do
  [ -f "$f" ] || quickstart_fail "missing data file $ENF_ROOT/$f (the shipped DW4 splits; restore it with 'git checkout -- datasets/data')"
  # A clone without Git LFS has small text pointers in place of the arrays.
  [ "$(head -c 6 "$f" | tail -c 5)" = "NUMPY" ] ||
    quickstart_fail "$ENF_ROOT/$f is not a NumPy array (a Git LFS pointer? run 'git lfs pull')"
done
for d in runs out; do
  mkdir -p "$d" 2>/dev/null && [ -w "$d" ] || quickstart_fail "cannot write to $ENF_ROOT/$d (the run and its outputs go there)"
done

enf_install_packages
enf_build "$ENF_ROOT/build"

run=runs/quickstart
rm -rf "$run"
echo "== training a flow on 1000 DW4 structures (run directory: $run)" >&2
build/enf train --system dw4 --n-data 1000 --val-samples 500 --batch 100 --epochs 20 --out "$run"
echo "== sampling 1000 structures with their log q(x)" >&2
build/enf sample --model "$run/best" --n 1000 --seed 1 --out out/dw4_samples.xyz --force --log-q > out/dw4_samples_logq.csv
echo "== scoring the DW4 test split (10000 structures, exact trace)" >&2
build/enf score --model "$run/best" --input dw4:test --rtol 1e-5 --atol 1e-5 > out/dw4_test_scores.csv
cat >&2 <<MSG
quickstart done:
  model (best validation NLL)  $run/best
  training metrics             $run/metrics.jsonl
  1000 samples (XYZ)           out/dw4_samples.xyz   (log q per sample: out/dw4_samples_logq.csv)
  test-split log-likelihoods   out/dw4_test_scores.csv
MSG
