#!/usr/bin/env bash
# Sets everything up and runs the main job on a built-in default.
# At this stage of enf: evaluate the E(n)-equivariant vector field (velocity,
# exact divergence, Hutchinson estimate) on the shipped DW4 test split, with
# fresh weights and with the reference's "mild" oracle weights, then time the
# field and its derivatives on DW4.
set -euo pipefail
source "$(dirname "$0")/setup.sh"
enf_install_packages
enf_build "$ENF_ROOT/build"
cd "$ENF_ROOT"

data=../shared/data/dw4_lj13/efm_splits_via_DEM/test_split_DW4.npy
[ -f "$data" ] || { echo "quickstart: $data not found (the shared data must sit next to the repository)" >&2; exit 1; }
mkdir -p out
echo "== vector field on the DW4 test split, fresh initialisation" >&2
build/enf field --system dw4 --data "$data" --out out/dw4_field_init.csv
echo "== the same with the reference's mild oracle weights" >&2
build/enf field --system dw4 --data "$data" --weights ../shared/models/oracle_dw4_mild/flow.safetensors \
  --prefix odefunc.dynamics. --out out/dw4_field_mild.csv
echo "== timing (DW4, batch 100)" >&2
build/enf bench field --cases dw4 --min-time 0.3
echo "quickstart: per-structure results in out/dw4_field_init.csv and out/dw4_field_mild.csv" >&2
