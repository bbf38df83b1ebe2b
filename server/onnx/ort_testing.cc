#include "server/onnx/ort_testing.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

namespace qcal::server::testing {

std::vector<OrtOutputs> RunInOrt(const std::vector<OrtRun>& runs,
                                 const std::filesystem::path& dir) {
  nlohmann::json request = nlohmann::json::array();
  for (const OrtRun& run : runs) {
    nlohmann::json feeds = nlohmann::json::object();
    for (const auto& [name, t] : run.feeds) feeds[name] = {{"dims", t.dims}, {"data", t.data}};
    request.push_back(
        {{"model", run.model.string()}, {"optimization", run.optimization}, {"feeds", feeds}});
  }
  const std::filesystem::path in = dir / "runs.json", out = dir / "results.json";
  std::ofstream(in) << request.dump();
  const std::string source = QCAL_SOURCE_DIR;
  const std::string command = "NODE_PATH='" + source + "/third_party/node/node_modules' '" +
                              QCAL_NODE_EXECUTABLE + "' '" + source +
                              "/server/onnx/testdata/ort_run.js' '" + in.string() + "' '" +
                              out.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string log;
  char buffer[4096];
  while (pipe != nullptr && fgets(buffer, sizeof buffer, pipe) != nullptr) log += buffer;
  const int status = pipe != nullptr ? pclose(pipe) : -1;
  EXPECT_EQ(status, 0) << "onnxruntime-node failed (needs node and "
                          "third_party/node/node_modules from scripts/install-deps.sh):\n"
                       << command << "\n"
                       << log;
  std::vector<OrtOutputs> results;
  if (status != 0) return results;
  const nlohmann::json parsed = nlohmann::json::parse(std::ifstream(out));
  for (const auto& run : parsed) {
    OrtOutputs outputs;
    for (const auto& [name, t] : run.items()) {
      outputs[name] = {t.at("dims").get<std::vector<int64_t>>(),
                       t.at("data").get<std::vector<float>>()};
    }
    results.push_back(std::move(outputs));
  }
  EXPECT_EQ(results.size(), runs.size());
  return results;
}

}  // namespace qcal::server::testing
