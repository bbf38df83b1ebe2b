// A QuantDescriptor from the reference's keyword arguments written as JSON, for configuration
// files and command lines:
//
//   auto desc = qcal::quant::QuantDescriptorFromJson(
//       nlohmann::json::parse(R"({"num_bits": 8, "axis": 0, "calib_method": "histogram"})"));
//
// Keys are QuantDescriptor(**kwargs)'s: num_bits (integer, or [4, 3] / {"tuple": [4, 3]}:
// pytorch-quantization's num_bits=(4, 3), FP8 E4M3), name (string), fake_quant (bool),
// axis (null, an integer, a list of integers or {"tuple": [...]}, both tuples), amax (a float,
// a list of numbers, nested lists or {"shape": [...], "data": [...]}, float32), learn_amax
// (bool), scale_amax (number or null), calib_method (string), unsigned (bool), narrow_range
// (bool). Missing keys take the defaults.
//
// Errors, with the reference's kinds: c10::TypeError for a value of the wrong JSON type (a
// string or float num_bits, an integer amax: the reference wants a float, list or array), for
// an unknown key, and for learn_amax with an axis; c10::ValueError for a negative num_bits and
// every check of QuantDescriptor's constructor.
#ifndef QCAL_QUANT_QUANT_DESCRIPTOR_JSON_H_
#define QCAL_QUANT_QUANT_DESCRIPTOR_JSON_H_

#include "nlohmann/json_fwd.hpp"
#include "quant/quant_descriptor.h"

namespace qcal::quant {

QuantDescriptor QuantDescriptorFromJson(const nlohmann::json& kwargs);

}  // namespace qcal::quant

#endif  // QCAL_QUANT_QUANT_DESCRIPTOR_JSON_H_
