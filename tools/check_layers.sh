#!/usr/bin/env bash
# Fails on an include that runs up the layers (README: Architecture):
# egnn, ode and datasets include only themselves; engine includes those three
# and itself; tools (the program) and tests may include anything. The build
# enforces the same (CMakeLists.txt: enf_layer); this says it without building.
set -u
cd "$(dirname "$0")/.."
allowed() {  # allowed FOLDER -> the folders its files may include
  case "$1" in
    egnn) echo "egnn" ;;
    ode) echo "ode" ;;
    datasets) echo "datasets" ;;
    engine) echo "egnn ode datasets engine" ;;
  esac
}
bad=0
for layer in egnn ode datasets engine; do
  ok=" $(allowed "$layer") "
  while IFS= read -r line; do
    file=${line%%:*}
    target=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<< "$line")
    case "$ok" in
      *" $target "*) ;;
      *) echo "check_layers: $line  ($layer may include only:$ok)" >&2; bad=1 ;;
    esac
  done < <(grep -rnE '^\s*#\s*include "[a-z_]+/' "$layer" --include='*.cpp' --include='*.hpp' --include='*.h')
done
[ $bad -eq 0 ] && echo "check_layers: no include runs up the layers"
exit $bad
