// The ranks of an enf job (issue 16). Built with ENF_MPI and started by
// mpirun or srun, enf is one rank of MPI_COMM_WORLD; otherwise (or started
// alone) it is rank 0 of 1 and nothing of MPI is touched.
#pragma once

#include "egnn/communicator.hpp"

namespace enf::cli {

// Joins the job when started by an MPI launcher (called once, first thing in main).
void init_world(int& argc, char**& argv);
// The job: MPI_COMM_WORLD, or single_process().
Communicator& world();
// Whether this build can run as several ranks (ENF_MPI).
bool built_with_mpi();
// One rank failed alone (an error the others do not share): ends every rank
// of the job (MPI_Abort) so none waits for it in a collective. Returns only
// when the job has one rank.
void abort_world(int code);
// Leaves the job (MPI_Finalize), at the end of main.
void finalize_world();
// For signal handlers (async-signal-safe): on a rank of a job of several,
// says in one line on stderr, once, that this rank was told to end. mpirun
// sends SIGTERM to every rank when one dies (and Slurm on a cancel or a
// lost node); a rank blocked in a collective with a dead peer is killed
// soon after, so it says why first. Does nothing in a single process.
void note_stop_signal();

}  // namespace enf::cli
