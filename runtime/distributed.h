// Data-parallel training across processes over MPI (Debian's OpenMPI): a trainer started by `mpirun -np N` runs
// as N ranks; without mpirun it is a singleton and nothing here does anything. OpenMPI's library is loaded with
// dlopen when the trainer finds itself under mpirun (OMPI_COMM_WORLD_SIZE), so trainers neither link it nor
// need it installed to run alone.
//
// Semantics as PyTorch's DistributedDataParallel: --batch is per rank; each step every rank takes its slice of
// one global batch (the single-process order for a batch of ranks x --batch), computes its gradients (grads),
// the ranks average them weighted by their rows (MPI_Allreduce), and every rank applies the same update, so the
// parameters stay identical without being sent. BatchNorm normalizes with each rank's own batch (as DDP without
// SyncBatchNorm); its running statistics are averaged across ranks the same way, so they stay identical too.
#pragma once

#include <cstddef>

namespace nnc::rt {

struct Ranks {
  int rank = 0, size = 1;
  bool distributed() const { return size > 1; }
  bool leader() const { return rank == 0; }  // prints, writes metrics, plots and checkpoints
};

// This process's rank among the trainer's processes; starts MPI on first use when launched by mpirun (an
// MPI error aborts every rank, which is what a rank that dies gets its peers too). Throws DataError when
// mpirun launched the trainer and OpenMPI's library cannot be loaded.
const Ranks& ranks();

// On a rank other than 0, sends stdout to /dev/null (rank 0 prints for all; errors still reach stderr).
void quietUnlessLeader();

// Sums `count` doubles element by element across the ranks, in place (every rank gets the sums).
void allReduceSum(double* values, size_t count);
// The same for floats.
void allReduceSum(float* values, size_t count);

// Starts summing `count` floats across the ranks in place (MPI_Iallreduce); `values` must be left alone until
// waitSums. Every rank must start the same sums in the same order.
void startSum(float* values, size_t count);
// Lets the started sums progress (MPI moves their data only inside its calls); returns at once.
void progressSums();
// Waits until every started sum is done.
void waitSums();

// Ends MPI after a run that succeeded on every rank (MPI_Finalize waits for them all).
void finishRanks();

}  // namespace nnc::rt
