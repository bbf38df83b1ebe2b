#include "server/amax_table.h"

#include <cmath>

namespace qcal::server {

float QuantBound(int num_bits, bool is_unsigned) {
  return static_cast<float>(std::ldexp(1.0, num_bits - 1 + (is_unsigned ? 1 : 0)) - 1.0);
}

}  // namespace qcal::server
