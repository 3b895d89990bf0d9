#!/usr/bin/env bash
# enf data list / fetch end to end, offline: mirrors made here (a directory,
# and an HTTP server on 127.0.0.1 started and stopped by this script), with a
# corrupted file, an interrupted transfer and an unreachable source.
# Usage: cli_data_test.sh path/to/enf path/to/enf_test_http_server (run from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
server="$2"
export ENF_DATA="$tmp/data"   # the data directory of every command below
splits=datasets/data/efm_splits
server_pid=""
stop_server() { [ -n "$server_pid" ] && kill "$server_pid" 2> /dev/null; wait "$server_pid" 2> /dev/null; server_pid=""; }
trap 'stop_server; rm -rf "$tmp"' EXIT
start_server() {  # start_server ROOT [server options]: sets $port
  local root="$1"; shift
  rm -f "$tmp/port"
  "$server" --root "$root" --port-file "$tmp/port" --max-requests 20 --timeout-s 60 "$@" 2> "$tmp/server.log" &
  server_pid=$!
  for _ in $(seq 100); do [ -s "$tmp/port" ] && break; sleep 0.05; done
  port=$(cat "$tmp/port")
}

check "enf data list --help" bash -c "'$enf' data list --help | grep -q 'usage: enf data list'"
check "enf data fetch --help" bash -c "'$enf' data fetch --help | grep -q 'usage: enf data fetch'"
out=$("$enf" data list)
check "data list: every dataset" bash -c "for n in dw4 lj13 lj55 qm9 qm9-positional; do grep -q \"^\$n: \" <<< \"\$0\" || exit 1; done" "$out"
check "data list: shipped, fetched state, source and checksum" bash -c \
  "grep -q 'test_split_DW4.npy  \[shipped, 320 kB\]' <<< \"\$0\" && grep -q 'train_split_LJ13-1000.npy  \[not fetched' <<< \"\$0\" && grep -q 'git blob df022a6e23730f22a35f5f98b0c6af25f57ef1b5' <<< \"\$0\" && grep -q 'figshare.com/ndownloader/files/3195389' <<< \"\$0\"" "$out"
check "data list --format json" bash -c "'$enf' data list --format json | grep -q '\"sha256\": \"ef4466793b3502b2fe405aad22d3ae43b34827971594c5bab28684771d828244\"'"

out=$("$enf" data fetch nosuch 2>&1); code=$?
check "fetch an unknown dataset: usage error listing the known ones" bash -c "[ $code -eq 2 ] && grep -q 'dw4, lj13, lj55, qm9' <<< \"\$0\"" "$out"
out=$("$enf" data fetch dw4 2>&1); code=$?
check "fetch a shipped dataset: nothing to download" bash -c "[ $code -eq 0 ] && grep -q 'nothing to download' <<< \"\$0\" && [ ! -e '$ENF_DATA/efm_splits' ]" "$out"

# A directory mirror: the shipped DW4 files, fetched again and verified.
mkdir -p "$tmp/mirror"
cp $splits/*DW4.npy "$tmp/mirror/"
check "fetch --force from a directory mirror" bash -c "'$enf' data fetch dw4 --force --from '$tmp/mirror' --quiet > '$tmp/fetch.out' 2> '$tmp/fetch.err'"
check "  the files are in the data directory, byte for byte" cmp "$ENF_DATA/efm_splits/test_split_DW4.npy" "$splits/test_split_DW4.npy"
check "  stdout says where each part is" grep -q "^dw4:test	$ENF_DATA/efm_splits/test_split_DW4.npy" "$tmp/fetch.out"
check "  data list says fetched" bash -c "'$enf' data list | grep -q 'test_split_DW4.npy  \[fetched'"
check "  a second fetch finds them verified" bash -c "'$enf' data fetch dw4 --from '$tmp/mirror' 2>&1 | grep -q 'nothing to download'"

# A corrupted file: the mirror's LJ13 training split has the right size but
# not the content the source repository lists (git blob id): an error, nothing kept.
head -c 15600128 /dev/zero > "$tmp/mirror/train_split_LJ13-1000.npy"
out=$("$enf" data fetch lj13 --from "$tmp/mirror" --quiet 2>&1); code=$?
check "corrupted download: exit 1 naming both checksums" bash -c \
  "[ $code -eq 1 ] && grep -q 'df022a6e23730f22a35f5f98b0c6af25f57ef1b5' <<< \"\$0\" && [ \$(grep -c . <<< \"\$0\") -eq 2 ]" "$out"
check "  nothing kept under the final name or as .part" bash -c "! ls '$ENF_DATA/efm_splits/' | grep -q LJ13"
check "  the part is still not available by name" bash -c "'$enf' field --system lj13 --data lj13:train 2>&1 | grep -q 'enf data fetch lj13'"

# Over HTTP on 127.0.0.1, with the first transfer cut after 100 kB: the
# download resumes (a Range request) and ends verified.
rm -rf "$ENF_DATA"
start_server "$tmp/mirror" --cut-after 100000
check "fetch over HTTP with an interrupted transfer" bash -c \
  "'$enf' data fetch dw4 --force --from 'http://127.0.0.1:$port' > /dev/null 2> '$tmp/http.err'"
stop_server
check "  resumed with a Range request" grep -q "Range: bytes=" "$tmp/server.log"
check "  verified files" cmp "$ENF_DATA/efm_splits/train_split_DW4.npy" "$splits/train_split_DW4.npy"
check "  no .part left" bash -c "! ls '$ENF_DATA/efm_splits/' | grep -q '\.part'"
check "  progress with size on stderr" grep -q "MB" "$tmp/http.err"

# Offline: an unreachable source is one clear line, exit 1, nothing written.
rm -rf "$ENF_DATA"
out=$("$enf" data fetch lj13 --from http://127.0.0.1:9 --quiet 2>&1); code=$?
check "unreachable source: exit 1, one line naming the URL" bash -c \
  "[ $code -eq 1 ] && grep -q 'http://127.0.0.1:9/train_split_LJ13-1000.npy' <<< \"\$0\" && [ ! -e '$ENF_DATA/efm_splits/train_split_LJ13-1000.npy' ]" "$out"

# QM9 from a mirror holding a 20-molecule archive: fetched, then refused by
# the processing (the official archive has 133 885 molecules); nothing kept.
mkdir -p "$tmp/qm9mirror/x"
cp datasets/data/qm9/original_xyz/*.xyz "$tmp/qm9mirror/x/"
tar -C "$tmp/qm9mirror/x" -cf "$tmp/qm9mirror/dsgdb9nsd.xyz.tar.bz2" .
out=$("$enf" data fetch qm9 --from "$tmp/qm9mirror" --quiet 2>&1); code=$?
check "qm9 from a mirror with a small archive: refused" bash -c "[ $code -eq 1 ] && grep -q '133885' <<< \"\$0\"" "$out"
check "  no processed splits and no raw files kept" bash -c "[ ! -e '$ENF_DATA/qm9/edm_cormorant_npz/train.npz' ] && ! ls '$ENF_DATA/qm9/raw' 2>/dev/null | grep -q ."
check "  qm9:test still the shipped split" bash -c "'$enf' metrics --input qm9:test 2>/dev/null | grep -q '13083'"
finish
