// The lockstep batch solver (see batch_solver.hpp). Each sample is a small
// state machine that stops wherever integrate() would call the System: the
// driver collects the pending evaluations of every active sample into one
// BatchSystem call, then resumes each sample with its result. The machine
// follows solver.cpp's adaptive<> and fixed<> loops step for step, and all
// its arithmetic is rk_step.hpp's, the code integrate() itself runs for
// dopri5 with a Quadrature.
#include "ode/batch_solver.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "ode/rk_step.hpp"
#include "ode/tableau.hpp"

namespace enf::ode {

namespace {

using State = std::vector<double>;
using detail::all_finite;

using detail::FixedGrid;

class Sample {
 public:
  Sample(const Tableau& tab, const SolverOptions& opt, const FixedGrid& grid, double t0, double t1, const State& y0)
      : tab_(tab), opt_(opt), grid_(grid), run_{opt.method, t0, t1, {}, nullptr}, y_(y0), t_(t0) {
    const std::size_t n = y_.size();
    const int s = tab_.stages();
    ynew_.resize(n);
    x_tmp_.resize(n);
    err_.resize(n);
    kbuf_.resize(std::size_t(s) * n);
    k_.resize(s);
    for (int i = 0; i < s; ++i) k_[i] = kbuf_.data() + std::size_t(i) * n;
  }

  // Sets the first evaluation, or finishes at once (t0 ≠ t1 here).
  void start() {
    active_ = true;
    if (!all_finite(y_)) return fail(run_.non_finite_initial_state());
    if (is_adaptive(tab_.method)) {
      phase_ = Phase::Derivative0;
      return request(y_.data(), run_.t0, k_[0]);
    }
    if (grid_.steps == 0) return fail(run_.fixed_steps_exceeded(opt_.fixed_step, grid_.ratio, opt_.max_steps));
    begin_fixed_step();
  }

  // The evaluation asked for is done: go on to the next, or finish.
  void resume() {
    switch (phase_) {
      case Phase::Derivative0: return after_derivative0();
      case Phase::Probe:
        dt_ = detail::initial_step_finish(probe_, y_, stage(0), stage(1), tab_.error_order, opt_.rtol, opt_.atol,
                                          x_tmp_);
        return begin_attempt();
      case Phase::Stage:
        if (stage_ + 1 < tab_.stages()) {
          ++stage_;
          return request_stage();
        }
        return is_adaptive(tab_.method) ? end_attempt() : end_fixed_step();
      case Phase::AfterAccept: return begin_attempt();
    }
  }

  bool active() const { return active_; }
  const double* eval_y() const { return eval_y_; }
  double eval_t() const { return eval_t_; }
  double* eval_dydt() const { return eval_dydt_; }
  void count_evaluation() { ++run_.res.stats.nfe; }
  SolveResult& result() { return run_.res; }
  State& state() { return y_; }

 private:
  // Derivative0: f(y0, t0); Probe: the initial-step heuristic's evaluation;
  // Stage: stage stage_ of a step; AfterAccept: f at a non-FSAL method's new state.
  enum class Phase { Derivative0, Probe, Stage, AfterAccept };

  const Tableau& tab_;
  const SolverOptions& opt_;
  const FixedGrid& grid_;
  detail::Run run_;
  State y_, ynew_, x_tmp_, err_;
  State kbuf_;               // the stages' derivatives, one after another
  std::vector<double*> k_;   // k_[i]: stage i in kbuf_ (FSAL swaps the first and last)
  Phase phase_ = Phase::Derivative0;
  bool active_ = false;
  double t_, dt_ = 0, dt_try_ = 0;
  long attempts_ = 0;
  bool last_ = false;
  int stage_ = 0;
  detail::InitialStep probe_{};
  long step_ = 0;     // fixed-step methods: the step under way
  double t_next_ = 0;  // and its end
  const double* eval_y_ = nullptr;
  double eval_t_ = 0;
  double* eval_dydt_ = nullptr;

  std::span<const double> stage(int i) const { return {k_[i], y_.size()}; }
  void request(const double* y, double t, double* dydt) {
    eval_y_ = y;
    eval_t_ = t;
    eval_dydt_ = dydt;
  }
  // The failure is recorded in run_ already (its message builders return it).
  void fail(const SolveResult&) { finish(); }

  // adaptive<>: after f(y0, t0), the first step's size.
  void after_derivative0() {
    if (!all_finite(stage(0))) return fail(run_.non_finite_derivative());
    const double t0 = run_.t0, t1 = run_.t1;
    if (opt_.initial_step > 0) {
      dt_ = (t1 > t0 ? 1.0 : -1.0) * std::min(opt_.initial_step, std::abs(t1 - t0));
      return begin_attempt();
    }
    probe_ = detail::initial_step_probe(y_, stage(0), t0, t1, opt_.rtol, opt_.atol, x_tmp_);
    phase_ = Phase::Probe;
    request(x_tmp_.data(), probe_.t, k_[1]);
  }

  // The top of adaptive<>'s loop: land on t1, check the budget and the step.
  void begin_attempt() {
    const double remaining = run_.t1 - t_;
    last_ = std::abs(dt_) >= std::abs(remaining) * (1 - 1e-10);
    if (last_) dt_ = remaining;
    if (attempts_ >= opt_.max_steps) return fail(run_.max_steps(t_, opt_.max_steps));
    if (!std::isfinite(dt_) || t_ + dt_ == t_) return fail(run_.step_size_underflow(t_, dt_));
    ++attempts_;
    dt_try_ = dt_;
    phase_ = Phase::Stage;
    stage_ = 1;  // stage 0, f(y, t), is known
    request_stage();
  }

  void request_stage() {
    if (stage_ == 0) return request(y_.data(), t_, k_[0]);
    // An FSAL method's last stage is evaluated at y1.
    State& at = tab_.fsal && stage_ == tab_.stages() - 1 ? ynew_ : x_tmp_;
    detail::stage_state(tab_, stage_, dt_, y_, k_, at);
    request(at.data(), detail::stage_time(tab_, stage_, t_, dt_), k_[stage_]);
  }

  // controlled_runge_kutta::try_step after the stages, then adaptive<>'s
  // bookkeeping of the attempt.
  void end_attempt() {
    if (!tab_.fsal) detail::solution(tab_, dt_, y_, k_, ynew_);
    detail::error_estimate(tab_, dt_, k_, err_);
    const double err = detail::error_norm(opt_.atol, opt_.rtol, opt_.error_components, y_, stage(0), err_, dt_);
    SolveStats& st = run_.res.stats;
    double t_new = t_;
    if (!detail::control_step(tab_, err, t_new, dt_)) {
      ++st.rejected;
      return begin_attempt();
    }
    ++st.accepted;
    st.last_step = dt_try_;
    t_new = last_ ? run_.t1 : t_new;
    if (!all_finite(ynew_)) return fail(run_.non_finite_state(t_new, t_));
    t_ = t_new;
    y_.swap(ynew_);
    if (tab_.fsal) std::swap(k_[0], k_[tab_.stages() - 1]);
    if (last_) return finish();
    if (tab_.fsal) return begin_attempt();
    // Non-FSAL: f(y) once per accepted step, reused by every retry of the next.
    phase_ = Phase::AfterAccept;
    request(y_.data(), t_, k_[0]);
  }

  // fixed<>: step step_ of the shared grid.
  void begin_fixed_step() {
    t_next_ = grid_.end(step_, run_.t0, run_.t1);
    dt_ = t_next_ - t_;
    phase_ = Phase::Stage;
    stage_ = 0;
    request_stage();
  }

  void end_fixed_step() {
    detail::solution(tab_, dt_, y_, k_, ynew_);
    SolveStats& st = run_.res.stats;
    ++st.accepted;
    st.last_step = dt_;
    if (!all_finite(ynew_)) return fail(run_.non_finite_state(t_next_, t_));
    y_.swap(ynew_);
    t_ = t_next_;
    if (++step_ == grid_.steps) return finish();
    begin_fixed_step();
  }

  void finish() { active_ = false; }
};

}  // namespace

BatchSolveResult integrate_batch(const BatchSystem& f, std::vector<std::vector<double>>& y, double t0, double t1,
                                 const SolverOptions& opt) {
  detail::check_arguments(opt, t0, t1);
  if (!f) throw std::invalid_argument("ODE system is empty");

  BatchSolveResult out;
  const std::size_t batch = y.size();
  out.samples.resize(batch);
  if (t0 == t1) return out;

  const Tableau& tab = tableau(opt.method);
  const FixedGrid grid = is_adaptive(opt.method) ? FixedGrid{} : detail::fixed_grid(opt, t0, t1);
  // Every sample works on its own copy: y is written only at the end, so an
  // exception from f leaves it untouched (as integrate() does).
  std::vector<Sample> samples;
  samples.reserve(batch);
  for (std::size_t b = 0; b < batch; ++b) {
    samples.emplace_back(tab, opt, grid, t0, t1, y[b]);
    samples.back().start();
  }

  std::vector<int> active;
  std::vector<const double*> ys;
  std::vector<double> ts;
  std::vector<double*> dydts;
  active.reserve(batch);
  ys.reserve(batch);
  ts.reserve(batch);
  dydts.reserve(batch);
  while (true) {
    active.clear();
    ys.clear();
    ts.clear();
    dydts.clear();
    for (std::size_t b = 0; b < batch; ++b) {
      Sample& s = samples[b];
      if (!s.active()) continue;
      active.push_back(int(b));
      ys.push_back(s.eval_y());
      ts.push_back(s.eval_t());
      dydts.push_back(s.eval_dydt());
      s.count_evaluation();
    }
    if (active.empty()) break;
    ++out.calls;
    out.evaluations += long(active.size());
    f(BatchEval{active, ys, ts, dydts});
    for (const int b : active) samples[std::size_t(b)].resume();
  }

  for (std::size_t b = 0; b < batch; ++b) {
    out.samples[b] = std::move(samples[b].result());
    y[b].swap(samples[b].state());
  }
  return out;
}

}  // namespace enf::ode
