#include "datasets/force_field.hpp"

#include <omp.h>
#include <openbabel/forcefield.h>
#include <openbabel/mol.h>
#include <openbabel/oberror.h>
#include <lbfgs.h>

#include <array>
#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <mutex>
#include <utility>

#include "datasets/molecule_io_detail.hpp"

namespace enf {

namespace {

// Open Babel's set-up perceives rings, aromaticity and atom types through
// global typers and logs through one global log: set-ups take turns.
std::mutex& setup_mutex() {
  static std::mutex m;
  return m;
}

// While alive, the calling thread's OpenMP regions (Open Babel's inner
// loops) run on it alone; its setting before is restored after, so that the
// caller's own regions (e.g. enf's count of "all cores") are untouched.
class OneOpenMPThread {
 public:
  OneOpenMPThread() : before_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneOpenMPThread() { omp_set_num_threads(before_); }
  OneOpenMPThread(const OneOpenMPThread&) = delete;
  OneOpenMPThread& operator=(const OneOpenMPThread&) = delete;

 private:
  int before_;
};

const char* plugin_name(ForceFieldKind kind) { return kind == ForceFieldKind::MMFF94 ? "MMFF94" : "UFF"; }

void check_geometry(const std::vector<double>& x, int atoms, const char* what) {
  if (x.size() != 3 * std::size_t(atoms))
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(x.size()) + " coordinates for " +
                                std::to_string(atoms) + " atoms (expected 3 per atom)");
}

using Mat3 = std::array<std::array<double, 3>, 3>;

// The eigenvectors of a symmetric 3x3 matrix (cyclic Jacobi), as the rows of
// the result, by decreasing eigenvalue.
Mat3 eigenvectors(Mat3 a) {
  Mat3 v{};
  for (int i = 0; i < 3; ++i) v[std::size_t(i)][std::size_t(i)] = 1;
  for (int sweep = 0; sweep < 64; ++sweep) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    const double scale = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
    if (off <= 1e-30 * scale || off == 0) break;
    for (std::size_t p = 0; p < 2; ++p)
      for (std::size_t q = p + 1; q < 3; ++q) {
        if (a[p][q] == 0) continue;
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1 : -1) / (std::abs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (std::size_t k = 0; k < 3; ++k) {  // a <- J^T a J, v <- v J (columns p, q)
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (std::size_t k = 0; k < 3; ++k) {
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (std::size_t k = 0; k < 3; ++k) {
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  std::array<std::size_t, 3> order = {0, 1, 2};
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t j = i + 1; j < 3; ++j)
      if (a[order[j]][order[j]] > a[order[i]][order[i]]) std::swap(order[i], order[j]);
  Mat3 rows{};
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t k = 0; k < 3; ++k) rows[i][k] = v[k][order[i]];
  return rows;
}

// A frame of geometry x that turns, moves and mirrors with it: its centroid,
// and its principal axes as the rows of an orthogonal matrix, each axis
// signed so that the third moment of the positions along it is positive (so
// a mirror image has the same coordinates in its frame; the frame may be
// improper, which the force field, mirror-symmetric, does not see). Open
// Babel's minimiser is not exactly equivariant (its steps are limited
// coordinate by coordinate), and it amplifies rounding differences (1e-12 Å
// grows to 1e-4 Å in 50 steps): the geometry is minimised in this frame, its
// coordinates there rounded to kGrid, so that a turned, moved or mirrored
// copy starts from the same numbers (but for the rare coordinate at a
// rounding boundary) and ends as the same geometry turned, moved or
// mirrored alike. For geometries whose axes are distinct and whose third
// moments are not 0, as a drawn conformer's are.
constexpr double kGrid = 1e-8;  // Å

// A minimisation ends when a step lowers the energy by less than this (kcal/mol).
constexpr double kEnergyChange = 1e-6;

struct Frame {
  std::array<double, 3> centre{};
  Mat3 axes{};
  explicit Frame(const std::vector<double>& x) {
    const std::size_t n = x.size() / 3;
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t i = 0; i < 3; ++i) centre[i] += x[3 * a + i] / double(n);
    Mat3 cov{};
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t i = 0; i < 3; ++i)
        for (std::size_t j = 0; j < 3; ++j) cov[i][j] += (x[3 * a + i] - centre[i]) * (x[3 * a + j] - centre[j]);
    axes = eigenvectors(cov);
    for (std::size_t i = 0; i < 3; ++i) {
      double m3 = 0;
      for (std::size_t a = 0; a < n; ++a) {
        double p = 0;
        for (std::size_t k = 0; k < 3; ++k) p += (x[3 * a + k] - centre[k]) * axes[i][k];
        m3 += p * p * p;
      }
      if (m3 < 0)
        for (double& v : axes[i]) v = -v;
    }
  }
  // x in the frame, axes (x - centre), rounded to kGrid.
  std::vector<double> into(const std::vector<double>& x) const {
    std::vector<double> y(x.size());
    for (std::size_t a = 0; a < x.size() / 3; ++a)
      for (std::size_t i = 0; i < 3; ++i) {
        double v = 0;
        for (std::size_t k = 0; k < 3; ++k) v += axes[i][k] * (x[3 * a + k] - centre[k]);
        y[3 * a + i] = std::round(v / kGrid) * kGrid;
      }
    return y;
  }
  // y back, axes^T (y - centroid of y) + centre: the polish does not move
  // the centroid (the minimiser's rounding drift removed).
  std::vector<double> out_of(const std::vector<double>& y) const {
    const std::size_t n = y.size() / 3;
    std::array<double, 3> mean{};
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t i = 0; i < 3; ++i) mean[i] += y[3 * a + i] / double(n);
    std::vector<double> x(y.size());
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t k = 0; k < 3; ++k) {
        double v = centre[k];
        for (std::size_t i = 0; i < 3; ++i) v += axes[i][k] * (y[3 * a + i] - mean[i]);
        x[3 * a + k] = v;
      }
    return x;
  }
};

}  // namespace

std::string to_string(ForceFieldKind kind) { return kind == ForceFieldKind::MMFF94 ? "mmff94" : "uff"; }
std::string to_string(Minimiser m) { return m == Minimiser::LBFGS ? "lbfgs" : "cg"; }

struct ForceField::Impl {
  OpenBabel::OBMol mol;  // the molecule; its coordinates carry geometries in and out
  OpenBabel::OBForceField* ff = nullptr;
  ~Impl() { delete ff; }

  void set(const double* x) {
    for (unsigned i = 0; i < mol.NumAtoms(); ++i)
      mol.GetAtom(int(i) + 1)->SetVector(x[3 * i], x[3 * i + 1], x[3 * i + 2]);
    ff->SetCoordinates(mol);
  }
  void set(const std::vector<double>& x) { set(x.data()); }

  // The energy at x and its gradient dE/dx into g (3 per atom). Open Babel
  // keeps the force, −dE/dx (checked against central differences in
  // tests/datasets/test_force_field.cpp).
  double energy_gradient(const double* x, double* g) {
    set(x);
    const double e = ff->Energy(true);
    const double* force = ff->GetGradientPtr();
    for (unsigned i = 0; i < 3 * mol.NumAtoms(); ++i) g[i] = -force[i];
    return e;
  }

  // The geometry the force field holds.
  std::vector<double> coordinates() {
    ff->GetCoordinates(mol);
    std::vector<double> y(3 * std::size_t(mol.NumAtoms()));
    for (unsigned i = 0; i < mol.NumAtoms(); ++i) {
      const OpenBabel::vector3 v = mol.GetAtom(int(i) + 1)->GetVector();
      y[3 * i] = v.x();
      y[3 * i + 1] = v.y();
      y[3 * i + 2] = v.z();
    }
    return y;
  }

  std::vector<double> minimise_lbfgs(const std::vector<double>& y0, int steps);
};

namespace {

// libLBFGS's view of a minimisation: the force field, and the energy of the
// last iteration (for the stop on a small change).
struct LbfgsRun {
  ForceField::Impl* impl;
  double last = std::numeric_limits<double>::infinity();
};

lbfgsfloatval_t lbfgs_evaluate(void* run, const lbfgsfloatval_t* x, lbfgsfloatval_t* g, int, lbfgsfloatval_t) {
  return static_cast<LbfgsRun*>(run)->impl->energy_gradient(x, g);
}

// Stops (non-zero) once an iteration lowers the energy by less than
// kEnergyChange, the rule of Open Babel's conjugate gradients.
int lbfgs_progress(void* run, const lbfgsfloatval_t*, const lbfgsfloatval_t*, lbfgsfloatval_t fx, lbfgsfloatval_t,
                   lbfgsfloatval_t, lbfgsfloatval_t, int, int, int) {
  auto* r = static_cast<LbfgsRun*>(run);
  const bool small = std::abs(r->last - fx) < kEnergyChange;
  r->last = fx;
  return small ? 1 : 0;
}

}  // namespace

// L-BFGS (libLBFGS: 6 corrections, Moré–Thuente line search) from y0 for at
// most `steps` iterations. On any stop, libLBFGS leaves x at the last
// accepted iterate (a failed line search reverts to the one before), so the
// result never has a higher energy than y0 has; a start whose energy is not
// finite, or an end with a coordinate that is not, gives y0 back.
std::vector<double> ForceField::Impl::minimise_lbfgs(const std::vector<double>& y0, int steps) {
  const int n = int(y0.size());
  const std::unique_ptr<lbfgsfloatval_t, decltype(&lbfgs_free)> x(lbfgs_malloc(n), lbfgs_free);
  if (!x) throw std::bad_alloc();
  std::copy(y0.begin(), y0.end(), x.get());
  std::vector<double> g(y0.size());
  if (!std::isfinite(energy_gradient(x.get(), g.data()))) return y0;
  lbfgs_parameter_t p;
  lbfgs_parameter_init(&p);
  p.max_iterations = steps;
  LbfgsRun run{this};
  lbfgsfloatval_t fx = 0;
  lbfgs(n, x.get(), &fx, lbfgs_evaluate, lbfgs_progress, &run, &p);
  if (!std::all_of(x.get(), x.get() + n, [](double v) { return std::isfinite(v); })) return y0;
  return std::vector<double>(x.get(), x.get() + n);
}

ForceField::ForceField(ForceFieldKind kind) : impl_(std::make_unique<Impl>()), kind_(kind) {
  const std::lock_guard<std::mutex> lock(setup_mutex());
  OpenBabel::OBForceField* shared = OpenBabel::OBForceField::FindForceField(plugin_name(kind));
  if (!shared) throw ForceFieldSetupError(std::string("Open Babel has no force field ") + plugin_name(kind));
  impl_->ff = shared->MakeNewInstance();  // the plugin itself is one shared instance
  impl_->ff->SetLogLevel(OBFF_LOGLVL_NONE);
  impl_->ff->SetLineSearchType(OpenBabel::LineSearchType::Newton2Num);
}

ForceField::ForceField(const Molecule& m, ForceFieldKind kind) : ForceField(kind) { setup(m); }

void ForceField::setup(const Molecule& m) {
  if (!m.bonds_known) throw std::invalid_argument("force field of '" + m.name + "': the molecule's bonds are not known");
  check_geometry(m.positions, m.atoms(), ("force field of '" + m.name + "'").c_str());
  atoms_ = -1;
  const std::lock_guard<std::mutex> lock(setup_mutex());
  const detail::QuietOpenBabel quiet;  // the reason of a failure goes into the exception
  impl_->mol = detail::to_obmol(m);
  const OneOpenMPThread one;
  if (!impl_->ff->Setup(impl_->mol)) {
    std::string why;
    for (const std::string& line : OpenBabel::obErrorLog.GetMessagesOfLevel(OpenBabel::obError)) {
      why += why.empty() ? "" : "; ";
      why += line;
    }
    throw ForceFieldSetupError(to_string(kind_) + " has no parameters for '" + m.name + "'" +
                               (why.empty() ? "" : ": " + detail::trim(detail::one_line(why))));
  }
  atoms_ = m.atoms();
}

ForceField::~ForceField() = default;
ForceField::ForceField(ForceField&&) noexcept = default;
ForceField& ForceField::operator=(ForceField&&) noexcept = default;

double ForceField::energy(const std::vector<double>& x) {
  if (!ready()) throw std::logic_error("ForceField::energy: set up for no molecule");
  check_geometry(x, atoms_, "ForceField::energy");
  impl_->set(x);
  const OneOpenMPThread one;
  return impl_->ff->Energy(false);
}

double ForceField::energy_gradient(const std::vector<double>& x, std::vector<double>& gradient) {
  if (!ready()) throw std::logic_error("ForceField::energy_gradient: set up for no molecule");
  check_geometry(x, atoms_, "ForceField::energy_gradient");
  gradient.resize(x.size());
  const OneOpenMPThread one;
  return impl_->energy_gradient(x.data(), gradient.data());
}

std::vector<double> ForceField::minimise(const std::vector<double>& x, int steps, double* energy_out,
                                         Minimiser how) {
  if (!ready()) throw std::logic_error("ForceField::minimise: set up for no molecule");
  check_geometry(x, atoms_, "ForceField::minimise");
  if (steps < 0) throw std::invalid_argument("ForceField::minimise: steps < 0");
  const OneOpenMPThread one;
  if (steps == 0) {
    if (energy_out) *energy_out = energy(x);
    return x;
  }
  const Frame frame(x);
  std::vector<double> y;
  if (how == Minimiser::LBFGS) {
    y = impl_->minimise_lbfgs(frame.into(x), steps);
  } else {
    impl_->set(frame.into(x));
    impl_->ff->ConjugateGradients(steps, kEnergyChange);
    y = impl_->coordinates();
  }
  if (energy_out) {  // the energy of y (L-BFGS's last evaluation may have been a rejected trial)
    impl_->set(y);
    *energy_out = impl_->ff->Energy(false);
  }
  return frame.out_of(y);
}

}  // namespace enf
