// Why do molecules sampled from the QM9 flow score far below real ones
// (issue 18)? For each molecule this program splits enf score's
// log-likelihood (the dequantization ELBO)
//   log p(x, h, N) >= E_q[ log p(x, v) - log q(v | x, h) ] + log p(N)
// into the flow's continuous density log p(x, v) at a dequantized point and
// the dequantizer's log q(v | x, h), for real test molecules and for samples.
// For a sample it also evaluates both terms at the point v the flow itself
// generated (when that point lies in the region that quantizes to the
// sample's atom types and charges, where q has support): the continuous
// density there is what the flow "thinks" of its own sample, and
// log p(x, v_s) - log q(v_s | x, h) is one importance weight of the same
// bound, with the flow's own v in place of a draw from q.
//
//   likelihood_gap MODEL N_SAMPLES N_TEST DRAWS SEED THREADS > rows.csv
//
// Built on request (cmake --build build --target likelihood_gap); run by
// tools/experiments/likelihood_gap.sh. Trace: Gaussian Hutchinson, dopri5 at
// rtol = atol = 1e-5 (unbiased for the means reported; the exact trace costs
// ~100× more per molecule).
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "datasets/molecule_io.hpp"
#include "engine/checkpoint.hpp"
#include "engine/molecule_batch.hpp"
#include "engine/molecule_flow.hpp"
#include "engine/rng.hpp"

using namespace enf;

namespace {

double log_sigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }

// The flow's continuous log density log p(x, v) at state [x, v] (n × 9,
// before ActNorm): prior of z(1), ActNorm's log-determinant and the ODE's
// Δlog p, as MoleculeFlow::finish adds them.
// reconstruction: max |z(1) − z0| when z0 (the prior draw the state was
// generated from) is given.
double continuous_log_density(const MoleculeFlow<double>& flow, const double* params, std::vector<double> state,
                              int n, Rng& rng, MoleculeFlow<double>::Scratch& s, const std::vector<double>& z0 = {},
                              double* reconstruction = nullptr) {
  double logdet = 0;
  if (flow.config().actnorm)
    logdet = actnorm_forward(ActNormParams::read(params + flow.actnorm_offset()), state, n);
  const std::vector<double> eps = draw_noise(flow.cnf().options().trace, n * kMoleculeChannels, rng);
  const ForwardResult r = flow.cnf().forward(params, state, n, eps, s.cnf);
  if (!r.solve.ok()) return NAN;
  if (reconstruction) {
    *reconstruction = 0;
    for (std::size_t k = 0; k < z0.size(); ++k) *reconstruction = std::max(*reconstruction, std::abs(r.z[k] - z0[k]));
  }
  return r.log_pz_x + r.log_pz_h + logdet + r.delta_logp;
}

// log q(v | x, h) of the argmax-variational dequantizer at a given v (n × 6),
// by inverting v(u): NaN when v is outside the region of types/charges.
double log_q_at(const Dequantizer<double>& deq, const double* params, const std::vector<double>& x,
                const std::vector<int>& types, const std::vector<double>& v, Dequantizer<double>::Workspace& ws) {
  const int n = int(types.size()), F = kMoleculeFeatures;
  const DequantizerTerms d = deq.forward(params, x, types, std::vector<double>(std::size_t(n) * F, 0.0), ws);
  double log_q = 0;
  for (int i = 0; i < n; ++i) {
    std::vector<double> u(F);
    const int h = types[i];
    const double T = v[i * F + h];
    u[h] = T;
    double ldj = 0;
    for (int k = 0; k < kMoleculeTypes; ++k) {
      if (k == h) continue;
      const double gap = T - v[i * F + k];  // = softplus(T − u_k) > 0
      if (!(gap > 0)) return NAN;
      const double a = std::log(std::expm1(gap));
      u[k] = T - a;
      ldj += log_sigmoid(a);
    }
    const double frac = v[i * F + 5] - kQm9AtomicNumbers[h];
    if (!(frac > 0 && frac < 1)) return NAN;
    u[5] = std::log(frac) - std::log1p(-frac);
    ldj += log_sigmoid(u[5]) + log_sigmoid(-u[5]);
    for (int c = 0; c < F; ++c) {
      const double ls = d.log_sigma[i * F + c], e = (u[c] - d.mu[i * F + c]) * std::exp(-ls);
      log_q += -0.5 * e * e - ls - 0.5 * std::log(2 * M_PI);
    }
    log_q -= ldj;
  }
  return log_q;
}

struct Row {
  std::string kind;
  int index = 0, atoms = 0;
  bool in_region = false;  // the sample's own v quantizes consistently (charge = Z of its type)
  double log_pN = 0;
  double elbo = 0, iw = 0;          // enf score's log_likelihood and log_likelihood_iw over the draws
  double cont_draw = 0, logq_draw = 0;  // mean over draws of log p(x, v) and log q(v | x, h), v ~ q
  double cont_own = NAN, logq_own = NAN;  // at the flow's own v (samples)
  double reconstruction = NAN;            // max |forward(sample) − its prior draw| (samples)
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: likelihood_gap MODEL N_SAMPLES N_TEST DRAWS SEED THREADS\n");
    return 2;
  }
  const Checkpoint c = load_checkpoint(argv[1]);
  const int n_samples = std::atoi(argv[2]), n_test = std::atoi(argv[3]), draws = std::atoi(argv[4]);
  const std::uint64_t seed = std::strtoull(argv[5], nullptr, 10);
  const int threads = std::atoi(argv[6]);
  if (!c.molecule) return std::fputs("not a molecule model\n", stderr), 2;
  CnfOptions o;
  o.trace = TraceEstimator::Gaussian;
  o.solver.rtol = o.solver.atol = 1e-5;
  MoleculeFlow<double> flow(c.field, *c.molecule, o);
  Dequantizer<double> deq(*c.molecule, flow.layout());
  const double* p = c.params.values.data();

  // The molecules: samples (sizes from p(N)) and test molecules spread over the split.
  std::vector<MoleculeInput> mols;
  std::vector<Row> rows;
  std::vector<std::vector<double>> own_state;
  {
    Rng sizes = Rng(seed).split(std::uint64_t(1) << 40);
    std::vector<int> atoms(n_samples);
    for (int& a : atoms) a = flow.node_counts().sample(sizes);
    MoleculeBatch<double> batch(flow, threads);
    const auto s = batch.sample(p, atoms, seed, [](int) {});
    for (int b = 0; b < n_samples; ++b) {
      MoleculeInput in;
      in.x = s[b].x;
      in.types = s[b].types;
      mols.push_back(in);
      Row r;
      r.kind = "sample";
      r.index = b;
      bool agree = true;
      for (int i = 0; i < atoms[b]; ++i) agree = agree && s[b].charges[i] == kQm9AtomicNumbers[s[b].types[i]];
      r.in_region = agree;
      rows.push_back(r);
      own_state.push_back(s[b].state);
    }
    MoleculeReadOptions ro;
    const MoleculeSet test = read_molecules("qm9:test", ro);
    const std::size_t stride = test.molecules.size() / std::size_t(std::max(1, n_test));
    for (int b = 0; b < n_test; ++b) {
      mols.push_back(molecule_input(test.molecules[std::size_t(b) * stride]));
      Row r;
      r.kind = "test";
      r.index = int(std::size_t(b) * stride);
      rows.push_back(r);
      own_state.emplace_back();
    }
  }
  const int M = int(mols.size());
  std::vector<MoleculeFlow<double>::Scratch> scratch(threads);
  std::vector<Dequantizer<double>::Workspace> ws(threads);
  int done = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
  for (int m = 0; m < M; ++m) {
    const int t = omp_get_thread_num();
    Row& r = rows[m];
    const MoleculeInput& in = mols[m];
    const int n = in.atoms();
    r.atoms = n;
    r.log_pN = flow.node_counts().log_prob(n);
    Rng rng = Rng(seed + 7).split(std::uint64_t(m));
    std::vector<double> lp(draws);
    for (int d = 0; d < draws; ++d) {
      const MoleculeNoise noise = flow.draw_noise(n, rng);
      const MoleculeLikelihood L = flow.log_likelihood(p, in, noise, scratch[t]);
      lp[d] = L.log_p;
      r.cont_draw += (L.log_pz_x + L.log_pz_h + L.delta_logp_total) / draws;
      r.logq_draw += L.dequantizer.log_q_v / draws;
    }
    double mx = lp[0];
    for (double v : lp) r.elbo += v / draws, mx = std::max(mx, v);
    double se = 0;
    for (double v : lp) se += std::exp(v - mx);
    r.iw = mx + std::log(se / draws);
    if (r.kind == "sample") {
      // The flow's own point: x and v as it generated them (before rounding).
      std::vector<double> state = own_state[m];
      // The prior draw MoleculeFlow::sample started from (its first n·C normals).
      Rng first = Rng(seed).split(std::uint64_t(r.index));
      std::vector<double> z0(std::size_t(n) * kMoleculeChannels);
      for (double& v : z0) v = first.normal();
      remove_centre_of_mass(z0, 1, n, 3, kMoleculeChannels);
      r.cont_own = continuous_log_density(flow, p, state, n, rng, scratch[t], z0, &r.reconstruction);
      if (r.in_region) {
        std::vector<double> x(std::size_t(n) * 3), v(std::size_t(n) * kMoleculeFeatures);
        for (int i = 0; i < n; ++i) {
          for (int k = 0; k < 3; ++k) x[i * 3 + k] = state[i * kMoleculeChannels + k];
          for (int k = 0; k < kMoleculeFeatures; ++k) v[i * kMoleculeFeatures + k] = state[i * kMoleculeChannels + 3 + k];
        }
        r.logq_own = log_q_at(deq, p, x, in.types, v, ws[t]);
      }
    }
#pragma omp critical
    std::fprintf(stderr, "\r%d/%d molecules", ++done, M);
  }
  std::fprintf(stderr, "\n");
  std::printf("kind,index,atoms,own_v_in_region,log_pN,elbo,iw_bound,log_p_cont_draw,log_q_draw,log_p_cont_own,"
              "log_q_own,reconstruction\n");
  for (const Row& r : rows)
    std::printf("%s,%d,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g,%.3g\n", r.kind.c_str(), r.index, r.atoms,
                int(r.in_region), r.log_pN, r.elbo, r.iw, r.cont_draw, r.logq_draw, r.cont_own, r.logq_own,
                r.reconstruction);
  return 0;
}
