// SampleBatch (sample_batch.hpp): what its template does not need inline.
#include "engine/sample_batch.hpp"

#include <omp.h>

#include <algorithm>

namespace enf {

int batch_threads(int threads) { return threads > 0 ? threads : omp_get_max_threads(); }

void BatchLoss::add(const SampleLoss& s, int B) {
  loss += s.loss;
  nll += s.nll / B;
  regularization += s.regularization / B;
  nfe_forward += s.nfe_forward;
  nfe_backward += s.nfe_backward;
  cpu_seconds_forward += s.seconds_forward;
  cpu_seconds_backward += s.seconds_backward;
  max_reconstruction_error = std::max(max_reconstruction_error, s.reconstruction_error);
}

}  // namespace enf
