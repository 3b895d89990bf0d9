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
# tiny_conformer_model DIR MINUTES: a tiny conformer model (H = 16, L = 2, 50
# molecules) trained by flow matching for MINUTES into the run directory DIR
# (its checkpoint: DIR/best), checked; for the tests of enf conformers.
tiny_conformer_model() {
  "$enf" train --system qm9-conformers --objective flow-matching --nf 16 --layers 2 --max-time "$2" --n-data 50 \
    --batch 10 --val-samples 10 --out "$1" > /dev/null 2>&1
  check "train a tiny conformer model" test -f "$1/best/model.json"
}
# signal_once_started PID LOG PATTERN SECONDS SIGNAL: waits (up to 10 s) for
# PATTERN in LOG (the job's start), SECONDS more, then sends SIGNAL to PID and
# waits for it; its exit code in $code.
signal_once_started() {
  for _ in $(seq 100); do grep -q "$3" "$2" && break; sleep 0.1; done
  sleep "$4"
  kill "-$5" "$1"
  wait "$1"; code=$?
}
