// The statistics enf reports about a flow: NLL as mean ± standard error,
// Kish's effective sample size of importance weights, interatomic distances.
// Commands format them; the arithmetic lives here so that score, eval and
// training validation report the same numbers the same way.
#pragma once

#include <vector>

#include "datasets/energies.hpp"

namespace enf {

// Mean and standard error of the mean of independent values (the sample
// standard deviation over √n, n − 1 in the variance; 0 for one value).
// The mean is accumulated as Σ xᵢ/n, the order score and validation have
// always used, so their reported numbers keep every bit. `stddev` is left 0.
MeanError mean_standard_error(const std::vector<double>& values);

// Kish's effective sample size of weights wᵢ = exp(log_weights[i]) as a
// fraction of their number: (Σw)² / Σw² / N, in [1/N, 1]. The weights are
// shifted by the largest log-weight first (so e^−1000 weights do not
// underflow to 0/0); non-finite log-weights count as weight 0; 0 when no
// weight is positive or there are none.
double kish_ess_fraction(const std::vector<double>& log_weights);

// log wᵢ = −E(xᵢ) − log q(xᵢ): the log importance weight of a model sample
// against the Boltzmann target exp(−E).
std::vector<double> boltzmann_log_weights(const std::vector<double>& energies, const std::vector<double>& log_q);

// The n(n−1)/2 distances |xᵢ − xⱼ|, i < j, of every structure of x
// ([rows, n·dim], node-major), structure by structure.
std::vector<double> pair_distances(const std::vector<double>& x, int rows, int n, int dim);

}  // namespace enf
