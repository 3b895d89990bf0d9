# Shared by the end-to-end CLI scripts (sourced): $enf from the first
# argument, a temporary directory $tmp removed on exit, check "what" cmd...
# counting failures, contains TEXT PATTERN, and finish to report and exit.
set -u
enf="$1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # check "what" command...
  local what="$1"; shift
  if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}
contains() { grep -q -- "$2" <<< "$1"; }  # contains TEXT PATTERN
finish() {
  echo "$fails failure(s)"
  exit $((fails > 0))
}
