#include "kernels/parallel.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

TEST(ParallelForTest, EveryElementOnceInContiguousEvenChunks) {
  for (const int64_t n : {0, 1, 7, 1000, 1 << 20}) {
    for (const int chunks : {1, 2, 3, 8}) {
      std::vector<std::atomic<int>> seen(n);
      std::vector<std::pair<int64_t, int64_t>> ranges(chunks, {-1, -1});
      ParallelFor(n, chunks, [&](int chunk, int64_t begin, int64_t end) {
        ranges[chunk] = {begin, end};
        for (int64_t i = begin; i < end; ++i) seen[i].fetch_add(1);
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i].load(), 1) << "n=" << n << " i=" << i;
      // Chunk c covers [n*c/chunks, n*(c+1)/chunks): the split depends only on n and chunks.
      for (int c = 0; c < chunks; ++c) {
        EXPECT_EQ(ranges[c].first, n * c / chunks);
        EXPECT_EQ(ranges[c].second, n * (c + 1) / chunks);
      }
    }
  }
}

TEST(ParallelForTest, BalancedChunksArePerThreadMultiplesOfChunksFor) {
  EXPECT_EQ(BalancedChunksFor(10, 100), 1);  // too small to split
  EXPECT_EQ(BalancedChunksFor(0, 1), 1);
  const int threads = ChunksFor(int64_t{1} << 30, 1);
  EXPECT_EQ(BalancedChunksFor(int64_t{1} << 30, 1, 4), threads > 1 ? 4 * threads : 1);
  EXPECT_EQ(BalancedChunksFor(int64_t{1} << 30, 1, 0), threads > 1 ? threads : 1);
  // Never more chunks than elements.
  EXPECT_LE(BalancedChunksFor(3, 1, 100), 3);
}

TEST(ParallelForTest, NonPositiveChunkCountRunsOnce) {
  int calls = 0;
  ParallelFor(10, 0, [&](int chunk, int64_t begin, int64_t end) {
    ++calls;
    EXPECT_EQ(chunk, 0);
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 10);
  });
  EXPECT_EQ(calls, 1);
}

TEST(ParallelForTest, NestedAndConcurrentCallsComplete) {
  // Callers work on their own chunks, so nesting and many callers cannot deadlock the pool.
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 20; ++rep) {
        ParallelFor(4, 4, [&](int, int64_t, int64_t) {
          ParallelFor(100, 3, [&](int, int64_t begin, int64_t end) { total += end - begin; });
        });
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 20 * 4 * 100);
}

TEST(ParallelForTest, ChunksForFollowsGrainAndCores) {
  EXPECT_EQ(ChunksFor(0), 1);
  EXPECT_EQ(ChunksFor(kParallelGrain - 1), 1);
  EXPECT_EQ(ChunksFor(int64_t{1} << 40), MaxParallelism());
  EXPECT_EQ(ChunksFor(10, 5), std::min(2, MaxParallelism()));
  EXPECT_GE(MaxParallelism(), 1);
}

}  // namespace
}  // namespace qcal::kernels
