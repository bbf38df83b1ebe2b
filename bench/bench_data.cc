#include "bench/bench_data.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <random>

namespace qcal::bench {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

}  // namespace

std::vector<float> NormalValues(int64_t count, uint64_t seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(static_cast<size_t>(count));
  for (float& v : values) v = normal(engine);
  return values;
}

FloatBuffer::FloatBuffer(int64_t count, Pages pages) : count_(count) {
  const size_t bytes =
      (static_cast<size_t>(count) * sizeof(float) + kHugePage - 1) / kHugePage * kHugePage;
  float* p = static_cast<float*>(std::aligned_alloc(kHugePage, bytes));
  if (p == nullptr) throw std::bad_alloc();
  madvise(p, bytes, pages == Pages::k2MiB ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  std::memset(p, 0, bytes);
  data_.reset(p);
}

void FloatBuffer::Free::operator()(float* p) const { std::free(p); }

}  // namespace qcal::bench
