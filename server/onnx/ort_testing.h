// ONNX Runtime for the ORT tests: runs models in onnxruntime-node (testdata/ort_run.js, one node
// process for a list of runs), from third_party/node as scripts/install-deps.sh installs it.
// The test target defines QCAL_SOURCE_DIR (every qcal test) and QCAL_NODE_EXECUTABLE.
//
//   std::vector<OrtOutputs> out = RunInOrt({{model_path, "disabled", {{"input", x}}}}, dir);
#ifndef QCAL_SERVER_ONNX_ORT_TESTING_H_
#define QCAL_SERVER_ONNX_ORT_TESTING_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qcal::server::testing {

// A float32 tensor, row-major.
struct OrtTensor {
  std::vector<int64_t> dims;
  std::vector<float> data;
};
using OrtOutputs = std::map<std::string, OrtTensor>;

struct OrtRun {
  std::filesystem::path model;
  // ORT's graph optimization level: "disabled", "basic", "extended" or "all".
  std::string optimization = "disabled";
  std::map<std::string, OrtTensor> feeds;
};

// Each run's outputs by name, in the order of `runs`; writes runs.json and results.json into
// `dir`. When node fails (a model that does not load or run, node or onnxruntime-node missing),
// that is a gtest failure carrying its output, and the result is empty.
std::vector<OrtOutputs> RunInOrt(const std::vector<OrtRun>& runs, const std::filesystem::path& dir);

}  // namespace qcal::server::testing

#endif  // QCAL_SERVER_ONNX_ORT_TESTING_H_
