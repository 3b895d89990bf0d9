#!/usr/bin/env bash
# Sets everything up and runs the whole test suite through ctest.
#   tools/test.sh              Release build in build/
#   tools/test.sh --sanitize   address + undefined sanitizers, in build-sanitize/
# Everything the tests read ships in the repository (datasets/data, datasets/models,
# tests/fixtures, tests/data); tests run from the repository root.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
enf_install_packages

dir="$ENF_ROOT/build"
args=(-DENF_BUILD_TESTS=ON)
if [ "${1:-}" = "--sanitize" ]; then
  dir="$ENF_ROOT/build-sanitize"
  export ENF_BUILD_TYPE=RelWithDebInfo
  args+=("-DENF_SANITIZE=address;undefined")
fi
enf_build "$dir" "${args[@]}"
cd "$dir"
ctest --output-on-failure -j "$(nproc)"
