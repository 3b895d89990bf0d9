// assign_groups (distributed_sum.hpp).
#include "egnn/distributed_sum.hpp"

namespace enf {

std::vector<int> assign_groups(int B, int groups, int ranks, const std::vector<double>& cost) {
  if (!cost.empty() && int(cost.size()) != B) throw std::invalid_argument("assign_groups: one cost per sample");
  std::vector<double> group_cost(groups, 0.0);
  double total = 0;
  for (int g = 0; g < groups; ++g) {
    for (int b = group_begin(B, groups, g); b < group_begin(B, groups, g + 1); ++b)
      group_cost[g] += cost.empty() ? 1.0 : std::max(cost[b], 0.0);
    total += group_cost[g];
  }
  // A group goes to the rank whose share of the total holds its start:
  // non-decreasing in g (each rank owns one contiguous run, rank 0 the
  // first), and no rank holds more than its share plus one group.
  std::vector<int> owner(groups, 0);
  double before = 0;
  for (int g = 0; g < groups; ++g) {
    const double start = total > 0 ? before / total : double(g) / groups;
    owner[g] = std::min(ranks - 1, int(start * ranks));
    before += group_cost[g];
  }
  return owner;
}

}  // namespace enf
