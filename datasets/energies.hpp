// Target energies of the particle benchmarks (PROVENANCE.md, "Energy
// definitions"), in units of kT: the Boltzmann density is exp(−E(x)).
//
//   DW4  (4 × 2-D):  E = Σ_{i<j} a(d_ij − d0)⁴ + b(d_ij − d0)² + c,
//                    a = 0.9, b = −4, c = 0, d0 = 4.
//   LJn  (LJ13: 13 × 3-D, LJ55: 55 × 3-D):
//                    E = Σ_pairs ε[(r_m/d)¹² − 2(r_m/d)⁶] + ½ Σ_i ‖x_i − x̄‖²,
//                    ε = r_m = 1, the same for every cluster size (as in
//                    bgflow's / DEM's LennardJonesPotential).
//
// The LJ pair sum comes in two conventions in the literature. The shipped
// splits were generated with `Ordered` (every pair i≠j counted twice, as in
// en_flows, EFM and DEM), so it is the default; `Unordered` (i<j) is the
// textbook energy used by eacf. The harmonic centre-of-mass term is the same
// in both. Structures are flattened node-major, x[i·D + d].
#pragma once

#include <string>
#include <vector>

#include "datasets/particles.hpp"

namespace enf {

enum class LJConvention { Ordered, Unordered };

// "ordered" | "unordered"; std::invalid_argument naming both otherwise.
LJConvention lj_convention(const std::string& name);
const char* to_string(LJConvention c);

// The parameters above, exposed so tests and reports can quote them.
struct DoubleWellParams {
  double a = 0.9, b = -4.0, c = 0.0, d0 = 4.0;
};
struct LennardJonesParams {
  double eps = 1.0, rm = 1.0, harmonic = 0.5;
};

inline constexpr double kLJMinDistance = 1e-10;

// E(x) for one structure of sys (a system of datasets/systems.hpp with an
// energy, at its n and D; std::invalid_argument naming them otherwise). LJ returns +inf when two
// particles are closer than kLJMinDistance·r_m (d → 0 would give inf − inf =
// NaN, and near it the force overflows before the energy does), so a
// Metropolis step there is simply rejected. DW4 is finite everywhere; at
// exactly coincident particles its pair force direction is undefined and taken
// as zero.
double energy(const ParticleSystem& sys, const double* x, LJConvention lj = LJConvention::Ordered);

// E(x), and forces[k] = −∂E/∂x_k written to forces (n·D values). At a
// coincident LJ pair: +inf and zero forces.
double energy_and_forces(const ParticleSystem& sys, const double* x, double* forces,
                         LJConvention lj = LJConvention::Ordered);

// E(x') − E(x) where x' is x with particle i moved by delta (D values), in
// O(n) instead of the O(n²) of two energy() calls: what single-particle
// Metropolis moves need. Exact up to rounding for any x (centred or not: the
// harmonic term's x̄ moves by delta/n, accounted for); +inf when the moved
// particle comes within kLJMinDistance·r_m of another. E(x) must be finite.
double move_energy_change(const ParticleSystem& sys, const double* x, int i, const double* delta,
                          LJConvention lj = LJConvention::Ordered);

// Over rows of x [rows, n·D]: one energy per row.
std::vector<double> energies(const ParticleSystem& sys, const std::vector<double>& x, int rows,
                             LJConvention lj = LJConvention::Ordered);

// Over rows: energies returned, forces [rows, n·D] written to `forces`
// (resized to fit).
std::vector<double> energies_and_forces(const ParticleSystem& sys, const std::vector<double>& x, int rows,
                                        std::vector<double>& forces, LJConvention lj = LJConvention::Ordered);

// Mean and standard error of the mean, treating values as independent.
struct MeanError {
  double mean = 0, error = 0, stddev = 0;
};
MeanError mean_and_error(const std::vector<double>& values);

// Standard error of the mean for correlated values by batch means: `values`
// is `series` chains laid end to end (lengths differing by at most one,
// longer first, as sample_boltzmann lays them out), each split into
// `batches_per_series` contiguous batches; the batch means, long enough to be
// nearly independent, give the error. A chain's leftover values (fewer than
// a batch) are dropped, so `mean` is the mean of the batch means; `stddev` is
// that of all values. std::invalid_argument when a batch would be empty or
// there are fewer than 2 batches.
MeanError batch_means(const std::vector<double>& values, int series = 1, int batches_per_series = 20);

// The integrated autocorrelation time τ = 1 + 2 Σ_{t≥1} ρ(t) of `values`
// (`series` chains laid end to end as for batch_means; their autocovariances
// pooled around each chain's own mean), in units of the spacing of the
// values, with Sokal's automatic window: the smallest M with M ≥ c·τ(M).
// 2τ values are about one independent sample. std::invalid_argument when a
// chain has fewer than 2 values or the values do not vary.
double integrated_autocorrelation_time(const std::vector<double>& values, int series = 1, double c = 5);

}  // namespace enf
