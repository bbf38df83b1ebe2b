// A complete batch's values as float32, without a copy where the bytes already are float32.
#ifndef QCAL_SERVER_CORE_BATCH_DECODE_H_
#define QCAL_SERVER_CORE_BATCH_DECODE_H_

#include <cstdint>
#include <span>
#include <string>

#include "server/core/batch_assembler.h"

namespace qcal::server {

// The batch's `elements` values as float32. float32 bytes on a little-endian host, suitably
// aligned, are used in place (the span then points into batch.bytes); anything else is decoded
// by kernels::DecodeToFloat32 into `scratch` (resized to elements * 4 bytes; its heap buffer is
// suitably aligned for float). The span is valid while `batch` and `scratch` are unchanged.
std::span<const float> DecodeBatch(const Batch& batch, std::string* scratch);

// The bytes of scratch DecodeBatch needs for a batch of `elements` values of `dtype`: 0 for
// float32, elements * 4 otherwise (what Record's in-flight budget reserves beside the batch).
int64_t DecodeScratchBytes(kernels::DType dtype, int64_t elements);

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_BATCH_DECODE_H_
