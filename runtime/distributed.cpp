// MPI for data-parallel training, loaded at run time; see distributed.h. OpenMPI's handles (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM) are the addresses of its predefined objects, found by name like its functions.
#include "runtime/distributed.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "runtime/errors.h"

namespace nnc::rt {

namespace {

struct Mpi {
  int (*initialized)(int*) = nullptr;
  int (*init)(int*, char***) = nullptr;
  int (*finalize)() = nullptr;
  int (*comm_rank)(void*, int*) = nullptr;
  int (*comm_size)(void*, int*) = nullptr;
  int (*allreduce)(const void*, void*, int, void*, void*, void*) = nullptr;
  int (*iallreduce)(const void*, void*, int, void*, void*, void*, void**) = nullptr;
  int (*testall)(int, void**, int*, void*) = nullptr;
  int (*waitall)(int, void**, void*) = nullptr;
  std::vector<void*> pending;  // the started sums' requests
  void *comm_world = nullptr, *float_type = nullptr, *double_type = nullptr, *sum = nullptr, *in_place = nullptr;
  bool started = false;
};

Mpi& mpi() {
  static Mpi instance;
  return instance;
}

template <typename T>
void find(void* lib, const char* name, T& out) {
  void* address = dlsym(lib, name);
  if (!address) throw DataError(std::string("OpenMPI's library (libmpi.so.40) lacks `") + name + "`");
  out = reinterpret_cast<T>(address);
}

Ranks start() {
  const char* size = std::getenv("OMPI_COMM_WORLD_SIZE");
  if (!size || std::atoi(size) <= 1) return {};
  // RTLD_GLOBAL: OpenMPI's own plugins resolve their symbols in libmpi.
  void* lib = dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
  if (!lib)
    throw DataError("launched by mpirun (OMPI_COMM_WORLD_SIZE=" + std::string(size) +
                    "), but OpenMPI's library libmpi.so.40 cannot be loaded: install Debian's libopenmpi3");
  Mpi& m = mpi();
  find(lib, "MPI_Initialized", m.initialized);
  find(lib, "MPI_Init", m.init);
  find(lib, "MPI_Finalize", m.finalize);
  find(lib, "MPI_Comm_rank", m.comm_rank);
  find(lib, "MPI_Comm_size", m.comm_size);
  find(lib, "MPI_Allreduce", m.allreduce);
  find(lib, "MPI_Iallreduce", m.iallreduce);
  find(lib, "MPI_Testall", m.testall);
  find(lib, "MPI_Waitall", m.waitall);
  find(lib, "ompi_mpi_comm_world", m.comm_world);
  find(lib, "ompi_mpi_float", m.float_type);
  find(lib, "ompi_mpi_double", m.double_type);
  find(lib, "ompi_mpi_op_sum", m.sum);
  m.in_place = reinterpret_cast<void*>(1);  // OpenMPI's MPI_IN_PLACE
  int already = 0;
  m.initialized(&already);
  if (!already) m.init(nullptr, nullptr);
  m.started = true;
  Ranks r;
  m.comm_rank(m.comm_world, &r.rank);
  m.comm_size(m.comm_world, &r.size);
  return r;
}

// MPI counts elements in ints: `count` of them go as calls of fn(first, n) for at most INT_MAX each.
template <typename Fn>
void inChunks(size_t count, Fn&& fn) {
  constexpr size_t kChunk = std::numeric_limits<int>::max();
  for (size_t done = 0; done < count; done += kChunk) fn(done, static_cast<int>(std::min(kChunk, count - done)));
}

template <typename T>
void allReduce(T* values, size_t count, void* type) {
  if (!ranks().distributed()) return;
  Mpi& m = mpi();
  inChunks(count, [&](size_t first, int n) { m.allreduce(m.in_place, values + first, n, type, m.sum, m.comm_world); });
}

}  // namespace

const Ranks& ranks() {
  static const Ranks r = start();
  return r;
}

void quietUnlessLeader() {
  if (ranks().leader()) return;
  std::fflush(stdout);
  if (!std::freopen("/dev/null", "w", stdout)) throw DataError("rank " + std::to_string(ranks().rank) + ": /dev/null");
}

void allReduceSum(double* values, size_t count) { allReduce(values, count, mpi().double_type); }
void allReduceSum(float* values, size_t count) { allReduce(values, count, mpi().float_type); }

void startSum(float* values, size_t count) {
  if (!ranks().distributed()) return;
  Mpi& m = mpi();
  inChunks(count, [&](size_t first, int n) {
    m.pending.push_back(nullptr);
    m.iallreduce(m.in_place, values + first, n, m.float_type, m.sum, m.comm_world, &m.pending.back());
  });
}

void progressSums() {
  Mpi& m = mpi();
  int all_done = 0;  // statuses ignored: OpenMPI's MPI_STATUSES_IGNORE is a null pointer
  if (!m.pending.empty()) m.testall(static_cast<int>(m.pending.size()), m.pending.data(), &all_done, nullptr);
  if (all_done) m.pending.clear();
}

void waitSums() {
  Mpi& m = mpi();
  if (!m.pending.empty()) m.waitall(static_cast<int>(m.pending.size()), m.pending.data(), nullptr);
  m.pending.clear();
}

void finishRanks() {
  if (mpi().started) {
    mpi().finalize();
    mpi().started = false;
  }
}

}  // namespace nnc::rt
