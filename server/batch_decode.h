// A complete batch's values as float32, without a copy where the bytes already are float32.
#ifndef QCAL_SERVER_BATCH_DECODE_H_
#define QCAL_SERVER_BATCH_DECODE_H_

#include <span>
#include <vector>

#include "server/batch_assembler.h"

namespace qcal::server {

// The batch's `elements` values as float32. float32 bytes on a little-endian host, suitably
// aligned, are used in place (the span then points into batch.bytes); anything else is decoded
// by kernels::DecodeToFloat32 into `scratch` (resized as needed, reused across batches).
// The span is valid while `batch` and `scratch` are unchanged.
std::span<const float> DecodeBatch(const Batch& batch, std::vector<float>* scratch);

}  // namespace qcal::server

#endif  // QCAL_SERVER_BATCH_DECODE_H_
