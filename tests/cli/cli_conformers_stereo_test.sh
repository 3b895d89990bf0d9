#!/usr/bin/env bash
# Issue 15: enf conformers keeps the input's tetrahedral stereo. The model is
# reflection-invariant, so its raw samples are L or D at random; --stereo keep
# (the default) reflects each one to the SMILES's configuration, --stereo any
# does not. The handedness is read off the written SDF by a script of its own
# (not enf's library), against L-alanine's geometry from obabel --gen3d. (A
# tiny model's geometries are far from tetrahedral, so handedness depends on
# which three neighbours are read: enf reads the heavy ones, as here.)
# Usage: cli_conformers_stereo_test.sh path/to/enf (from the repository root).
set -u
source "$(dirname "$0")/cli_lib.sh"
model="$tmp/run/best"
tiny_conformer_model "$tmp/run" 0.1

# signs FILE: per record, the sign of det[N - Cα, CH3 - Cα, C - Cα] (atoms
# 1, 3, 4 around 2, as N[C@@H](C)C(=O)O numbers them). L-alanine has '-'
# (obabel --gen3d's L-alanine: det = -2.58 Å³).
signs() {
  python3 - "$1" << 'EOF'
import sys
out = []
for rec in open(sys.argv[1]).read().split("$$$$\n"):
    lines = rec.split("\n")
    if len(lines) < 4:
        continue
    p = [[float(v) for v in l.split()[:3]] for l in lines[4:8]]
    c = p[1]
    u = [[p[k][d] - c[d] for d in range(3)] for k in (0, 2, 3)]
    det = (u[0][0] * (u[1][1] * u[2][2] - u[1][2] * u[2][1]) - u[0][1] * (u[1][0] * u[2][2] - u[1][2] * u[2][0])
           + u[0][2] * (u[1][0] * u[2][1] - u[1][1] * u[2][0]))
    out.append("+" if det > 0 else "-" if det < 0 else "0")
print("".join(out))
EOF
}
fast=(--rtol 1e-4 --atol 1e-4)

"$enf" conformers --model "$model" --input 'N[C@@H](C)C(=O)O L-alanine' --n 16 --seed 5 "${fast[@]}" \
  --out "$tmp/l.sdf" 2> "$tmp/l.log"
check "L-alanine: exit 0" test $? -eq 0
check "L-alanine: 16 conformers, every one L" test "$(signs "$tmp/l.sdf")" = "----------------"
check "L-alanine: the summary says stereo kept in 100 % for 1 molecule with stereocentres" \
  grep -q 'stereo kept in 100.0 % (16 of the 16 conformers of the 1 molecules with specified tetrahedral' "$tmp/l.log"
"$enf" conformers --model "$model" --input 'N[C@H](C)C(=O)O D-alanine' --n 16 --seed 5 "${fast[@]}" \
  --out "$tmp/d.sdf" 2> /dev/null
check "D-alanine: every one D" test "$(signs "$tmp/d.sdf")" = "++++++++++++++++"
"$enf" conformers --model "$model" --input 'N[C@@H](C)C(=O)O L-alanine' --n 16 --seed 5 "${fast[@]}" --stereo any \
  --out "$tmp/a.sdf" 2> "$tmp/a.log"
any=$(signs "$tmp/a.sdf")
check "--stereo any: the model's own draws, L and D both ($any)" bash -c "[[ '$any' == *-* && '$any' == *+* ]]"
check "--stereo any: the summary counts the ones that came out L" \
  grep -q "stereo kept in .*($(tr -cd - <<< "$any" | wc -c) of the 16 conformers.*--stereo any" "$tmp/a.log"
# reflected KEEP ANY: per record, "r" when KEEP's is ANY's reflected through
# its centroid, "=" when the same, "?" when neither (to the SDF's 4 decimals).
reflected() {
  python3 - "$1" "$2" << 'EOF'
import sys
def records(path):
    for rec in open(path).read().split("$$$$\n"):
        lines = rec.split("\n")
        if len(lines) >= 4:
            n = int(lines[3][:3])
            yield [[float(v) for v in l.split()[:3]] for l in lines[4:4 + n]]
out = ""
for k, a in zip(records(sys.argv[1]), records(sys.argv[2])):
    c = [sum(p[d] for p in a) / len(a) for d in range(3)]
    same = max(abs(p[d] - q[d]) for p, q in zip(k, a) for d in range(3))
    mirror = max(abs(p[d] - (2 * c[d] - q[d])) for p, q in zip(k, a) for d in range(3))
    out += "=" if same < 2e-4 else "r" if mirror < 2e-4 else "?"
print(out)
EOF
}
check "--stereo keep: --stereo any's conformers, the D ones reflected through their centroid" \
  test "$(reflected "$tmp/l.sdf" "$tmp/a.sdf")" = "$(tr -- '-+' '=r' <<< "$any")"
"$enf" conformers --model "$model" --input 'NC(C)C(=O)O' --n 2 "${fast[@]}" --out "$tmp/u.sdf" 2> "$tmp/u.log"
check "unspecified centre: nothing to keep, said so" grep -q 'no molecule has specified tetrahedral stereocentres' "$tmp/u.log"
out=$("$enf" conformers --model "$model" --input CCO --n 1 --stereo left --out "$tmp/x.sdf" 2>&1); code=$?
check "--stereo left: a usage error naming the choices" bash -c "test $code -eq 2 && grep -q 'keep' <<< \"\$1\"" _ "$out"

finish
