// The kernels' thread pool. Halide's own pool hands out loop iterations to whichever thread asks first and puts
// idle workers to sleep within microseconds. A training step runs some 40 parallel loops of 10-300 us each, so
// on this project's 2-core machines (virtual CPUs, where waking a sleeping one is slow) LeNet-5's step took
// longer on 2 threads than on 1 (2.5 against 2.0 ms), and each loop's half of a tensor landed on whichever core
// took it, so the next loop read it from the other core's cache.
//
// Here each thread owns a contiguous share of every loop (the same batch rows on the same thread from one loop to
// the next), takes iterations from other shares only when its own is done (so a descheduled thread delays
// nothing), and workers spin for a while between loops before they sleep.
#include "runtime/thread_pool.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace nnc::rt {

namespace {

// How long an idle worker spins before it sleeps: longer than the gaps between a step's parallel loops and
// between steps, short enough that a finished run leaves no core busy.
constexpr auto kSpin = std::chrono::microseconds(200);

void relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

thread_local bool inside_task = false;  // nested parallel loops run serially

int runSerially(void* user_context, ParallelTask task, int min, int size, uint8_t* closure) {
  for (int i = min; i < min + size; ++i)
    if (int result = task(user_context, i, closure)) return result;
  return 0;
}

class Pool {
 public:
  explicit Pool(int threads) : threads_(threads), shares_(new Share[static_cast<size_t>(threads)]) {
    for (int self = 1; self < threads_; ++self) workers_.emplace_back([this, self] { work(self); });
  }

  ~Pool() {
    stop_ = true;
    generation_.fetch_add(1);
    generation_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  int threads() const { return threads_; }

  int run(void* user_context, ParallelTask task, int min, int size, uint8_t* closure) {
    std::unique_lock<std::mutex> lock(submit_, std::try_to_lock);
    if (!lock.owns_lock()) return runSerially(user_context, task, min, size, closure);  // another thread's loop
    job_ = {user_context, task, closure};
    for (int t = 0; t < threads_; ++t) {
      shares_[t].next = min + static_cast<int>(static_cast<int64_t>(size) * t / threads_);
      shares_[t].end = min + static_cast<int>(static_cast<int64_t>(size) * (t + 1) / threads_);
    }
    error_ = 0;
    closed_ = false;
    generation_.fetch_add(1);
    generation_.notify_all();
    runShares(0);
    closed_ = true;  // every share is taken: workers that have not joined yet stay out
    while (active_ != 0) relax();
    return error_;
  }

 private:
  struct alignas(64) Share {  // a cache line each: every thread advances its own cursor
    std::atomic<int> next{0};
    int end = 0;
  };
  struct Job {
    void* user_context = nullptr;
    ParallelTask task = nullptr;
    uint8_t* closure = nullptr;
  };

  // The thread's own share first, then what is left of the others.
  void runShares(int self) {
    inside_task = true;
    for (int k = 0; k < threads_; ++k) {
      Share& share = shares_[(self + k) % threads_];
      for (int i = share.next.fetch_add(1); i < share.end; i = share.next.fetch_add(1)) {
        int result = job_.task(job_.user_context, i, job_.closure);
        int none = 0;
        if (result != 0) error_.compare_exchange_strong(none, result);
      }
    }
    inside_task = false;
  }

  void work(int self) {
    uint64_t seen = 0;
    while (true) {
      auto start = std::chrono::steady_clock::now();
      for (int spins = 1; generation_.load() == seen; ++spins) {
        relax();
        if (spins % 64 == 0 && std::chrono::steady_clock::now() - start > kSpin) generation_.wait(seen);
      }
      seen = generation_.load();
      if (stop_) return;
      active_.fetch_add(1);
      if (!closed_) runShares(self);  // a job whose shares are all taken is left alone
      active_.fetch_sub(1);
    }
  }

  const int threads_;
  std::unique_ptr<Share[]> shares_;
  std::vector<std::thread> workers_;
  std::mutex submit_;
  Job job_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> active_{0}, error_{0};
  std::atomic<bool> closed_{true}, stop_{false};
};

std::unique_ptr<Pool> pool;

}  // namespace

void setKernelThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (pool && pool->threads() == threads) return;
  pool.reset();
  pool = std::make_unique<Pool>(threads);
}

int parallelFor(void* user_context, ParallelTask task, int min, int size, uint8_t* closure) {
  if (!pool) setKernelThreads(0);
  if (inside_task || pool->threads() == 1 || size <= 1) return runSerially(user_context, task, min, size, closure);
  return pool->run(user_context, task, min, size, closure);
}

}  // namespace nnc::rt
