#include "kernels/entropy_prefix.h"

#include <cmath>

namespace qcal::kernels::internal {

EntropyPrefix BuildEntropyPrefix(std::span<const uint64_t> counts) {
  const size_t n = counts.size();
  EntropyPrefix p{std::vector<double>(n + 1, 0.0), std::vector<double>(n + 1, 0.0),
                  std::vector<int64_t>(n + 1, 0)};
  for (size_t j = 0; j < n; ++j) {
    const double h = static_cast<double>(j == 0 && n > 1 ? counts[1] : counts[j]);
    p.count[j + 1] = p.count[j] + h;
    p.h_log_h[j + 1] = p.h_log_h[j] + (h > 0 ? h * std::log(h) : 0.0);
    p.occupied[j + 1] = p.occupied[j] + (h > 0 ? 1 : 0);
  }
  return p;
}

}  // namespace qcal::kernels::internal
