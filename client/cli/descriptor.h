// `qcal create`'s descriptor options: "KEY=VALUE,KEY=VALUE,..." as qcal::QuantizerDescriptor.
//
//   --default-input num_bits=8,unsigned=true,calibrator=histogram,num_bins=4096,skip_zeros=false
//   --default-weight axis=0,calibrator=max
//   --quantizer name=conv1._input_quantizer,num_bins=4096
//   --default-input format=fp8_e4m3           // FP8 E4M3 (num_bits 8, scale = amax / 448)
//
// Keys as in the JSON amax table and pytorch-quantization: name (--quantizer only, required
// there), num_bits, unsigned (true|false), axis (an int, or none for per-tensor), calibrator
// (max|histogram), num_bins, skip_zeros (true|false), format (int|fp8_e4m3). Values cannot
// contain commas.
#ifndef QCAL_CLIENT_CLI_DESCRIPTOR_H_
#define QCAL_CLIENT_CLI_DESCRIPTOR_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "qcal/client.h"

namespace qcal::cli {

// `text` as the descriptor of option `option` ("--default-input"); `named`: --quantizer's form,
// which needs name=. INVALID_ARGUMENT naming the option and the key for an unknown key, a key
// given twice, a missing or forbidden name, or a value that does not parse (the CLI reports it
// as a usage error); ranges are CreateModelRequestFor's to check.
absl::StatusOr<QuantizerDescriptor> ParseDescriptor(std::string_view text, std::string_view option,
                                                    bool named);

}  // namespace qcal::cli

#endif  // QCAL_CLIENT_CLI_DESCRIPTOR_H_
