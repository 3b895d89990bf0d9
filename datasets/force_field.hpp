// A classical force field over one molecule's geometries (Open Babel's
// MMFF94 or UFF): its energy and gradient, and a local minimisation
// ("polish") of a geometry, e.g. of a conformer a model drew: L-BFGS
// (libLBFGS) on Open Babel's analytic gradient, or Open Babel's own conjugate
// gradients. Set up
// once per molecule (atom types and parameters from its elements, bonds and
// formal charges; every hydrogen explicit), then any number of geometries
// of that molecule, each in the molecule's atom order.
//
// One ForceField is used by one thread at a time; distinct ones may run in
// parallel threads (each is its own Open Babel instance; their set-ups take
// turns, since Open Babel's perception shares global state). Open Babel's
// force fields parallelise their inner loops with OpenMP, which on tiny
// molecules only costs (threads spin-waiting): a minimisation runs them on
// the calling thread alone (omp_set_num_threads(1) on that thread, its
// setting before restored after).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "datasets/molecule.hpp"

namespace enf {

enum class ForceFieldKind { MMFF94, UFF };
// "mmff94", "uff".
std::string to_string(ForceFieldKind kind);

// How minimise() minimises. LBFGS: libLBFGS's L-BFGS (6 corrections,
// Moré–Thuente line search) on the energy and analytic gradient, about one
// energy evaluation per iteration; ConjugateGradients: Open Babel's
// (Newton2Num line search), the polish of enf before L-BFGS, several
// evaluations per step (README, Results: conformers).
enum class Minimiser { LBFGS, ConjugateGradients };
// "lbfgs", "cg".
std::string to_string(Minimiser m);

class ForceField {
 public:
  // An Open Babel instance of the force field, set up for no molecule yet
  // (it reads its parameter files: milliseconds; keep one per thread and set
  // it up for molecule after molecule).
  explicit ForceField(ForceFieldKind kind);
  // ForceField(kind), then setup(m).
  ForceField(const Molecule& m, ForceFieldKind kind);
  ~ForceField();
  ForceField(ForceField&&) noexcept;
  ForceField& operator=(ForceField&&) noexcept;

  // Sets it up for molecule m (its bonds and formal charges, which must be
  // known: bonds_known; its positions are the set-up geometry, which nothing
  // after it depends on). Throws ForceFieldSetupError when the force field
  // has no parameters for m (MMFF94 lacks some atom types), with Open
  // Babel's reason, and is then set up for nothing; std::invalid_argument
  // when m has no bonds known or not 3 coordinates per atom.
  void setup(const Molecule& m);
  bool ready() const { return atoms_ >= 0; }
  ForceFieldKind kind() const { return kind_; }
  int atoms() const { return atoms_; }

  // The energy (kcal/mol) of geometry x ([atoms, 3], Å) of the molecule set up.
  double energy(const std::vector<double>& x);
  // The energy of x and, into `gradient` (resized to x's size), dE/dx
  // (kcal/mol/Å, Open Babel's analytic gradient).
  double energy_gradient(const std::vector<double>& x, std::vector<double>& gradient);
  // x minimised by at most `steps` iterations of `how` (ends early when an
  // iteration changes the energy by less than 1e-6 kcal/mol; L-BFGS also
  // when |dE/dx| < 1e-5 max(1, |x|) in the frame below), in the same atom
  // order; *energy_out (if given) its energy. Run in x's principal-axes
  // frame, so the result turns, moves and mirrors with x (force_field.cpp).
  // steps 0: x unchanged. std::logic_error when not set up;
  // std::invalid_argument when x does not have 3 coordinates per atom or
  // steps < 0.
  std::vector<double> minimise(const std::vector<double>& x, int steps, double* energy_out = nullptr,
                               Minimiser how = Minimiser::LBFGS);

  struct Impl;  // Open Babel's instance and the minimisers over it (force_field.cpp)

 private:
  std::unique_ptr<Impl> impl_;
  ForceFieldKind kind_;
  int atoms_ = -1;  // -1: set up for no molecule
};

// The force field could not be set up for a molecule.
struct ForceFieldSetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace enf
