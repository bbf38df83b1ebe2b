// max |x| over the finite values of a batch on the GPU, and how many values were NaN or +-inf:
// the CUDA twin of kernels/finite_abs_max.h, with the same result bit for bit.
//
//   auto r = qcal::kernels::cuda::FiniteAbsMax(*gpu, qcal::kernels::cuda::BatchRef::Float32(x));
//   r->abs_max; r->nonfinite;
#ifndef QCAL_KERNELS_CUDA_ABS_MAX_H_
#define QCAL_KERNELS_CUDA_ABS_MAX_H_

#include "absl/status/statusor.h"
#include "kernels/cuda/batch_ref.h"
#include "kernels/cuda/context.h"
#include "kernels/finite_abs_max.h"

namespace qcal::kernels::cuda {

// Any dtype, any memory (batch_ref.h); an empty batch gives {0, 0}.
// Errors: those of CheckBatchRef; INVALID_ARGUMENT for device memory not aligned to the element
// size; INTERNAL for a CUDA failure.
absl::StatusOr<FiniteAbsMaxResult> FiniteAbsMax(const Context& context, const BatchRef& batch);

}  // namespace qcal::kernels::cuda

#endif  // QCAL_KERNELS_CUDA_ABS_MAX_H_
