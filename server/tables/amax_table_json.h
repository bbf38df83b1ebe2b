// The JSON form of an amax table (DESIGN.md), as GetAmaxTable and the CLI serve it:
//
//   {"model": "net", "method": "entropy", "quantizers": {
//     "conv1._input_quantizer": {"amax": 2.64, "num_bits": 8, "unsigned": false, "axis": null,
//                                "method": "entropy", "batches": 2, "elements": 123,
//                                "nonfinite": 0, "format": "int"},
//     "conv1._weight_quantizer": {"amax": [0.78, 0.5], "axis": 0, ...}}}
//
// "amax" is a number for a per-tensor quantizer and a list (one per channel) for a per-channel
// one. Each float32 amax is written with the fewest digits that read back as the same float32.
// "format" is "int" (num_bits integers, scale = amax / bound) or "fp8_e4m3" (num_bits 8, scale =
// amax / 448; kernels/quant_format.h). It is the last key, added after the others: a reader that
// predates it sees an FP8 entry as 8-bit signed, so readers that compute scales must check it.
#ifndef QCAL_SERVER_TABLES_AMAX_TABLE_JSON_H_
#define QCAL_SERVER_TABLES_AMAX_TABLE_JSON_H_

#include <string>

#include "kernels/quant_format.h"
#include "server/tables/amax_table.h"

namespace qcal::server {

// Pretty-printed with two-space indentation; quantizers in name order.
std::string AmaxTableToJson(const AmaxTable& table);

}  // namespace qcal::server

#endif  // QCAL_SERVER_TABLES_AMAX_TABLE_JSON_H_
