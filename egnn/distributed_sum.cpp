// assign_groups (distributed_sum.hpp).
#include "egnn/distributed_sum.hpp"

#include <limits>

namespace enf {

std::vector<int> assign_groups(int B, int groups, int ranks, const std::vector<double>& cost) {
  if (!cost.empty() && int(cost.size()) != B) throw std::invalid_argument("assign_groups: one cost per sample");
  std::vector<double> group_cost(groups, 0.0);
  for (int g = 0; g < groups; ++g) {
    for (int b = group_begin(B, groups, g); b < group_begin(B, groups, g + 1); ++b)
      group_cost[g] += cost.empty() ? 1.0 : std::max(cost[b], 0.0);
  }
  // The contiguous partition of the groups into at most `ranks` runs whose
  // largest load is smallest (linear partition by dynamic programming: G ≤ 16,
  // so G²·K steps are nothing). best[k][g]: the smallest largest load of the
  // first g groups on k ranks; ties go to the latest cut (the later ranks
  // take less, ranks left without work are the last), so the result is a
  // function of the costs alone.
  const int K = std::min(ranks, groups);
  std::vector<double> prefix(groups + 1, 0.0);
  for (int g = 0; g < groups; ++g) prefix[g + 1] = prefix[g] + group_cost[g];
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<std::vector<double>> best(K + 1, std::vector<double>(groups + 1, inf));
  std::vector<std::vector<int>> cut(K + 1, std::vector<int>(groups + 1, 0));
  best[0][0] = 0;
  for (int k = 1; k <= K; ++k)
    for (int g = 0; g <= groups; ++g)
      for (int c = 0; c <= g; ++c) {
        const double load = std::max(best[k - 1][c], prefix[g] - prefix[c]);
        if (load <= best[k][g]) best[k][g] = load, cut[k][g] = c;
      }
  std::vector<int> owner(groups, 0);
  for (int k = K, g = groups; k > 0; --k) {
    const int c = cut[k][g];
    for (int i = c; i < g; ++i) owner[i] = k - 1;
    g = c;
  }
  return owner;
}

}  // namespace enf
