// enf_sdf_check FILE.sdf: judges an SDF enf wrote with Open Babel alone
// (sdf_consistency.hpp) and prints one line of counts, then each problem.
// Exit 0 when every record is consistent, 1 otherwise, 2 on usage errors.
// For test_cli_sdf, which gives it molecules sampled by the model.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "datasets/sdf_consistency.hpp"

int main(int argc, char** argv) {
  if (argc != 2) return std::fputs("usage: enf_sdf_check FILE.sdf\n", stderr), 2;
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) return std::fprintf(stderr, "enf_sdf_check: cannot read %s\n", argv[1]), 2;
  std::ostringstream text;
  text << in.rdbuf();
  const enf::test::SdfConsistency j = enf::test::check_sdf_consistency(text.str());
  std::printf("records %ld valid %ld stable %ld multi_fragment %ld charged %ld problems %zu\n", j.records, j.valid,
              j.stable, j.multi_fragment, j.charged, j.problems.size());
  for (const auto& p : j.problems) std::printf("%s\n", p.c_str());
  return j.problems.empty() && j.records > 0 ? 0 : 1;
}
