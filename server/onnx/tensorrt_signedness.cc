#include "server/onnx/tensorrt_signedness.h"

#include "absl/strings/str_cat.h"

namespace qcal::server {

bool WrittenUnsigned(const std::string& quantizer, bool is_unsigned, QdqTarget target,
                     std::set<std::string>* warned, std::vector<std::string>* warnings) {
  if (!is_unsigned || target != QdqTarget::kTensorRT) return is_unsigned;
  if (warned->insert(quantizer).second) {
    warnings->push_back(absl::StrCat(
        "quantizer '", quantizer,
        "' is unsigned; TensorRT's INT8 is signed, so it is written as signed INT8 (scale "
        "amax / 127, zero point int8 0); export with target onnxruntime to keep uint8"));
  }
  return false;
}

}  // namespace qcal::server
