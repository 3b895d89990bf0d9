#!/usr/bin/env bash
# Sets everything up and runs the whole test suite through ctest.
#   tools/test.sh              Release build in build/
#   tools/test.sh --sanitize   address + undefined sanitizers, in build-sanitize/
# Tests read the shared data and fixtures at ../shared (relative to the repository).
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
[ -d "$ENF_ROOT/../shared/fixtures" ] || { echo "test.sh: ../shared/fixtures is missing (tests need the shared data next to the repository)" >&2; exit 1; }
enf_build "$dir" "${args[@]}"
cd "$dir"
ctest --output-on-failure -j "$(nproc)"
