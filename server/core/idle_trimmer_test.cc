#include "server/core/idle_trimmer.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/time/clock.h"
#include "server/core/batch_assembler.h"
#include "server/core/buffer_pool.h"
#include "server/core/metrics.h"

namespace qcal::server {
namespace {

std::string BufferOf(size_t capacity) {
  std::string buffer;
  buffer.reserve(capacity);  // untouched: costs address space, not memory
  return buffer;
}

double MetricValue(const Metrics& metrics, const std::string& name) {
  for (const prometheus::MetricFamily& family : metrics.registry()->Collect()) {
    if (family.name != name || family.metric.empty()) continue;
    return family.type == prometheus::MetricType::Counter ? family.metric[0].counter.value
                                                          : family.metric[0].gauge.value;
  }
  return -1;
}

TEST(BufferPoolTest, KeepsAtMostItsLimitAndHandsOutTheSmallestFit) {
  BufferPool pool(1 << 20);
  pool.Give(BufferOf(400 << 10));
  pool.Give(BufferOf(300 << 10));
  const size_t kept = pool.bytes();
  EXPECT_GE(kept, size_t{700} << 10);
  pool.Give(BufferOf(500 << 10));  // would pass 1 MiB: freed
  EXPECT_EQ(pool.bytes(), kept);
  pool.Give(std::string("short"));  // no heap buffer: nothing to keep
  EXPECT_EQ(pool.bytes(), kept);

  const std::string fit = pool.Take(200 << 10);
  EXPECT_GE(fit.capacity(), size_t{300} << 10);
  EXPECT_LT(fit.capacity(), size_t{400} << 10);
  EXPECT_EQ(pool.Take(2 << 20).capacity(), std::string().capacity());  // none that large
  EXPECT_GT(pool.Drain(), 0u);
  EXPECT_EQ(pool.bytes(), 0u);

  for (size_t i = 0; i < BufferPool::kMaxBuffers + 10; ++i) pool.Give(BufferOf(1000));
  EXPECT_LE(pool.bytes(), BufferPool::kMaxBuffers * 2000);  // no more than kMaxBuffers kept
  size_t taken = 0;
  while (pool.Take(1000).capacity() >= 1000) ++taken;
  EXPECT_EQ(taken, BufferPool::kMaxBuffers);
}

TEST(BufferPoolTest, TheProcessPoolIsBounded) {
  BufferPool& pool = BufferPool::Global();
  pool.Drain();
  for (int i = 0; i < 12; ++i) pool.Give(BufferOf(size_t{32} << 20));  // 384 MiB offered
  EXPECT_LE(pool.bytes(), BufferPool::kGlobalLimitBytes);
  EXPECT_GE(pool.bytes(), BufferPool::kGlobalLimitBytes - (size_t{33} << 20));
  pool.Drain();
}

TEST(IdleTrimmerTest, EmptiesThePoolOnceTheLastActivityEnds) {
  Metrics metrics;
  IdleTrimmer trimmer(absl::ZeroDuration(), &metrics);
  BufferPool::Global().Drain();
  {
    IdleTrimmer::Activity first = trimmer.Begin();
    {
      IdleTrimmer::Activity second = trimmer.Begin();
      // What a stream leaves behind: its batch buffers go to the pool.
      BatchAssembler assembler(1 << 20);
      ASSERT_TRUE(assembler.Start("q", {kernels::DType::kFloat32, {1024}}).ok());
      ASSERT_TRUE(assembler.Append(std::string(1000, '\0')).ok());
      ASSERT_TRUE(assembler.Append(std::string(3096, '\0')).ok());
      assembler.Recycle(assembler.Take().bytes);
    }
    EXPECT_GE(BufferPool::Global().bytes(), 4096u);
    EXPECT_GE(MetricValue(metrics, "qcal_buffer_pool_bytes"), 4096);
    // One activity is still open: nothing is released (whatever the delay).
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_EQ(trimmer.releases(), 0);
    EXPECT_GE(BufferPool::Global().bytes(), 4096u);
  }
  const absl::Time until = absl::Now() + absl::Seconds(30);  // a bound, not a timing assertion
  while (trimmer.releases() == 0 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_EQ(trimmer.releases(), 1);
  EXPECT_EQ(BufferPool::Global().bytes(), 0u);
  EXPECT_EQ(MetricValue(metrics, "qcal_buffer_pool_bytes"), 0);
  EXPECT_EQ(MetricValue(metrics, "qcal_memory_releases_total"), 1);

  // Each busy period ends in one release.
  { IdleTrimmer::Activity again = trimmer.Begin(); }
  while (trimmer.releases() == 1 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_EQ(trimmer.releases(), 2);
}

TEST(IdleTrimmerTest, ActivityWithinTheDelayPostponesTheRelease) {
  IdleTrimmer trimmer(absl::Hours(1), nullptr);
  { IdleTrimmer::Activity a = trimmer.Begin(); }
  { IdleTrimmer::Activity b = trimmer.Begin(); }
  EXPECT_EQ(trimmer.releases(), 0);  // an hour away; the destructor stops the thread at once
}

}  // namespace
}  // namespace qcal::server
