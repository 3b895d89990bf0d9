#!/usr/bin/env python3
"""RDKit's ETKDG (v3) + MMFF94 conformers of the molecules of an SDF, for
tools/experiments/conformers_qm9.sh: the baseline beside enf's conformer
model, judged by `enf conformers eval --generated`. A comparison tool only:
enf does not depend on RDKit (Debian: apt-get install python3-rdkit).

Usage: rdkit_conformers.py REFERENCE.sdf OUT.sdf K [SEED]

Each reference record is read with its hydrogens and atom order kept (so the
conformers' atoms are the reference's, in order); its 3-D geometry is used
only for the stereochemistry RDKit perceives from it (chiral centres, double
bond configurations: part of the molecule's identity, as a SMILES with
stereo would give), then K conformers are embedded from scratch
(EmbedMultipleConfs, ETKDGv3, randomSeed = SEED, one thread) and optimized
with MMFF94 (MMFFOptimizeMoleculeConfs, up to 2000 iterations). Every
conformer is written as one record titled as its molecule. A molecule RDKit
cannot read or embed is written as nothing and counted (the evaluation then
counts it as missing); one without MMFF parameters keeps its ETKDG geometry,
counted. OUT.sdf is written through OUT.sdf.part and a rename: a stopped run
leaves no half file.

stdout: one line "seconds_per_conformer <s>" (embedding + optimization time
over the conformers written; reading and writing are not counted); stderr:
progress and the counts.
"""
import os
import sys
import time

try:
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem
except ImportError:
    sys.exit("rdkit_conformers.py: RDKit is not installed (Debian/Ubuntu: apt-get install python3-rdkit)")


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.split("\n\n")[1])
    ref, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seed = int(sys.argv[4]) if len(sys.argv) == 5 else 0
    if k < 1:
        sys.exit("rdkit_conformers.py: K must be at least 1")
    RDLogger.DisableLog("rdApp.*")  # failures are counted below, not printed per molecule
    supplier = Chem.SDMolSupplier(ref, removeHs=False, sanitize=True)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    params.numThreads = 1
    part = out + ".part"
    writer = Chem.SDWriter(part)
    seconds, written, unreadable, failed, no_mmff, molecules = 0.0, 0, 0, 0, 0, 0
    for index, mol in enumerate(supplier):
        molecules += 1
        if mol is None:
            unreadable += 1
            print(f"rdkit_conformers.py: record {index + 1} of {ref}: RDKit cannot read it; skipped",
                  file=sys.stderr)
            continue
        title = mol.GetProp("_Name")
        # The stereo perceived from the reference geometry is kept as tags;
        # the coordinates themselves are dropped before embedding.
        Chem.AssignStereochemistryFrom3D(mol)
        mol.RemoveAllConformers()
        t0 = time.perf_counter()
        ids = list(AllChem.EmbedMultipleConfs(mol, numConfs=k, params=params))
        if ids and AllChem.MMFFHasAllMoleculeParams(mol):
            AllChem.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=2000)
        elif ids:
            no_mmff += 1
        seconds += time.perf_counter() - t0
        if not ids:
            failed += 1
            print(f"rdkit_conformers.py: '{title}': ETKDG embedded no conformer; skipped", file=sys.stderr)
            continue
        for cid in ids:
            mol.SetProp("_Name", title)
            writer.write(mol, confId=cid)
        written += len(ids)
        if molecules % 50 == 0:
            print(f"rdkit_conformers.py: {molecules} molecules, {written} conformers", file=sys.stderr)
    writer.close()
    os.replace(part, out)
    print(f"rdkit_conformers.py: {molecules} molecules, {written} conformers written to {out}; "
          f"{unreadable} unreadable, {failed} not embedded, {no_mmff} without MMFF parameters (ETKDG geometry kept)",
          file=sys.stderr)
    print(f"seconds_per_conformer {seconds / written if written else 0:.6f}")


if __name__ == "__main__":
    main()
