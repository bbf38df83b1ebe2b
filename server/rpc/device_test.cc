// --device handling (server/device/device.h), the backend's path into models and quantizers, and
// the device's /metrics series. It starts the real server, so it sits here, beside qcal_server.h.
// The GPU itself is exercised by kernels/cuda's tests; here a machine without a GPU (CI) checks the
// choices and the refusal, and fake backends stand in for a GPU.
#include "server/device/device.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "prometheus/text_serializer.h"
#include "server/core/calibration_core.h"
#include "server/core/metrics.h"
#include "server/core/model.h"
#include "server/device/cpu_calibrator.h"
#include "server/rpc/qcal_server.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kNoGpu[] = "no CUDA device: CUDA driver version is insufficient for CUDA runtime";

CudaBackendFactory FailingCuda() {
  return []() -> absl::StatusOr<std::shared_ptr<const CalibratorBackend>> {
    return absl::UnavailableError(kNoGpu);
  };
}

// A stand-in GPU: CPU calibrators, counted, with device memory that tests set.
class FakeGpu : public CalibratorBackend {
 public:
  std::string device() const override { return "cuda"; }
  std::string device_name() const override { return "Fake GPU"; }
  std::optional<DeviceMemory> Memory() const override {
    return DeviceMemory{.allocated = allocated.load(), .free = 1000, .total = 4096};
  }
  absl::StatusOr<std::unique_ptr<Calibrator>> Create(const QuantizerSpec& spec) const override {
    ++created;
    return CpuBackend()->Create(spec);
  }

  mutable std::atomic<int> created{0};
  std::atomic<int64_t> allocated{7};
};

CudaBackendFactory WorkingCuda(std::shared_ptr<const CalibratorBackend> gpu) {
  return [gpu]() -> absl::StatusOr<std::shared_ptr<const CalibratorBackend>> { return gpu; };
}

TEST(SelectDevice, CpuIsTheCpu) {
  const auto backend = SelectDevice("cpu", FailingCuda());
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->device(), "cpu");
  EXPECT_EQ((*backend)->device_name(), "cpu");
  EXPECT_FALSE((*backend)->Memory().has_value());
}

TEST(SelectDevice, AutoFallsBackToTheCpuWithoutAGpu) {
  const auto backend = SelectDevice("auto", FailingCuda());
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->device(), "cpu");
}

// The fallback is how --device auto works on a CPU machine, not an error: the log line says so.
TEST(SelectDevice, AutoFallbackIsSaidPlainly) {
  EXPECT_EQ(AutoCpuFallbackMessage(absl::UnavailableError(kNoGpu)),
            "running on the CPU (--device auto: no usable CUDA device: CUDA driver version is "
            "insufficient for CUDA runtime)");
  EXPECT_EQ(AutoCpuFallbackMessage(absl::FailedPreconditionError(
                "no CUDA device: qcal-server was built without CUDA support")),
            "running on the CPU (--device auto: no usable CUDA device: qcal-server was built "
            "without CUDA support)");
  EXPECT_EQ(AutoCpuFallbackMessage(absl::InternalError("driver crashed")),
            "running on the CPU (--device auto: no usable CUDA device: driver crashed)");
}

TEST(SelectDevice, AutoTakesTheGpuWhenThereIsOne) {
  const auto gpu = std::make_shared<FakeGpu>();
  const auto backend = SelectDevice("auto", WorkingCuda(gpu));
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ(backend->get(), gpu.get());
  EXPECT_EQ(SelectDevice("cpu", WorkingCuda(gpu)).value()->device(), "cpu");
}

TEST(SelectDevice, CudaWithoutAGpuIsRefusedWithTheReason) {
  const auto backend = SelectDevice("cuda", FailingCuda());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(backend.status().message(), kNoGpu);
}

TEST(SelectDevice, RefusesOtherNames) {
  for (const char* name : {"gpu", "CUDA", "", "cuda:0"}) {
    const auto backend = SelectDevice(name, FailingCuda());
    EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(backend.status().message()), HasSubstr("auto, cpu, cuda")) << name;
  }
}

// The real factory of this build, on this machine: without a usable GPU (CI, or a build without
// CUDA) --device cuda names the reason and auto runs on the CPU; with one, both take it.
TEST(SelectDevice, ThisMachine) {
  const auto gpu = BuiltInCudaBackend()();
  const auto cuda = SelectDevice("cuda");
  const auto automatic = SelectDevice("auto");
  ASSERT_TRUE(automatic.ok()) << automatic.status();
  if (!gpu.ok()) {
    EXPECT_THAT(std::string(gpu.status().message()), StartsWith("no CUDA device: "));
    EXPECT_EQ(cuda.status(), gpu.status());
    EXPECT_EQ((*automatic)->device(), "cpu");
  } else {
    ASSERT_TRUE(cuda.ok()) << cuda.status();
    EXPECT_EQ((*cuda)->device(), "cuda");
    EXPECT_EQ((*automatic)->device(), "cuda");
  }
}

TEST(QcalServerDevice, StartsOnTheChosenDeviceOrRefuses) {
  const auto gpu = BuiltInCudaBackend()();
  const auto automatic = QcalServer::Start({.listen = "127.0.0.1:0", .device = "auto"});
  ASSERT_TRUE(automatic.ok()) << automatic.status();
  EXPECT_EQ((*automatic)->device().device(), gpu.ok() ? "cuda" : "cpu");
  const auto cpu = QcalServer::Start({.listen = "127.0.0.1:0", .device = "cpu"});
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ((*cpu)->device().device(), "cpu");
  EXPECT_EQ(QcalServer::Start({.listen = "127.0.0.1:0", .device = "tpu"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  if (!gpu.ok()) {
    const auto cuda = QcalServer::Start({.listen = "127.0.0.1:0", .device = "cuda"});
    EXPECT_FALSE(cuda.ok());
    EXPECT_THAT(std::string(cuda.status().message()), StartsWith("no CUDA device: "));
  }
}

TEST(DeviceBackend, ReachesEveryQuantizerThroughTheCore) {
  const auto gpu = std::make_shared<FakeGpu>();
  Metrics metrics;
  CalibrationCore core({.backend = gpu}, metrics);
  ModelConfig config{.name = "net"};
  QuantizerSpec declared = DefaultInputSpec();
  declared.name = "fc._input_quantizer";
  config.quantizers.push_back(declared);
  ASSERT_TRUE(core.CreateModel(config).ok());
  EXPECT_EQ(gpu->created, 1);
  auto model = Model::Create({.name = "direct", .backend = gpu});
  ASSERT_TRUE(model.ok());
  const std::vector<float> values = {1.0f, -3.0f, 2.0f, 0.5f};
  const std::vector<int64_t> shape = {2, 2};
  ASSERT_TRUE((*model)->Record("conv1._weight_quantizer", shape, values, 16).ok());
  ASSERT_TRUE((*model)->Record("conv1._weight_quantizer", shape, values, 16).ok());
  EXPECT_EQ(gpu->created, 2);  // one more quantizer, created once
  const auto table = (*model)->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->table.quantizers.at("conv1._weight_quantizer").amax,
            (std::vector<float>{3.0f, 2.0f}));
  // Without a backend a model's calibrators are the CPU's.
  auto plain = Model::Create({.name = "plain"});
  ASSERT_TRUE(plain.ok());
  ASSERT_TRUE((*plain)->Record("x._input_quantizer", shape, values, 16).ok());
  EXPECT_EQ(gpu->created, 2);
}

std::string Scrape(const Metrics& metrics) {
  return prometheus::TextSerializer().Serialize(metrics.registry()->Collect());
}

TEST(DeviceMetrics, CpuReportsItsNameAndNoDeviceMemory) {
  Metrics metrics;
  metrics.SetDevice(CpuBackend());
  const std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("qcal_device_info{device=\"cpu\",name=\"cpu\"} 1\n"));
  EXPECT_THAT(text, Not(HasSubstr("qcal_device_memory_bytes{")));
}

TEST(DeviceMetrics, GpuMemoryIsReadAtEachScrape) {
  const auto gpu = std::make_shared<FakeGpu>();
  Metrics metrics;
  metrics.SetDevice(gpu);
  std::string text = Scrape(metrics);
  EXPECT_THAT(text, HasSubstr("qcal_device_info{device=\"cuda\",name=\"Fake GPU\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("qcal_device_memory_bytes{device=\"cuda\",kind=\"allocated\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("qcal_device_memory_bytes{device=\"cuda\",kind=\"free\"} 1000\n"));
  EXPECT_THAT(text, HasSubstr("qcal_device_memory_bytes{device=\"cuda\",kind=\"total\"} 4096\n"));
  gpu->allocated = 12345;
  text = Scrape(metrics);
  EXPECT_THAT(text,
              HasSubstr("qcal_device_memory_bytes{device=\"cuda\",kind=\"allocated\"} 12345\n"));
}

}  // namespace
}  // namespace qcal::server
