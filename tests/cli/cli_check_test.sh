#!/usr/bin/env bash
# enf check gradients end to end: a reference model imported, its derivatives
# checked against finite differences (exit 0, the table), and the errors a
# user can make. That a wrong gradient is caught is tested where a wrong one
# can be made, on the comparison itself (tests/engine/test_gradient_check.cpp).
# Usage: cli_check_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"

check "enf check gradients --help" bash -c "'$enf' check gradients --help | grep -q 'usage: enf check gradients'"
check "--help says how to read the table" bash -c "'$enf' check gradients --help | grep -q 'Reading the table'"
check "import the mild DW4 model" bash -c "'$enf' import --reference tests/fixtures/models/oracle_dw4_mild --out '$tmp/m' > /dev/null"

"$enf" check gradients --model "$tmp/m" > "$tmp/table.txt" 2> "$tmp/log.txt"
code=$?
check "check gradients: exit 0" test $code -eq 0
check "table header" grep -q '^quantity *entries *max_abs_error *max_rel_error *tolerance *ok$' "$tmp/table.txt"
for q in field_jvp field_vjp_input field_vjp_params nll_grad_adjoint nll_grad_discrete; do
  check "row $q is ok" grep -Eq "^$q +[0-9]+ +[0-9.e+-]+ +[0-9.e+-]+ +[0-9.e+-]+ +yes$" "$tmp/table.txt"
done
check "five rows, nothing else on stdout" test "$(wc -l < "$tmp/table.txt")" -eq 6
# 2 structures × 20 parameters are compared for each NLL gradient (the defaults).
check "default: 40 NLL gradient entries" grep -Eq '^nll_grad_adjoint +40 ' "$tmp/table.txt"
check "log on stderr names the data and says ok" bash -c "grep -q 'dw4:test' '$tmp/log.txt' && grep -q 'all 5 checks ok' '$tmp/log.txt'"

# Options: another data source, fewer parameters, the same table shape.
"$enf" check gradients --model "$tmp/m" --data datasets/data/efm_splits/test_split_DW4.npy --structures 1 --params 3 \
  --seed 4 > "$tmp/small.txt" 2> /dev/null
check "--data FILE --structures 1 --params 3: exit 0" test $? -eq 0
check "--params 3 --structures 1: 3 entries" grep -Eq '^nll_grad_discrete +3 ' "$tmp/small.txt"

# Errors.
out=$("$enf" check gradients 2>&1); code=$?
check "no --model: exit 2" test $code -eq 2
check "no --model: says so" contains "$out" '--model is required'
out=$("$enf" check gradients --model "$tmp/m" --params 0 2>&1); code=$?
check "--params 0: exit 2" test $code -eq 2
out=$("$enf" check 2>&1); code=$?
check "'enf check' alone: exit 2" test $code -eq 2
check "'enf check' alone: names 'check gradients'" contains "$out" 'usage: enf check gradients'
out=$("$enf" check gradients --model "$tmp/m" --bogus 2>&1); code=$?
check "unknown option: exit 2, hint to the subcommand's help" bash -c "test $code -eq 2"
check "unknown option: hint to 'enf check gradients --help'" contains "$out" "enf check gradients --help"
out=$("$enf" check gradients --model "$tmp/nope" 2>&1); code=$?
check "missing checkpoint: exit 1" test $code -eq 1
# A molecule model (QM9: features, dequantizer, ActNorm) is not checked, and says so.
"$enf" import --reference qm9-pretrained --out "$tmp/qm9" > /dev/null 2>&1
out=$("$enf" check gradients --model "$tmp/qm9" 2>&1); code=$?
check "molecule model: exit 2" test $code -eq 2
check "molecule model: says why" contains "$out" 'is a molecule model'
finish
