#include "kernels/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace qcal::kernels {
namespace {

// One ParallelFor call. Workers and the caller claim chunks through `next`; the caller waits
// until `remaining` reaches zero. Stale queue entries (all chunks claimed) are dropped, so a job
// outlives its caller only as this small object, never through `fn`.
struct Job {
  Job(int64_t n, int chunks, absl::FunctionRef<void(int, int64_t, int64_t)> f)
      : n(n), num_chunks(chunks), fn(f), remaining(chunks) {}

  // Runs chunks until none is left unclaimed.
  void RunChunks() {
    for (int chunk = next.fetch_add(1); chunk < num_chunks; chunk = next.fetch_add(1)) {
      const int64_t begin = n * chunk / num_chunks;
      const int64_t end = n * (chunk + 1) / num_chunks;
      fn(chunk, begin, end);
      if (remaining.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(mu);
        done = true;
        cv.notify_all();
      }
    }
  }

  const int64_t n;
  const int num_chunks;
  absl::FunctionRef<void(int, int64_t, int64_t)> fn;
  std::atomic<int> next{0};
  std::atomic<int> remaining;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
};

class Pool {
 public:
  explicit Pool(int workers) {
    threads_.reserve(workers);
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { WorkerLoop(); });
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // Offers the job to up to `helpers` idle workers.
  void Offer(const std::shared_ptr<Job>& job, int helpers) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < helpers; ++i) queue_.push_back(job);
    }
    if (helpers == 1) {
      cv_.notify_one();
    } else {
      cv_.notify_all();
    }
  }

 private:
  void WorkerLoop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      job->RunChunks();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // guarded by mu_
  bool stop_ = false;                       // guarded by mu_
  std::vector<std::thread> threads_;
};

Pool& SharedPool() {
  static Pool* pool = new Pool(MaxParallelism() - 1);  // never destroyed: workers may be busy
  return *pool;
}

}  // namespace

int MaxParallelism() {
  static const int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  return threads;
}

int ChunksFor(int64_t n, int64_t grain) {
  if (grain < 1) grain = 1;
  const int64_t chunks = std::min<int64_t>(MaxParallelism(), n / grain);
  return static_cast<int>(std::max<int64_t>(1, chunks));
}

int BalancedChunksFor(int64_t n, int64_t grain, int per_thread) {
  const int threads = ChunksFor(n, grain);
  if (threads <= 1) return 1;
  return static_cast<int>(std::min<int64_t>(n, int64_t{threads} * std::max(1, per_thread)));
}

void ParallelFor(int64_t n, int num_chunks,
                 absl::FunctionRef<void(int chunk, int64_t begin, int64_t end)> fn) {
  if (num_chunks <= 1 || MaxParallelism() == 1) {
    const int chunks = std::max(1, num_chunks);
    for (int chunk = 0; chunk < chunks; ++chunk)
      fn(chunk, n * chunk / chunks, n * (chunk + 1) / chunks);
    return;
  }
  auto job = std::make_shared<Job>(n, num_chunks, fn);
  SharedPool().Offer(job, std::min(num_chunks - 1, MaxParallelism() - 1));
  job->RunChunks();
  std::unique_lock<std::mutex> lock(job->mu);
  job->cv.wait(lock, [&] { return job->done; });
}

}  // namespace qcal::kernels
