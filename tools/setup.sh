#!/usr/bin/env bash
# Installs what enf needs from Debian packages (only what is missing) and
# builds it. Sourced by quickstart.sh and test.sh; usable on its own:
#   tools/setup.sh [BUILD_DIR] [extra cmake arguments...]
set -euo pipefail

# libcurl and OpenSSL: enf data fetch (downloads, SHA-256); libarchive: the QM9 archive;
# git: the commit enf --version names; Open MPI: mpirun -np K enf (ENF_MPI=ON);
# ccache: a second build configuration (tools/test.sh builds without MPI too) recompiles nothing;
# openbabel (obabel, obenergy): the tests check enf's SDF and polish against Open Babel's own programs.
ENF_PACKAGES=(build-essential cmake git libeigen3-dev libboost-dev libopenbabel-dev nlohmann-json3-dev catch2 zlib1g-dev
              libcurl4-openssl-dev libssl-dev libarchive-dev liblbfgs-dev libopenmpi-dev openmpi-bin ccache openbabel)

enf_install_packages() {
  local missing=()
  for p in "${ENF_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    echo "setup: all packages present" >&2
    return 0
  fi
  echo "setup: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

enf_build() {
  local dir="$1"
  shift
  local launcher=()
  if command -v ccache > /dev/null; then
    # Paths relative to the checkout, so that build directories share the cache.
    export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ENF_ROOT}"
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S "$ENF_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE="${ENF_BUILD_TYPE:-Release}" "${launcher[@]}" "$@" >&2
  # ENF_TARGETS (space-separated): build only those.
  # shellcheck disable=SC2086
  cmake --build "$dir" -j "$(nproc)" ${ENF_TARGETS:+--target $ENF_TARGETS} >&2
}

ENF_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  enf_install_packages
  dir="${1:-$ENF_ROOT/build}"
  shift || true
  enf_build "$dir" "$@"
fi
