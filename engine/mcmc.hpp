// Samples of the Boltzmann density exp(−E(x)) (temperature 1) of a particle
// benchmark by random-walk Metropolis, to regenerate or extend the shipped
// DW4 / LJ13 / LJ55 data.
//
// Why random-walk Metropolis and not MALA: it needs energies only (a third of
// the cost of energy + forces for LJ13), it is robust to the stiff r⁻¹²
// repulsion where a gradient step overshoots, and at the acceptance asked
// for it mixes these systems well enough. All-particle moves (DW4, LJ13) move
// every particle by Gaussian noise with its mean removed, so chains stay on
// the centre-of-mass-free subspace: the energies are translation invariant,
// so exp(−E) is only normalisable there (and the shipped data live there).
// The proposal is symmetric on that subspace, so plain Metropolis is exact.
//
// Single-particle moves (LJ55) make a step one sweep over the particles in
// order, each moved by Gaussian noise and accepted on its own energy change
// (move_energy_change, O(n)); the structure is then re-centred, which is a
// translation, so each move is a symmetric proposal on the same subspace and
// the sweep, a product of Metropolis kernels, keeps exp(−E) invariant. In
// 165 dimensions an all-particle step must shrink to be accepted (σ = 0.005
// at acceptance 0.5), while one particle can move by σ = 0.1.
//
// Each chain tunes its own step size during burn-in (after the k-th window
// of kAdaptWindow steps, σ ← σ·exp(2(rate − target)/√k)) and then freezes
// it: adapting while sampling would break detailed balance.
//
// Measured mixing (integrated autocorrelation time τ of E, Sokal's window,
// one thread): DW4 2τ ≈ 400 steps. LJ13, all-particle moves at acceptance
// 0.5: τ ≈ 2500–4800 steps at 8.8e5 steps/s (the thin of 5000 is ~1–2τ);
// single-particle sweeps at 0.25 would be τ ≈ 100 sweeps at 4.1e5 sweeps/s,
// ~20× less time per independent sample, but LJ13 keeps all-particle moves
// so its regenerated data stay what they were. LJ55, all-particle moves at
// 0.5: τ ≈ 15500 steps at 1.3e5 steps/s (0.12 s per τ); single-particle
// sweeps: τ ≈ 285 sweeps at acceptance 0.5, 230 at 0.15 and 190 at 0.25
// (σ ≈ 0.105) at 4.2e4 sweeps/s (4.5 ms per τ, 27× less), hence the LJ55
// defaults: single-particle moves, target 0.25, thin 400 sweeps (≈ 2τ),
// burn-in 10000 sweeps (≈ 50τ; from the random start the energy is at its
// equilibrium level within 500 sweeps).
// DW4 means agree with independent importance sampling to 0.001 ± 0.009.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datasets/energies.hpp"
#include "datasets/particles.hpp"

namespace enf {

// All: every step moves all particles at once (the DW4 / LJ13 default).
// SingleParticle: every step is a sweep of n one-particle Metropolis moves
// (LJ55's default; see above).
enum class McmcMoves { All, SingleParticle };

// "all" | "single"; std::invalid_argument naming both otherwise.
McmcMoves mcmc_moves(const std::string& name);
const char* to_string(McmcMoves m);
// The acceptance rate to tune for by default: 0.5 for all-particle moves,
// 0.25 for single-particle sweeps (for LJ55 the energy's autocorrelation
// time per sweep is 190 at 0.25, 230 at 0.15 and 285 at 0.5).
double default_target_acceptance(McmcMoves m);

struct McmcOptions {
  int samples = 1000;              // kept structures, over all chains
  int chains = 4;                  // independent chains; samples split evenly, earlier chains take the remainder
  int burn_in = 20000;             // steps per chain before the first kept sample (step size tuned here)
  int thin = 10;                   // steps per chain between kept samples
  double target_acceptance = 0.5;  // what burn-in tunes the step size toward
  double initial_step = 0.1;       // proposal standard deviation per coordinate, before tuning
  std::uint64_t seed = 0;          // chain c uses Rng(seed).split(c): results do not depend on threads
  int threads = 0;                 // 0: all cores
  LJConvention lj = LJConvention::Ordered;
  McmcMoves moves = McmcMoves::All;

  // Empty when usable, else a message naming the offending field and value.
  std::string validate() const;
};

inline constexpr int kAdaptWindow = 50;

struct McmcResult {
  int rows = 0;                    // == options.samples
  std::vector<double> x;           // [rows, n·D], centre of mass removed; chain-major (chain 0's samples first)
  std::vector<double> energy;      // [rows], E of each kept structure (double precision)
  std::vector<int> chain_rows;     // kept samples per chain
  std::vector<double> acceptance;  // per chain, over the sampling phase (after burn-in)
  std::vector<double> step_size;   // per chain, as tuned by burn-in
  MeanError mean_energy;           // batch means over each chain (honest for correlated samples)
  double mean_acceptance() const;
};

// fraction ∈ [0, 1] of all Metropolis steps done. Called from worker threads,
// never two at once, at most ~1000 times; finally with 1 from the caller's
// thread. An exception thrown by it stops the sampling and is rethrown
// (as std::runtime_error).
using McmcProgress = std::function<void(double fraction)>;

// std::invalid_argument with validate()'s message for bad options, or for a
// system without an energy.
McmcResult sample_boltzmann(const ParticleSystem& sys, const McmcOptions& options, const McmcProgress& progress = {});

}  // namespace enf
