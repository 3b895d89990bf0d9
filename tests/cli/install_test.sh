#!/usr/bin/env bash
# An installed enf stands alone: `cmake --install` into a temporary prefix,
# then a short train / sample / score from another directory, with the data
# and models found under <prefix>/share/enf, and ENF_DATA overriding them.
# Usage: install_test.sh path/to/enf BUILD_DIR (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
build="$2"
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" 2>&1
check "cmake --install" test -x "$prefix/bin/enf"
check "shipped data and models installed" test -f "$prefix/share/enf/data/efm_splits/test_split_DW4.npy" \
  -a -f "$prefix/share/enf/models/en_flows_qm9_pretrained/flow.safetensors"

mkdir -p "$tmp/elsewhere" && cd "$tmp/elsewhere" || exit 1
ienf="$prefix/bin/enf"
export ENF_DATA="$tmp/empty_data_dir"   # nothing fetched: the shipped data must be found
out=$("$ienf" --version)
check "--version names the version and commit" bash -c "grep -q '^enf [0-9]' <<< \"\$0\" && grep -q '^commit ' <<< \"\$0\"" "$out"
check "--version: shipped data under the prefix" contains "$out" "shipped: $prefix/share/enf"
out=$("$ienf" data list)
check "data list: dw4:test shipped" bash -c "grep -A12 '^dw4:' <<< \"\$0\" | grep -q 'test_split_DW4.npy  \[shipped'" "$out"

check "train from another directory" bash -c "'$ienf' train --system dw4 --n-data 100 --val-samples 50 --batch 50 --epochs 1 --out run > train.log 2>&1"
check "sample" bash -c "'$ienf' sample --model run/best --n 10 --seed 1 --out s.xyz > /dev/null 2>&1 && test \$(grep -c '^4\$' s.xyz) -eq 10"
"$ienf" score --model run/best --input dw4:test --rtol 1e-4 --atol 1e-4 --threads 2 > scores.csv 2> score.log
check "score dw4:test: all 10 000 test structures" test "$(tail -n +2 scores.csv | wc -l)" -eq 10000
check "import qm9-pretrained by name" bash -c "'$ienf' import --reference qm9-pretrained --out qm9 > /dev/null 2>&1 && test -f qm9/model.json"
check "conformers with the shipped default model, from another directory" \
  bash -c "'$ienf' conformers --input 'CCO ethanol' --n 2 --out e.sdf > /dev/null 2>&1 && test \$(grep -c '^\\\$\\\$\\\$\\\$' e.sdf) -eq 2"

# ENF_DATA overrides the shipped copy: a 7-structure dw4 test split there.
mkdir -p "$ENF_DATA/efm_splits"
"$ienf" data generate dw4 --n 7 --out "$ENF_DATA/efm_splits/test_split_DW4.npy" > /dev/null 2>&1
"$ienf" score --model run/best --input dw4:test --rtol 1e-4 --atol 1e-4 > scores7.csv 2> /dev/null
check "ENF_DATA overrides the shipped data" test "$(tail -n +2 scores7.csv | wc -l)" -eq 7
finish
