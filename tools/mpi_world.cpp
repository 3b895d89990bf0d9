// The job's ranks (mpi_world.hpp): MPI_COMM_WORLD as a Communicator.
#include "tools/mpi_world.hpp"

#include <algorithm>
#include <atomic>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef ENF_WITH_MPI
#include <mpi.h>
#include <omp.h>
#include <unistd.h>
#endif

namespace enf::cli {

#ifdef ENF_WITH_MPI
namespace {

// Started by a launcher: Open MPI's mpirun, Slurm's srun --mpi=pmix/pmi2, MPICH's hydra.
bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string("MPI: ") + what + " failed (" + std::string(text, len) +
                           "): another rank of the job was lost or the network failed");
}

class MpiWorld final : public Communicator {
 public:
  MpiWorld() {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    // Failures come back as codes (thrown with a clear line), not as MPI's own abort.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::vector<std::string> allgather(const std::string& mine) override {
    const std::uint64_t n = mine.size();
    std::vector<std::uint64_t> sizes(size_);
    check(MPI_Allgather(&n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "allgather (sizes)");
    std::vector<int> counts(size_), displs(size_);
    std::uint64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      if (sizes[r] > std::uint64_t(INT_MAX) || total + sizes[r] > std::uint64_t(INT_MAX))
        throw CollectiveError("MPI: a message between ranks exceeds 2 GiB");
      counts[r] = int(sizes[r]);
      displs[r] = int(total);
      total += sizes[r];
    }
    // A receive buffer kept between calls: a step's exchange (G×P doubles)
    // would otherwise be zeroed and page-faulted afresh every time.
    if (received_.size() < total) received_.resize(total);
    check(MPI_Allgatherv(mine.data(), int(n), MPI_BYTE, received_.data(), counts.data(), displs.data(), MPI_BYTE,
                         MPI_COMM_WORLD),
          "allgather");
    std::vector<std::string> out(size_);
    for (int r = 0; r < size_; ++r) out[r].assign(received_.data() + displs[r], std::size_t(counts[r]));
    return out;
  }

  void broadcast(std::string& data, int root) override {
    std::uint64_t n = data.size();
    check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, MPI_COMM_WORLD), "broadcast (size)");
    if (n > std::uint64_t(INT_MAX)) throw CollectiveError("MPI: a broadcast exceeds 2 GiB");
    data.resize(n);
    check(MPI_Bcast(data.data(), int(n), MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
  }

 private:
  int rank_ = 0, size_ = 1;
  std::vector<char> received_;
};

MpiWorld* g_world = nullptr;
char g_term_line[160];
std::size_t g_term_len = 0;

std::atomic<bool> g_noted{false};

// Until a command installs its own (graceful) handler: say why, then die of the signal.
extern "C" void on_job_ended(int sig) {
  note_stop_signal();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

void init_world(int& argc, char**& argv) {
  if (!launched_by_mpi()) return;
  int provided = 0;
  // Only the main thread calls MPI; OpenMP threads compute between the calls.
  MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
  static MpiWorld world;
  g_world = &world;
  // Ranks on one node share its cores: --threads 0 ("all cores") means this
  // rank's share, unless OMP_NUM_THREADS says otherwise.
  if (const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE"); local && !std::getenv("OMP_NUM_THREADS")) {
    const int ranks_here = std::atoi(local), cores = omp_get_num_procs();
    if (ranks_here > 1) omp_set_num_threads(std::max(1, cores / ranks_here));
  }
  if (world.size() > 1) {
    const std::string line = "enf: rank " + std::to_string(world.rank()) + " of " + std::to_string(world.size()) +
                             ": told to stop (SIGTERM/SIGINT: another rank failed, a node was lost or the job "
                             "was cancelled); checkpoints are written whole or not at all\n";
    g_term_len = line.copy(g_term_line, sizeof g_term_line - 1);
    static_assert(std::atomic<bool>::is_always_lock_free, "note_stop_signal runs in signal handlers");
    std::signal(SIGTERM, on_job_ended);
  }
}

Communicator& world() { return g_world ? static_cast<Communicator&>(*g_world) : single_process(); }
bool built_with_mpi() { return true; }

void abort_world(int code) {
  if (g_world && g_world->size() > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

void note_stop_signal() {
  if (g_term_len && !g_noted.exchange(true)) [[maybe_unused]] auto w = ::write(2, g_term_line, g_term_len);
}

void finalize_world() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (g_world && !finalized) MPI_Finalize();
}

#else

// Started by mpirun with several ranks but built without MPI, each process
// would run the whole job alone (and fight over its outputs): refused.
void init_world(int&, char**&) {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* n = std::getenv(v); n && std::atoi(n) > 1) {
      std::fprintf(stderr,
                   "enf: error: started as one of %s processes (%s), but this enf was built without MPI: each "
                   "would run the whole job alone. Rebuild with cmake -DENF_MPI=ON (Debian: libopenmpi-dev "
                   "openmpi-bin), or run one process.\n",
                   n, v);
      std::exit(2);
    }
}
Communicator& world() { return single_process(); }
bool built_with_mpi() { return false; }
void abort_world(int) {}
void finalize_world() {}
void note_stop_signal() {}

#endif

}  // namespace enf::cli
