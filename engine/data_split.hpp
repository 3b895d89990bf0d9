// A held-out split by position: every record whose 0-based position in its
// file is divisible by `every` is held out, the others train. Spread over a
// file sorted by anything (QM9's files are ordered by molecule index, hence
// roughly by size and composition), and the same records `enf score
// --stride every` reads, so a model's NLL on them is one command.
#pragma once

#include <stdexcept>
#include <vector>

namespace enf {

struct HeldOutSplit {
  std::vector<int> train, held_out;  // positions, increasing
};

inline HeldOutSplit every_kth_held_out(int count, int every) {
  if (count < 0 || every < 2) throw std::invalid_argument("held-out split: needs count >= 0 and every >= 2");
  HeldOutSplit s;
  for (int i = 0; i < count; ++i) (i % every == 0 ? s.held_out : s.train).push_back(i);
  return s;
}

}  // namespace enf
