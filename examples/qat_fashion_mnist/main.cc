// qat_fashion_mnist: post-training quantization and quantization-aware training of a small CNN on
// Fashion-MNIST with quant/ (pytorch-quantization's API on LibTorch), calibrated locally or on a
// qcal-server. See README.md next to this file.
//
// clang-format off
//   qat_fashion_mnist                                   # float, PTQ by method, QAT; local calibration
//   qat_fashion_mnist --server 127.0.0.1:50051          # calibration streamed to a qcal-server
//   qat_fashion_mnist --spawn-server build/qcal-server --compare-remote --quick
// clang-format on
#include <torch/serialize.h>
#include <torch/utils.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "examples/qat_fashion_mnist/fashion_cnn.h"
#include "examples/qat_fashion_mnist/fashion_mnist.h"
#include "examples/qat_fashion_mnist/server_process.h"
#include "examples/qat_fashion_mnist/training.h"
#include "nlohmann/json.hpp"
#include "qcal/client.h"
#include "quant/modules/model_quantizers.h"
#include "quant/modules/remote_model.h"
#include "quant/remote_session.h"

namespace qcal::examples {
namespace {

using AmaxTable = std::vector<std::pair<std::string, at::Tensor>>;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string data_dir = kDebianFashionMnistDir;
  std::string out_dir = "out/qat_fashion_mnist";
  int epochs = 3;
  int64_t batch_size = 64;
  double lr = 0.02;
  int64_t calib_images = 1024;
  int64_t train_limit = 0;  // 0: all 60,000
  int64_t test_limit = 0;   // 0: all 10,000
  double qat_fraction = 0.1;
  int threads = 2;
  uint64_t seed = 1;
  bool quick = false;
  std::string server;
  std::string spawn_server;
  std::string model = "qat_fashion_mnist";
  bool compare_remote = false;
  std::string sensitivity;
};

// The four PTQ methods and their compute_amax arguments (percentile 99.99, the reference's).
const std::vector<std::pair<std::string, quant::CalibAmaxArgs>>& Methods() {
  static const auto* methods = new std::vector<std::pair<std::string, quant::CalibAmaxArgs>>{
      {"max", {.method = "max"}},
      {"entropy", {.method = "entropy"}},
      {"mse", {.method = "mse"}},
      {"percentile", {.method = "percentile", .percentile = 99.99}},
  };
  return *methods;
}

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// Collects calibration data in the quantizers' calibrators (local, or remote after
// use_remote_calibrators) and returns every quantizer's amax for each method.
std::map<std::string, AmaxTable> CalibrateTables(FashionCnn& model, const Dataset& train,
                                                 const Config& config) {
  quant::enable_calibration(*model);
  RunCalibrationBatches(model, train, config.calib_images, config.batch_size);
  quant::disable_calibration(*model);
  std::map<std::string, AmaxTable> tables;
  for (const auto& [method, args] : Methods()) {
    quant::load_calib_amax(*model, args);
    tables[method] = quant::named_amax(*model);
  }
  return tables;
}

void ApplyTable(FashionCnn& model, const AmaxTable& table) {
  std::map<std::string, at::Tensor> by_name(table.begin(), table.end());
  for (auto& [name, quantizer] : quant::named_quantizers(*model)) {
    if (auto it = by_name.find(name); it != by_name.end()) quantizer->set_amax(it->second);
  }
}

// max |local - remote| over every quantizer; infinity when the tables name different quantizers
// or shapes differ.
double MaxAbsDiff(const AmaxTable& local, const AmaxTable& remote) {
  if (local.size() != remote.size()) return INFINITY;
  double diff = 0;
  for (size_t i = 0; i < local.size(); ++i) {
    if (local[i].first != remote[i].first || local[i].second.sizes() != remote[i].second.sizes()) {
      return INFINITY;
    }
    diff = std::max(diff, (local[i].second - remote[i].second).abs().max().item<double>());
  }
  return diff;
}

std::shared_ptr<quant::RemoteSession> ConnectRemote(const std::string& address,
                                                    const std::string& model) {
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(address);
  if (!client.ok()) throw std::runtime_error(client.status().ToString());
  std::shared_ptr<Client> shared = std::move(*client);
  // Collected data must be this run's only: refuse a model that already exists there.
  if (shared->GetModel(model).ok()) {
    throw std::runtime_error(absl::StrFormat(
        "model %s already exists on the qcal-server at %s: delete it or pass --model NAME", model,
        address));
  }
  // The local HistogramCalibrators have pytorch-quantization's (reference) layout, and
  // --compare-remote checks the two tables bit for bit.
  return quant::RemoteSession::Create(
      shared, model, {.histogram_layout = v1::HISTOGRAM_LAYOUT_REFERENCE});
}

std::string CheckpointPath(const Config& config, int64_t train_size) {
  return absl::StrFormat("%s/float_%s_in01_n%d_e%d_b%d_lr%g_s%d.pt", config.out_dir,
                         FashionCnnImpl::Architecture(), train_size, config.epochs,
                         config.batch_size, config.lr, config.seed);
}

int Run(const Config& config) {
  const auto start = Clock::now();
  torch::set_num_threads(config.threads);
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  std::filesystem::create_directories(config.out_dir);

  absl::StatusOr<Dataset> train = LoadFashionMnist(config.data_dir, true, config.train_limit);
  absl::StatusOr<Dataset> test = LoadFashionMnist(config.data_dir, false, config.test_limit);
  if (!train.ok() || !test.ok()) {
    std::cerr << "error: " << (train.ok() ? test.status() : train.status()) << "\n";
    return 1;
  }
  std::printf("Fashion-MNIST: %lld training, %lld test images from %s\n",
              static_cast<long long>(train->size()), static_cast<long long>(test->size()),
              config.data_dir.c_str());

  // Remote calibration is set up first so that a bad server fails before minutes of training.
  std::unique_ptr<ServerProcess> spawned;
  std::string server = config.server;
  if (!config.spawn_server.empty()) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> started =
        ServerProcess::Start(config.spawn_server);
    if (!started.ok()) {
      std::cerr << "error: " << started.status() << "\n";
      return 1;
    }
    spawned = std::move(*started);
    server = spawned->address();
    std::printf("started qcal-server at %s\n", server.c_str());
  }
  std::shared_ptr<quant::RemoteSession> session;
  if (!server.empty()) session = ConnectRemote(server, config.model);

  UseHistogramInputCalibration();
  FashionCnn model;
  nlohmann::json seconds;

  // 1. Float training (quantizers disabled), cached by configuration.
  const int64_t steps_per_epoch = train->size() / config.batch_size;
  const int64_t float_steps = steps_per_epoch * config.epochs;
  const std::string checkpoint = CheckpointPath(config, train->size());
  quant::disable_quantizers(*model);
  auto phase = Clock::now();
  if (std::filesystem::exists(checkpoint)) {
    torch::load(model, checkpoint);
    std::printf("float model loaded from %s\n", checkpoint.c_str());
  } else {
    Train(model, *train,
          {.steps = float_steps,
           .batch_size = config.batch_size,
           .lr = config.lr,
           .final_lr = config.lr,
           .seed = config.seed,
           .label = "float"});
    torch::save(model, checkpoint);
    std::printf("float model saved to %s\n", checkpoint.c_str());
  }
  seconds["float_train"] = Seconds(phase);
  const double float_top1 = Top1(model, *test);
  std::printf("float top-1 %.4f\n", float_top1);
  quant::enable_quantizers(*model);

  // 2. Calibration: histogram inputs, max weights, on the first calib_images training images.
  phase = Clock::now();
  std::map<std::string, AmaxTable> tables;
  nlohmann::json remote_diff;
  bool remote_matches = true;
  if (session == nullptr || config.compare_remote) {
    tables = CalibrateTables(model, *train, config);
    std::printf("calibrated locally on %lld images\n",
                static_cast<long long>(std::min(config.calib_images, train->size())));
  }
  if (session != nullptr) {
    quant::use_remote_calibrators(*model, session);
    std::map<std::string, AmaxTable> remote = CalibrateTables(model, *train, config);
    std::printf("calibrated on the qcal-server at %s (model %s)\n", server.c_str(),
                config.model.c_str());
    if (config.compare_remote) {
      for (const auto& [method, args] : Methods()) {
        const double diff = MaxAbsDiff(tables[method], remote[method]);
        remote_diff[method] = diff;
        remote_matches = remote_matches && diff == 0;
        std::printf("  %-10s local vs remote amax: %zu quantizers, max |diff| %g\n", method.c_str(),
                    remote[method].size(), diff);
      }
    }
    tables = std::move(remote);
  }
  seconds["calibration"] = Seconds(phase);

  // 3. PTQ top-1 by method.
  phase = Clock::now();
  nlohmann::json ptq;
  std::string best;
  for (const auto& [method, args] : Methods()) {
    ApplyTable(model, tables[method]);
    ptq[method] = Top1(model, *test);
    std::printf("PTQ %-10s top-1 %.4f\n", method.c_str(), ptq[method].get<double>());
    if (best.empty() || ptq[method].get<double>() > ptq[best].get<double>()) best = method;
  }
  seconds["ptq_eval"] = Seconds(phase);
  nlohmann::json sensitivity;
  if (!config.sensitivity.empty()) {
    // Which quantizer costs `sensitivity` its accuracy: that method's table with one quantizer's
    // amax taken from max at a time.
    for (const auto& [name, amax] : tables["max"]) {
      AmaxTable mixed = tables[config.sensitivity];
      for (auto& [mixed_name, mixed_amax] : mixed) {
        if (mixed_name == name) mixed_amax = amax;
      }
      ApplyTable(model, mixed);
      sensitivity[name] = Top1(model, *test);
      std::printf("%s, %s from max: top-1 %.4f\n", config.sensitivity.c_str(), name.c_str(),
                  sensitivity[name].get<double>());
    }
  }
  ApplyTable(model, tables[best]);
  std::printf("quantizers with the best calibration (%s):\n", best.c_str());
  quant::print_quantizers(*model, std::cout);

  // 4. QAT from the best calibration: 10% of the schedule, 1% of the learning rate, cosine
  // annealing to 1% of that (the reference's recipe).
  phase = Clock::now();
  const double qat_lr = config.lr * 0.01;
  Train(model, *train,
        {.steps = std::max<int64_t>(1, static_cast<int64_t>(float_steps * config.qat_fraction)),
         .batch_size = config.batch_size,
         .lr = qat_lr,
         .final_lr = qat_lr * 0.01,
         .cosine = true,
         .seed = config.seed + 1,
         .label = "qat"});
  seconds["qat_train"] = Seconds(phase);
  const double qat_top1 = Top1(model, *test);
  torch::save(model, config.out_dir + "/qat.pt");

  nlohmann::json results = {{"float_top1", float_top1},
                            {"ptq", ptq},
                            {"qat_top1", qat_top1},
                            {"qat_from", best},
                            {"calibration", session != nullptr ? "remote" : "local"},
                            {"train_images", train->size()},
                            {"test_images", test->size()},
                            {"calib_images", std::min(config.calib_images, train->size())},
                            {"seconds", seconds}};
  if (config.compare_remote) results["remote_max_abs_diff"] = remote_diff;
  if (!sensitivity.is_null()) results["sensitivity"] = {{config.sensitivity, sensitivity}};
  results["seconds"]["total"] = Seconds(start);
  const std::string results_path = config.out_dir + "/results.json";
  std::ofstream(results_path) << results.dump(2) << "\n";

  std::printf("\nFashion-MNIST top-1 on %lld test images\n", static_cast<long long>(test->size()));
  std::printf("  float                %.4f\n", float_top1);
  for (const auto& [method, args] : Methods()) {
    std::printf("  PTQ %-16s %.4f\n", method.c_str(), ptq[method].get<double>());
  }
  std::printf("  QAT (from %s)%*s %.4f\n", best.c_str(), static_cast<int>(10 - best.size()), "",
              qat_top1);
  std::printf("wrote %s (%.0f s)\n", results_path.c_str(), Seconds(start));
  if (!remote_matches) {
    std::cerr << "error: local and remote calibration gave different amax\n";
    return 3;
  }
  return 0;
}

}  // namespace
}  // namespace qcal::examples

int main(int argc, char** argv) {
  qcal::examples::Config config;
  CLI::App app{"Fashion-MNIST: float training, PTQ by calibration method and QAT with quant/"};
  app.add_option("--data", config.data_dir, "folder of the *-ubyte.gz files")
      ->capture_default_str();
  app.add_option("--out", config.out_dir, "results.json, float checkpoints, qat.pt")
      ->capture_default_str();
  app.add_option("--epochs", config.epochs, "float training epochs")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-size", config.batch_size)
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--lr", config.lr, "float learning rate (SGD, momentum 0.9)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--calib-images", config.calib_images, "training images to calibrate on")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--qat-fraction", config.qat_fraction, "QAT steps as a fraction of float's")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--train-images", config.train_limit, "use the first N training images (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--test-images", config.test_limit, "use the first N test images (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads", config.threads)->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seed", config.seed)->capture_default_str();
  app.add_flag("--quick", config.quick,
               "small run for tests: 4096 training images, 1 epoch, 256 calibration images, "
               "2000 test images");
  auto* server =
      app.add_option("--server", config.server, "calibrate on the qcal-server HOST:PORT");
  app.add_option("--spawn-server", config.spawn_server,
                 "start this qcal-server binary on a free port and calibrate on it")
      ->excludes(server);
  app.add_option("--model", config.model, "model name on the qcal-server")->capture_default_str();
  app.add_flag("--compare-remote", config.compare_remote,
               "calibrate locally and remotely, print max |diff| of the amax tables, exit 3 if "
               "they differ");
  app.add_option("--sensitivity", config.sensitivity,
                 "after PTQ, evaluate METHOD's table with each quantizer's amax from max in turn")
      ->check(CLI::IsMember({"entropy", "mse", "percentile"}));
  CLI11_PARSE(app, argc, argv);
  if (config.compare_remote && config.server.empty() && config.spawn_server.empty()) {
    std::cerr << "error: --compare-remote needs --server or --spawn-server\n";
    return 2;
  }
  if (config.quick) {
    config.epochs = 1;
    if (config.train_limit == 0) config.train_limit = 4096;
    if (config.test_limit == 0) config.test_limit = 2000;
    config.calib_images = std::min<int64_t>(config.calib_images, 256);
  }
  try {
    return qcal::examples::Run(config);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
