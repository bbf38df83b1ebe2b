#include "kernels/cuda/abs_max.h"

#include <bit>

#include "kernels/cuda/internal/context_impl.h"
#include "kernels/cuda/internal/cuda_status.h"
#include "kernels/cuda/internal/launch.h"
#include "kernels/cuda/internal/stager.h"

namespace qcal::kernels::cuda {

using internal::DeviceBatchStats;
using internal::Launch;

absl::StatusOr<FiniteAbsMaxResult> FiniteAbsMax(const Context& context, const BatchRef& batch) {
  QCAL_CUDA_RETURN_IF_NOT_OK(CheckBatchRef(batch));
  if (batch.count == 0) return FiniteAbsMaxResult{};
  QCAL_CUDA_ASSIGN_OR_RETURN(internal::StagerLease stager, context.impl().Acquire());
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ResetStats());
  DeviceBatchStats* stats = stager->stats();
  QCAL_CUDA_RETURN_IF_NOT_OK(stager->ForEachPiece(
      batch, [&](const void* data, int64_t, int64_t count, const Launch& launch) {
        return internal::LaunchAbsMax(data, batch.dtype, count, &stats->max_bits, &stats->nonfinite,
                                      launch);
      }));
  QCAL_CUDA_ASSIGN_OR_RETURN(const DeviceBatchStats read, stager->ReadStats());
  return FiniteAbsMaxResult{.abs_max = std::bit_cast<float>(read.max_bits),
                            .nonfinite = static_cast<int64_t>(read.nonfinite)};
}

}  // namespace qcal::kernels::cuda
