// The validation NLL of a training run (engine/training_run.hpp), in float64
// whatever the training precision, for particle flows and molecule flows.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "egnn/vector_field.hpp"
#include "engine/molecule_batch.hpp"
#include "engine/training_run.hpp"

namespace enf {

// stop() is asked before each structure or molecule starts; once it is true
// the rest are skipped and the result is Validation{.interrupted = true}.
// With comm of several ranks each takes its share (my_shard) and every rank
// returns the same result, as one process's (the structures' noise follows
// their index in the whole set).
using ValidationStop = std::function<bool()>;

// −log p(x) of every structure of x ([rows, n·D]) with `trace` (exact by
// default; Hutchinson noise from seed) at rtol = atol = 1e-5: mean ± standard error.
Validation particle_validation(const FieldConfig& field, const Parameters<double>& params,
                               const std::vector<double>& x, int rows, int n, int threads, std::uint64_t seed,
                               const ValidationStop& stop = [] { return false; },
                               TraceEstimator trace = TraceEstimator::Exact, Communicator& comm = single_process());

// One dequantization draw per molecule, Gaussian Hutchinson trace at
// rtol = atol = 1e-5: −log p(x, h, N) over the molecules whose atom count has
// p(N) > 0; extra holds nll_given_n (−log p(x, h | N) over all of them),
// molecules (counted in the NLL) and excluded. Without any molecule of
// p(N) > 0 the NLL is the NLL given N and extra.nll is null.
Validation molecule_validation(const FieldConfig& field, const MoleculeModelConfig& mol,
                               const Parameters<double>& params, const std::vector<MoleculeInput>& val, int threads,
                               std::uint64_t seed, const ValidationStop& stop = [] { return false; },
                               Communicator& comm = single_process());

}  // namespace enf
