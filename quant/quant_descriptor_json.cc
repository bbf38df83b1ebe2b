#include "quant/quant_descriptor_json.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "quant/errors.h"

namespace qcal::quant {
namespace {

using Json = nlohmann::json;

// The Python class a JSON value stands for, in the reference's messages: "<class 'str'>".
std::string PyType(const Json& v) {
  const char* name = "object";
  switch (v.type()) {
    case Json::value_t::null:
      name = "NoneType";
      break;
    case Json::value_t::boolean:
      name = "bool";
      break;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      name = "int";
      break;
    case Json::value_t::number_float:
      name = "float";
      break;
    case Json::value_t::string:
      name = "str";
      break;
    case Json::value_t::array:
      name = "list";
      break;
    case Json::value_t::object:
      name = "dict";
      break;
    default:
      break;
  }
  return absl::StrCat("<class '", name, "'>");
}

bool GetBool(const Json& v, const char* key) {
  if (!v.is_boolean()) ThrowTypeError(absl::StrCat(key, " must be a bool, not ", PyType(v), "."));
  return v.get<bool>();
}

int GetAxisInt(const Json& v) {
  if (!v.is_number_integer()) {
    ThrowTypeError(
        absl::StrCat("axis must be None, an int or a tuple of ints, got ", PyType(v), "."));
  }
  return v.get<int>();
}

QuantAxis GetAxis(const Json& v) {
  if (v.is_null()) return QuantAxis();
  if (v.is_number_integer()) return QuantAxis(v.get<int>());
  const Json* list = &v;
  if (v.is_object() && v.size() == 1 && v.contains("tuple")) list = &v["tuple"];
  if (!list->is_array()) {
    ThrowTypeError(
        absl::StrCat("axis must be None, an int or a tuple of ints, got ", PyType(v), "."));
  }
  std::vector<int> axes;
  for (const Json& a : *list) axes.push_back(GetAxisInt(a));
  return QuantAxis::Tuple(std::move(axes));
}

float AmaxNumber(const Json& v) {
  if (!v.is_number()) {
    ThrowTypeError(absl::StrCat("amax must be float, list or ndarray, not ", PyType(v)));
  }
  return v.get<float>();
}

// Nested lists -> row-major values and shape (a ragged list is refused, as numpy does).
void FlattenList(const Json& v, size_t depth, DescriptorAmax& out) {
  if (!v.is_array()) {
    if (depth != out.shape.size()) ThrowValueError("amax is a ragged nested list");
    out.values.push_back(AmaxNumber(v));
    return;
  }
  if (depth == out.shape.size()) {
    if (!out.values.empty()) ThrowValueError("amax is a ragged nested list");
    out.shape.push_back(static_cast<int64_t>(v.size()));
  } else if (depth > out.shape.size() || out.shape[depth] != static_cast<int64_t>(v.size())) {
    ThrowValueError("amax is a ragged nested list");
  }
  for (const Json& e : v) FlattenList(e, depth + 1, out);
}

DescriptorAmax GetAmax(const Json& v) {
  if (v.is_number_float()) return DescriptorAmax::Scalar(v.get<float>());
  if (v.is_array()) {
    DescriptorAmax amax;
    FlattenList(v, 0, amax);
    return amax;
  }
  if (v.is_object() && v.contains("shape") && v.contains("data")) {
    DescriptorAmax amax;
    for (const Json& d : v["shape"]) amax.shape.push_back(d.get<int64_t>());
    for (const Json& d : v["data"]) amax.values.push_back(AmaxNumber(d));
    return amax;
  }
  ThrowTypeError(absl::StrCat("amax must be float, list or ndarray, not ", PyType(v)));
}

}  // namespace

QuantDescriptor QuantDescriptorFromJson(const Json& kwargs) {
  if (!kwargs.is_object()) {
    ThrowTypeError(absl::StrCat("QuantDescriptor keyword arguments must be a JSON object, not ",
                                PyType(kwargs)));
  }
  QuantDescriptor::Options o;
  std::vector<std::string> unused;
  // In the reference's order of checks: num_bits, name, then the rest.
  if (kwargs.contains("num_bits")) {
    const Json& v = kwargs["num_bits"];
    // pytorch-quantization's FP8 E4M3: num_bits=(4, 3), exponent and mantissa bits.
    if (v.is_array() || (v.is_object() && v.contains("tuple"))) {
      const Json& bits = v.is_array() ? v : v["tuple"];
      if (bits != Json::array({4, 3})) {
        ThrowValueError(absl::StrCat("num_bits ", bits.dump(),
                                     ": the only (exponent, mantissa) form is (4, 3), FP8 E4M3"));
      }
      o.num_bits = 8;
      o.format = kernels::QuantFormat::kFp8E4M3;
    } else {
      if (!v.is_number_integer()) {
        ThrowTypeError(absl::StrCat("num_bits must be a positive integer, not ", PyType(v), "."));
      }
      o.num_bits = v.get<int>();
      if (o.num_bits < 0) {
        ThrowValueError(absl::StrCat("num_bits must be > 0, not ", o.num_bits, "."));
      }
    }
  }
  for (const auto& [key, v] : kwargs.items()) {
    if (key == "num_bits") continue;
    if (key == "name") {
      if (v.is_null()) continue;
      if (!v.is_string()) {
        ThrowTypeError(absl::StrCat("name must be a string or None, not ", PyType(v), "."));
      }
      o.name = v.get<std::string>();
    } else if (key == "fake_quant") {
      o.fake_quant = GetBool(v, "fake_quant");
    } else if (key == "axis") {
      o.axis = GetAxis(v);
    } else if (key == "amax") {
      if (!v.is_null()) o.amax = GetAmax(v);
    } else if (key == "learn_amax") {
      o.learn_amax = GetBool(v, "learn_amax");
    } else if (key == "scale_amax") {
      if (v.is_null()) continue;
      if (!v.is_number()) {
        ThrowTypeError(absl::StrCat("scale_amax must be a number, not ", PyType(v), "."));
      }
      o.scale_amax = v.get<double>();
    } else if (key == "calib_method") {
      if (!v.is_string()) {
        ThrowTypeError(absl::StrCat("calib_method must be a string, not ", PyType(v), "."));
      }
      o.calib_method = v.get<std::string>();
    } else if (key == "unsigned") {
      o.is_unsigned = GetBool(v, "unsigned");
    } else if (key == "narrow_range") {
      o.narrow_range = GetBool(v, "narrow_range");
    } else {
      unused.push_back(key);
    }
  }
  if (!unused.empty()) {
    std::string keys;
    for (const std::string& k : unused)
      absl::StrAppend(&keys, keys.empty() ? "" : ", ", "'", k, "'");
    ThrowTypeError(absl::StrCat("Unused keys: dict_keys([", keys, "])"));
  }
  return QuantDescriptor(std::move(o));
}

}  // namespace qcal::quant
