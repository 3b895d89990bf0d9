#!/usr/bin/env bash
# Sets everything up and runs the whole test suite through ctest.
#   tools/test.sh              Release build in build/
#   tools/test.sh --sanitize   address + undefined sanitizers, in build-sanitize/
# Both build enf with MPI (ENF_MPI=ON: the suite runs mpirun -np 2 and 3); the
# Release run then builds it without MPI too (build-nompi/) and runs the
# program's tests there: enf must build and work either way.
# Everything the tests read ships in the repository (datasets/data, datasets/models,
# tests/fixtures, tests/data); tests run from the repository root.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
enf_install_packages

dir="$ENF_ROOT/build"
args=(-DENF_BUILD_TESTS=ON -DENF_MPI=ON)
if [ "${1:-}" = "--sanitize" ]; then
  dir="$ENF_ROOT/build-sanitize"
  export ENF_BUILD_TYPE=RelWithDebInfo
  args+=("-DENF_SANITIZE=address;undefined")
fi
enf_build "$dir" "${args[@]}"
(cd "$dir" && ctest --output-on-failure -j "$(nproc)")
if [ "${1:-}" != "--sanitize" ]; then
  # Without MPI only tools/mpi_world.cpp differs (ccache reuses the rest): the
  # program and its option code, end to end.
  ENF_TARGETS="enf test_cli_options" enf_build "$ENF_ROOT/build-nompi" -DENF_BUILD_TESTS=ON -DENF_MPI=OFF
  (cd "$ENF_ROOT/build-nompi" && ctest --output-on-failure -R '^(test_cli|test_cli_options)$')
fi
