# Shared by the conformer experiments (sourced): one judged run each, kept
# when finished and skipped when run again; a stopped run leaves only a .part.
# Needs $enf, $py and $work set by the caller.

# enf_run MD LOG ARGS...: enf conformers eval ARGS (it draws and judges),
# its table row to MD, its stderr to LOG.
enf_run() {
  local md=$1 log=$2
  shift 2
  [ -s "$md" ] && return 0
  "$enf" conformers eval "$@" > "$md.part" 2> "$log"
  mv "$md.part" "$md"
}

# rdkit_run REF MD LOG SDF: RDKit ETKDGv3 + MMFF94 (K = 10, seed 0) on REF's
# molecules into SDF, judged by enf with the seconds per conformer RDKit took.
rdkit_run() {
  local ref=$1 md=$2 log=$3 sdf=$4 s
  [ -s "$md" ] && return 0
  s=$("$py" tools/experiments/rdkit_conformers.py "$ref" "$sdf" 10 0 2> "$log" |
    awk '$1 == "seconds_per_conformer" {print $2}')
  "$enf" conformers eval --reference "$ref" --generated "$sdf" --label "RDKit ETKDGv3 + MMFF94" \
    --seconds-per-conformer "$s" > "$md.part" 2>> "$log"
  mv "$md.part" "$md"
}
