#!/usr/bin/env bash
# End-to-end checks of the molecule (QM9) command line with the official
# pretrained model: import, score on every input format, sample to SDF/XYZ/SVG
# and read the result back, and errors on bad molecule input.
# Usage: cli_molecules_test.sh path/to/enf (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
qm9=datasets/data/qm9
# The reference's protocol (Gaussian Hutchinson, 1e-4) keeps the solves short.
fast=(--trace gaussian --rtol 1e-4 --atol 1e-4)

check "import the pretrained QM9 model" bash -c "'$enf' import --reference datasets/models/en_flows_qm9_pretrained --out '$tmp/qm9' | grep -q 'qm9'"
check "checkpoint has the molecule config" grep -q '"dequantization": "argmax_variational"' "$tmp/qm9/model.json"
out=$("$enf" eval --model "$tmp/qm9" --data "$qm9/edm_cormorant_npz/test.npz" 2>&1); code=$?
check "eval on a molecule model: exit 1, one line naming the commands to use" \
  bash -c "test $code -eq 1 && test \$(wc -l <<< \"\$0\") -eq 1 && grep -q 'enf metrics' <<< \"\$0\"" "$out"

# Scoring: the npz split, original QM9 xyz, multi-frame xyz and SDF.
"$enf" score --model "$tmp/qm9" --input "$qm9/edm_cormorant_npz/test.npz" --limit 3 "${fast[@]}" --format json \
  > "$tmp/npz.json" 2> "$tmp/npz.log"
check "score npz: exit 0" test $? -eq 0
check "score npz: 3 results" bash -c "test \$(grep -c '\"log_likelihood\"' '$tmp/npz.json') -eq 3"
check "score npz: names the gdb id" grep -q 'gdb 11' "$tmp/npz.json"
check "score npz: NLL summary on stderr" grep -q '^NLL' "$tmp/npz.log"
check "score original QM9 xyz" bash -c "'$enf' score --model '$tmp/qm9' --input '$qm9/original_xyz/dsgdb9nsd_005005.xyz' ${fast[*]} 2>/dev/null | grep -q '^0,gdb 5005'"
check "score SDF, 2 draws" bash -c "'$enf' score --model '$tmp/qm9' --input '$qm9/qm9_first500.sdf' --limit 2 --samples 2 ${fast[*]} 2>/dev/null | tail -n +2 | wc -l | grep -qx 2"
check "score multi-frame xyz with a stride" bash -c "'$enf' score --model '$tmp/qm9' --input '$qm9/qm9_sample6000.xyz' --stride 3000 ${fast[*]} 2>/dev/null | tail -n +2 | wc -l | grep -qx 2"
# Same molecule from the npz and from the original xyz (gdb 5001 is in both):
# same seed and index 0, so the same noise; positions agree to 2e-7 Å.
"$enf" score --model "$tmp/qm9" --input "$qm9/original_xyz/dsgdb9nsd_005001.xyz" "${fast[@]}" > "$tmp/a.csv" 2>/dev/null
check "gdb 5001 scores finitely" bash -c "tail -n 1 '$tmp/a.csv' | cut -d, -f4 | grep -qE '^-?[0-9]'"

# The shipped reference model by name (imported in memory): the same rows and
# samples as its imported checkpoint, in score, sample and export.
"$enf" score --model qm9-pretrained --input "$qm9/edm_cormorant_npz/test.npz" --limit 3 "${fast[@]}" --format json \
  > "$tmp/npz_named.json" 2> /dev/null
check "score --model qm9-pretrained: the imported checkpoint's rows" \
  bash -c "diff <(grep -v summary '$tmp/npz.json') <(grep -v summary '$tmp/npz_named.json')"
"$enf" sample --model qm9-pretrained --n 2 --seed 2 "${fast[@]}" --out "$tmp/named.xyz" > /dev/null 2>&1
"$enf" sample --model "$tmp/qm9" --n 2 --seed 2 "${fast[@]}" --out "$tmp/imported.xyz" > /dev/null 2>&1
check "sample --model qm9-pretrained: the imported checkpoint's samples" cmp "$tmp/named.xyz" "$tmp/imported.xyz"
check "sample --model a reference model's directory" \
  "$enf" sample --model datasets/models/en_flows_qm9_pretrained --n 1 "${fast[@]}" --out "$tmp/dir.xyz" --force
check "export --model qm9-pretrained writes a checkpoint" \
  bash -c "'$enf' export --model qm9-pretrained --out '$tmp/qm9_exported' > /dev/null 2>&1 && test -s '$tmp/qm9_exported/model.json'"
out=$("$enf" sample --model "$tmp/no-such-model" --n 1 --out "$tmp/x.xyz" 2>&1); code=$?
check "sample --model a missing directory: exit 1 naming it" bash -c "test $code -eq 1 && grep -q 'no-such-model' <<< \"\$0\"" "$out"

# Sampling: SDF with properties, read back by Open Babel (enf metrics, enf score).
"$enf" sample --model "$tmp/qm9" --n 4 --seed 2 "${fast[@]}" --out "$tmp/gen.sdf" > "$tmp/gen.csv" 2> "$tmp/gen.log"
check "sample sdf: exit 0" test $? -eq 0
check "sample sdf: 4 records" bash -c "test \$(grep -c '^\\\$\\\$\\\$\\\$' '$tmp/gen.sdf') -eq 4"
check "sample sdf: log-likelihood property" bash -c "test \$(grep -c '<log_likelihood>' '$tmp/gen.sdf') -eq 4"
check "sample sdf: stability properties" bash -c "test \$(grep -c '<molecule_stable>' '$tmp/gen.sdf') -eq 4"
check "sample: set metrics on stdout" grep -q '^4,' "$tmp/gen.csv"
check "metrics read the generated SDF back" bash -c "'$enf' metrics --input '$tmp/gen.sdf' --format json 2>/dev/null | grep -q '\"molecules\": 4'"
check "score the generated SDF" bash -c "'$enf' score --model '$tmp/qm9' --input '$tmp/gen.sdf' ${fast[*]} 2>/dev/null | tail -n +2 | wc -l | grep -qx 4"
"$enf" sample --model "$tmp/qm9" --n 2 --seed 2 "${fast[@]}" --no-score --out "$tmp/gen2.xyz" > /dev/null 2>&1
check "same seed: the first molecules again (xyz)" bash -c "diff <(grep -A1 -m1 'enf sample 0' '$tmp/gen2.xyz' | tail -1) <(grep -A1 -m1 'enf sample 0' <('$enf' sample --model '$tmp/qm9' --n 3 --seed 2 ${fast[*]} --no-score --out '$tmp/gen3.xyz' >/dev/null 2>&1; cat '$tmp/gen3.xyz') | tail -1)"
check "--atoms fixes the size" bash -c "'$enf' sample --model '$tmp/qm9' --n 2 --atoms 9 --seed 1 ${fast[*]} --no-score --out '$tmp/nine.xyz' >/dev/null 2>&1 && test \$(grep -c '^9\$' '$tmp/nine.xyz') -eq 2"
check "a picture as SVG" bash -c "'$enf' sample --model '$tmp/qm9' --n 3 --seed 1 ${fast[*]} --no-score --out '$tmp/pic.svg' >/dev/null 2>&1 && grep -q '<svg' '$tmp/pic.svg'"

# A size p(N) never saw (QM9 has no 2-atom molecule): -inf, and a warning that says why.
printf '2\nhydrogen\nH 0 0 0\nH 0 0 0.74\n' > "$tmp/h2.xyz"
"$enf" score --model "$tmp/qm9" --input "$tmp/h2.xyz" "${fast[@]}" > "$tmp/h2.csv" 2> "$tmp/h2.log"
check "p(N) = 0: -inf and a warning" bash -c "grep -q '^0,hydrogen,2,-inf,-inf' '$tmp/h2.csv' && grep -q 'probability 0' '$tmp/h2.log'"

# Errors: one clear line, non-zero exit, nothing written.
printf '2\nchlorine\nCl 0 0 0\nH 0 0 1.3\n' > "$tmp/cl.xyz"
err=$("$enf" score --model "$tmp/qm9" --input "$tmp/cl.xyz" 2>&1 >/dev/null); rc=$?
check "unknown element: exit 1" test $rc -eq 1
check "unknown element: names record and atom" bash -c "grep -q \"record 1 ('chlorine')\" <<< \"$err\" && grep -q 'atom 1 is Cl' <<< \"$err\""
: > "$tmp/empty.sdf"
err=$("$enf" score --model "$tmp/qm9" --input "$tmp/empty.sdf" 2>&1 >/dev/null); rc=$?
check "empty file: exit 1, says so" bash -c "test $rc -eq 1 && grep -q 'no molecules' <<< \"$err\""
# Cut inside the atom block of record 6 (record 6 ends at byte 2500).
head -c 2420 "$qm9/qm9_first500.sdf" > "$tmp/cut.sdf"
err=$("$enf" score --model "$tmp/qm9" --input "$tmp/cut.sdf" 2>&1 >/dev/null); rc=$?
check "truncated SDF: exit 1, names the record" bash -c "test $rc -eq 1 && grep -q 'record' <<< \"$err\" && test \$(wc -l <<< \"$err\") -eq 1"
err=$("$enf" sample --model "$tmp/qm9" --n 2 --out "$tmp/x.png" 2>&1 >/dev/null); rc=$?
check "unwritable format: exit 1 before sampling" bash -c "test $rc -eq 1 && grep -q 'svg' <<< \"$err\" && test ! -e '$tmp/x.png'"
err=$("$enf" sample --model "$tmp/qm9" --n 2 --atoms 40 --out "$tmp/big.sdf" 2>&1 >/dev/null); rc=$?
check "--atoms beyond p(N): usage error" bash -c "test $rc -eq 2 && grep -q 'atoms' <<< \"$err\""

# Flow matching on molecules (issue 14), on the held-out split: a tiny run, then score and sample its model.
fm=(--system qm9 --objective flow-matching --n-data 64 --val-samples 8 --nf 8 --layers 1 --batch 16 --epochs 1)
"$enf" train "${fm[@]}" --split tenth --out "$tmp/fm" > "$tmp/fm.log" 2>&1
check "train qm9 flow matching: exit 0" test $? -eq 0
check "flow matching: uniform dequantization by default" grep -q '"dequantization": "uniform"' "$tmp/fm/best/model.json"
check "flow matching: FM loss on every step line" bash -c "test \$(grep -c '\"loss\".*\"type\":\"step\"' '$tmp/fm/metrics.jsonl') -eq 4"
check "--split tenth: in config.json" grep -q '"split": "tenth"' "$tmp/fm/config.json"
check "--split tenth: the checkpoint names the held-out molecules" grep -q 'held-out molecules (positions divisible by 10)' "$tmp/fm/best/model.json"
# The validation molecules are the first 8 of the tenth: what enf score --stride 10 --limit 8 reads.
"$enf" score --model "$tmp/fm/best" --input qm9:test --stride 10 --limit 8 "${fast[@]}" --format json > "$tmp/fm_score.json" 2> "$tmp/fm_score.log"
check "score the flow-matching model on the held-out tenth: exit 0" test $? -eq 0
check "score: records at rows 0, 10, ..., 70 of the file" bash -c "test \$(grep -oE 'row [0-9]+ \\(' '$tmp/fm_score.json' | tr -dc '0-9\\n' | paste -sd,) = 0,10,20,30,40,50,60,70"
check "sample the flow-matching model" bash -c "'$enf' sample --model '$tmp/fm/best' --n 2 --no-score --out '$tmp/fm.xyz' >/dev/null 2>&1 && test \$(grep -c 'enf sample' '$tmp/fm.xyz') -eq 2"
err=$("$enf" train "${fm[@]}" --dequantization argmax_variational --out "$tmp/fm2" 2>&1 >/dev/null); rc=$?
check "flow matching refuses a variational dequantizer: usage error, nothing written" \
  bash -c "test $rc -eq 2 && grep -q 'trained through the likelihood' <<< \"$err\" && test ! -e '$tmp/fm2/config.json'"
err=$("$enf" train "${fm[@]}" --split tenth --val-data qm9:test --out "$tmp/fm3" 2>&1 >/dev/null); rc=$?
check "--split tenth with --val-data: usage error" bash -c "test $rc -eq 2 && grep -q 'leave out --val-data' <<< \"$err\""

finish
