// `enf --version`: what this binary is, to cite with a result.
#include <Eigen/Core>
#include <boost/version.hpp>
#include <cstdio>
#include <openbabel/babelconfig.h>

#include "datasets/registry.hpp"
#include "tools/commands.hpp"

namespace enf::build_info {
extern const char* const kVersion;
extern const char* const kCommit;
extern const char* const kCompiler;
extern const char* const kOptions;
}  // namespace enf::build_info

namespace enf::cli {

int print_version() {
  namespace b = enf::build_info;
  std::printf("enf %s\n", b::kVersion);
  std::printf("commit     %s\n", b::kCommit);
  std::printf("compiler   %s, C++%ld\n", b::kCompiler, long(__cplusplus / 100 % 100));
  std::printf("build      %s\n", b::kOptions);
  std::printf("libraries  Eigen %d.%d.%d, Boost %d.%d.%d, Open Babel %s, OpenMP %d\n", EIGEN_WORLD_VERSION,
              EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION, BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000,
              BOOST_VERSION % 100, BABEL_VERSION, _OPENMP);
  const std::string shipped = shipped_dir();
  std::printf("data       shipped: %s; fetched: %s\n", shipped.empty() ? "(not found)" : shipped.c_str(),
              data_dir().c_str());
  return 0;
}

}  // namespace enf::cli
