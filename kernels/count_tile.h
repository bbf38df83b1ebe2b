// The scatter both binning passes end in (histogram_binning.cc, mergeable_count.cc): one uint32
// count per slot index, four increments unrolled so independent slots overlap in the pipeline.
#ifndef QCAL_KERNELS_COUNT_TILE_H_
#define QCAL_KERNELS_COUNT_TILE_H_

#include <cstdint>

namespace qcal::kernels {

// ++counts[slots[i]] for i in [0, count). The caller sizes `counts` for every slot index and
// flushes it before a count can wrap.
inline void CountTile(const uint32_t* slots, int count, uint32_t* counts) {
  int i = 0;
  for (; i + 4 <= count; i += 4) {
    ++counts[slots[i]];
    ++counts[slots[i + 1]];
    ++counts[slots[i + 2]];
    ++counts[slots[i + 3]];
  }
  for (; i < count; ++i) ++counts[slots[i]];
}

}  // namespace qcal::kernels

#endif  // QCAL_KERNELS_COUNT_TILE_H_
