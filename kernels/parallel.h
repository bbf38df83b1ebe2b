// A small parallel-for over a shared pool of worker threads, so large tensors use every core.
//
//   const int chunks = qcal::kernels::ChunksFor(n, /*grain=*/1 << 18);
//   std::vector<Partial> partial(chunks);
//   qcal::kernels::ParallelFor(n, chunks, [&](int chunk, int64_t begin, int64_t end) {
//     partial[chunk] = Reduce(x.subspan(begin, end - begin));
//   });
//   // combine partial[0..chunks) in chunk order
//
// The split of [0, n) depends only on n and the chunk count, never on which thread runs what, so
// a caller that combines per-chunk results in chunk order gets results independent of timing.
// The calling thread works on chunks too; calls may come from many threads at once and may nest.
#ifndef QCAL_KERNELS_PARALLEL_H_
#define QCAL_KERNELS_PARALLEL_H_

#include <cstdint>

#include "absl/functional/function_ref.h"

namespace qcal::kernels {

// Elements below which splitting a simple per-element pass costs more than it saves.
inline constexpr int64_t kParallelGrain = int64_t{1} << 18;

// Threads a ParallelFor can use: the hardware's concurrency (at least 1).
int MaxParallelism();

// Chunks for n elements: one per `grain` elements, at least 1, at most MaxParallelism().
int ChunksFor(int64_t n, int64_t grain = kParallelGrain);

// Chunks for work that should also balance between threads that progress at different speeds
// (a machine busy with other work, or a cost that varies along [0, n)): `per_thread` chunks
// per thread that ChunksFor(n, grain) would use (1 when that is 1, never more than n), which
// ParallelFor's threads claim as they finish.
int BalancedChunksFor(int64_t n, int64_t grain = kParallelGrain, int per_thread = 4);

// Runs fn(chunk, begin, end) for chunk = 0 .. num_chunks-1 over contiguous pieces of [0, n)
// whose sizes differ by at most one, and returns when every chunk is done. num_chunks < 1 is
// taken as 1; fn must not throw.
void ParallelFor(int64_t n, int num_chunks,
                 absl::FunctionRef<void(int chunk, int64_t begin, int64_t end)> fn);

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_PARALLEL_H_
