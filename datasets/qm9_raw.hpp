// The official QM9 download turned into the EDM/cormorant splits (enf data fetch qm9).
//
// Sources (figshare): 3195389 dsgdb9nsd.xyz.tar.bz2, one original QM9 XYZ file per
// molecule (dsgdb9nsd_000001.xyz ... dsgdb9nsd_133885.xyz), and 3195404
// uncharacterized.txt, the 3054 molecules that failed the consistency check.
// The splits are cormorant's gen_splits_gdb9 (used by EDM and E-NF): the
// excluded molecules removed, np.random.seed(0); perm = permutation(130831);
// perm[:100000] train, the next 17748 valid, the last 13083 (10 %) test, each
// mapped through the ascending list of included molecules. Each split's rows
// are in ascending gdb id, as cormorant reads a split's members in archive
// order (the shipped EDM test.npz is sorted by index likewise).
//
// Output per split (<split>.npz, uncompressed): num_atoms int64 [M], charges
// int64 [M, 29] (atomic numbers, zero-padded), positions float32 [M, 29, 3]
// (Å, the file's coordinates, not centred), index int64 [M] (gdb id), and the
// 15 scalars of line 2 as float64 [M]: A B C mu alpha homo lumo gap r2 zpve
// U0 U H G Cv (QM9 units, unconverted). EDM's files also hold omega1 and the
// *_thermo members, which enf does not use; they are not written.
#pragma once

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

namespace enf {

struct Qm9RawOptions {
  long molecules = 133885;     // dsgdb9nsd_*.xyz members the archive must hold
  long excluded = 3054;        // ids the excluded list must hold
  long train = 100000;         // Ntrain
  double test_fraction = 0.1;  // Ntest = int(test_fraction · Nmols), Nmols = molecules − excluded; valid: the rest
  std::uint32_t seed = 0;      // np.random.seed
  // The archive's gdb ids must be exactly 1..molecules, as in the official
  // archive: cormorant picks members by position, enf by gdb id, the same only
  // then. Off for small test archives (then splits are over the ids present).
  bool contiguous_ids = true;
  std::ostream* log = &std::cerr;  // progress and a summary; nullptr: quiet
};

// The gdb ids (1-based) of each split in row order (ascending).
struct Qm9Splits {
  std::vector<int64_t> train, valid, test;
};

// uncharacterized.txt: the first token of every non-empty line that is an
// integer (cormorant's is_int), in file order. Errors name the file and line
// (ids below 1, repeated ids).
std::vector<int64_t> read_qm9_excluded(const std::string& path);

// cormorant's gen_splits_gdb9 over `ids` (the archive's gdb ids, ascending)
// minus `excluded`, with opt's counts and seed. Errors: counts other than
// opt's, excluded ids not among ids, a split that would be empty.
Qm9Splits qm9_splits(const std::vector<int64_t>& ids, const std::vector<int64_t>& excluded,
                     const Qm9RawOptions& opt = {});

// Reads the archive (.tar, .tar.gz, .tar.bz2; libarchive tells them apart),
// parses every included member with the original-QM9 XYZ reader, and writes
// out_dir/train.npz, valid.npz, test.npz. out_dir must be new, empty or hold
// only a previous result (replaced). Atomic: the files are written to a
// directory beside out_dir renamed into place, so a failure leaves no output.
// Errors name the archive and the member; progress goes to opt.log.
Qm9Splits process_qm9_raw(const std::string& archive_path, const std::string& excluded_path,
                          const std::string& out_dir, const Qm9RawOptions& opt = {});

struct Qm9TestCheck {
  long molecules = 0;
  double max_position_diff = 0;  // Å, over all atoms
};

// Throws unless produced_test_npz (process_qm9_raw's test.npz) matches the
// shipped EDM test split (datasets/data/qm9/edm_cormorant_npz/test.npz): the
// same gdb ids in the same order, num_atoms and charges equal, positions and
// the 15 properties equal after rounding to float32 (within one float32 ulp).
// The error names the row, its gdb id and what differs.
Qm9TestCheck verify_against_shipped_test(const std::string& produced_test_npz, const std::string& shipped_test_npz);

}  // namespace enf
