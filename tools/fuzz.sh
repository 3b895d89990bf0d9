#!/usr/bin/env bash
# Fuzzes every reader and enf train's --config parser: builds the libFuzzer
# targets of tests/fuzz with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (in build-fuzz/), and runs each for SECONDS
# (default 60) from a seed corpus of the shipped files.
# A finding — crash, sanitizer report, leak, an input slower than 10 s, or
# one that needs more than 2 GB — fails the run; the input is kept under
# build-fuzz/findings/ to reproduce it (build-fuzz/fuzz/fuzz_<reader> FILE).
#   tools/fuzz.sh [SECONDS] [READER...]     readers: npy npz xyz sdf safetensors model_json config
#   tools/fuzz.sh --ci                      what CI runs: a fixed seed and a fixed number of
#                                           inputs per reader (about a minute each here), so the
#                                           result does not depend on the machine's speed
# The regression inputs of earlier findings (tests/data/fuzz_regressions) are
# part of every run's seeds. Leaks inside third-party code that enf cannot fix
# are suppressed by name in tests/fuzz/lsan.supp.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
ENF_PACKAGES+=(clang libclang-rt-14-dev)
enf_install_packages
ci=0
if [ "${1:-}" = "--ci" ]; then ci=1; shift; set -- 0 "$@"; fi
seconds=${1:-60}
shift || true
# --ci: inputs per reader, fixed seed (about 60 s each on a 2-core EPYC).
declare -A ci_runs=([npy]=1500000 [npz]=300000 [xyz]=200000 [sdf]=60000 [safetensors]=60000 [model_json]=100000
                   [config]=25000)
# Input size limit: option files are small (a large one only slows the run;
# the deep-nesting regression is replayed in full by tests/tools).
declare -A max_len=([config]=4096)
readers=("$@")
[ ${#readers[@]} -gt 0 ] || readers=(npy npz xyz sdf safetensors model_json config)

dir="$ENF_ROOT/build-fuzz"
CXX=clang++ cmake -S "$ENF_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENF_FUZZ=ON -DENF_BUILD_TESTS=OFF \
  "-DENF_SANITIZE=address;undefined" >&2
cmake --build "$dir" -j "$(nproc)" --target "${readers[@]/#/fuzz_}" >&2

# Seeds: small shipped files of each format (large ones only slow the fuzzer).
cd "$ENF_ROOT"
seeds="$dir/seeds"
rm -rf "$seeds" && mkdir -p "$seeds"/{npy,npz,xyz,sdf,safetensors,model_json,config} "$dir/findings"
cp tests/data/idx_LJ13_first1000.npy tests/data/cnf_fixture_weights/x_*.npy "$seeds/npy/"
head -c 2048 datasets/data/efm_splits/test_split_DW4.npy > "$seeds/npy/dw4_head.npy"
cp tests/fuzz/seeds/npz/*.npz tests/data/fuzz_regressions/*.npz "$seeds/npz/"
cp datasets/data/qm9/original_xyz/dsgdb9nsd_00000{1,5,9}.xyz datasets/data/qm9/original_xyz/dsgdb9nsd_005005.xyz \
   datasets/data/qm9/chemiscope/explore_qm9.xyz "$seeds/xyz/"
head -n 60 datasets/data/qm9/qm9_sample6000.xyz > "$seeds/xyz/sample_head.xyz"
awk 'n < 3 {print} /^\$\$\$\$/ {n++}' datasets/data/qm9/qm9_first500.sdf > "$seeds/sdf/first3.sdf"
cp tests/data/fuzz_regressions/*.sdf "$seeds/sdf/"
cp tests/fixtures/models/oracle_dw4_mild/flow.safetensors "$seeds/safetensors/"
cp tests/fuzz/seeds/model_json/model.json "$seeds/model_json/"
for f in tests/fixtures/models/*/args.json datasets/models/en_flows_qm9_pretrained/args.json; do
  cp "$f" "$seeds/model_json/$(basename "$(dirname "$f")").args.json"
done
# --config: hand-written option files (typed, and all strings as older runs saved them).
cp tests/fuzz/seeds/config/*.json "$seeds/config/"
cp tests/data/fuzz_regressions/config_* "$seeds/config/"

export LSAN_OPTIONS="suppressions=$ENF_ROOT/tests/fuzz/lsan.supp:print_suppressions=0"
failed=()
for r in "${readers[@]}"; do
  corpus="$dir/corpus/$r"
  if [ $ci -eq 1 ]; then
    rm -rf "$corpus"  # a fresh corpus: the same inputs on every machine
    budget=(-seed=1 -runs="${ci_runs[$r]}")
    echo "== fuzz_$r: ${ci_runs[$r]} inputs, seed 1" >&2
  else
    budget=(-max_total_time="$seconds")
    echo "== fuzz_$r: ${seconds}s" >&2
  fi
  mkdir -p "$corpus"
  if ! "$dir/fuzz/fuzz_$r" "$corpus" "$seeds/$r" "${budget[@]}" -timeout=10 -rss_limit_mb=2048 \
      -max_len="${max_len[$r]:-131072}" -artifact_prefix="$dir/findings/$r-" -print_final_stats=1 > "$dir/fuzz_$r.log" 2>&1; then
    failed+=("$r")
    tail -n 40 "$dir/fuzz_$r.log" >&2
  fi
  grep -a -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$dir/fuzz_$r.log" >&2 || true
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (inputs in $dir/findings/)" >&2
  echo "fuzz: $(( ${#readers[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzz: ${#readers[@]} readers, no findings" >&2
echo "fuzz: ${#readers[@]} passed, 0 failed"
