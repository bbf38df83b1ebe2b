// ONNX upload and export on arbitrary bytes: the UploadOnnx stream (parse, check, bind the
// model's quantizers) and the ExportOnnx stream (the stored model, then the same bytes sent with
// the call) into QDQ ONNX, on a real model holding data for the quantizers that the seeds' torch
// exports bind (server/onnx/testdata).
//
// Input: one options byte (bit 0: the ONNX Runtime target instead of TensorRT's; bit 1: upload
// in two chunks; bit 2: the table's method percentile instead of max; bit 3: a tensor_map pair
// "conv1._input_quantizer" -> "input"), then a serialized ONNX ModelProto. Seeds: corpus/onnx.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "server/core/model_registry.h"
#include "server/core/onnx_export.h"
#include "server/core/onnx_upload.h"
#include "tests/fuzz/fuzz_model.h"

namespace qcal::server {
namespace {

// The modules of the seed models (server/onnx/testdata/make_models.py).
constexpr const char* kModules[] = {"conv", "conv1", "conv2", "conv3", "fc",          "fc1",
                                    "fc2",  "proj",  "up",    "head",  "classifier.1"};
constexpr int64_t kMaxOnnxBytes = int64_t{1} << 20;

void Run(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const uint8_t options = data[0];
  const std::string onnx(reinterpret_cast<const char*>(data + 1), size - 1);

  ModelRegistry registry;
  std::shared_ptr<Model> model = NewFuzzModel(kernels::HistogramLayout::kMergeable);
  if (!registry.Insert(model).ok()) std::abort();
  const std::vector<float> values = {0.5f, -1.0f, 2.0f, 0.25f, -3.0f, 1.5f, 0.0f, 4.0f};
  const std::vector<int64_t> shape = {2, 4};
  for (const char* module : kModules) {
    const std::string name = std::string(module) + "._input_quantizer";
    if (!model->Record(name, shape, values, 32).ok()) std::abort();
  }
  std::map<std::string, std::string> tensor_map;
  if (options & 8) tensor_map["conv1._input_quantizer"] = "input";

  OnnxUpload upload(registry, kMaxOnnxBytes);
  const size_t half = (options & 2) ? onnx.size() / 2 : onnx.size();
  bool ok =
      upload.Add({.model = "fuzz", .data = onnx.substr(0, half), .tensor_map = tensor_map}).ok();
  if (ok && half < onnx.size()) ok = upload.Add({.model = "", .data = onnx.substr(half)}).ok();
  if (ok) ok = Report("upload", upload.Finish().status());

  const QdqTarget target = (options & 1) ? QdqTarget::kOnnxRuntime : QdqTarget::kTensorRT;
  const AmaxRequest compute{.params = {.method = (options & 4) ? "percentile" : "max"}};
  if (ok) {
    // The stored model, with a table computed for the export.
    OnnxExport stored(registry, kMaxOnnxBytes);
    if (stored.Add({.model = "fuzz", .compute = compute, .target = target}).ok()) {
      Report("export stored", stored.Finish().status());
    }
  }
  // The bytes sent with the call, whether the upload took them or not.
  OnnxExport sent(registry, kMaxOnnxBytes);
  if (sent.Add({.model = "fuzz",
                .compute = compute,
                .target = target,
                .tensor_map = tensor_map,
                .data = onnx})
          .ok()) {
    Report("export sent", sent.Finish().status());
  }
  (void)model->Info();
}

}  // namespace
}  // namespace qcal::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qcal::server::Run(data, size);
  return 0;
}
