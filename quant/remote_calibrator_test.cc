// RemoteCalibrator against a real qcal-server (the binary of this build, started on a free port):
// calibrating through the server gives the same amax as the local calibrators.
#include "quant/remote_calibrator.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/tensor.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/utils.h>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quant/server_process_testing.h"
#include "quant/tensor_quantizer.h"

namespace qcal::quant {
namespace {

class RemoteCalibratorTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new test_support::ServerProcess(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_FALSE(server_->address().empty()) << "qcal-server did not start";
    auto client = Client::Create(server_->address());
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  std::shared_ptr<RemoteSession> NewSession(const std::string& model,
                                            RemoteSession::Options options = {}) {
    return RemoteSession::Create(client_, model, options);
  }

  static test_support::ServerProcess* server_;
  std::shared_ptr<Client> client_;
};

test_support::ServerProcess* RemoteCalibratorTest::server_ = nullptr;

const QuantDescriptor kInputDesc({.calib_method = "histogram"});
const QuantDescriptor kWeightDesc = QUANT_DESC_8BIT_CONV2D_WEIGHT_PER_CHANNEL;

void StartCalibration(TensorQuantizer& q) {
  q->disable_quant();
  q->enable_calib();
}

void ExpectSameTensor(const at::Tensor& remote, const at::Tensor& local) {
  ASSERT_EQ(remote.sizes(), local.sizes());
  const at::Tensor r = remote.contiguous(), l = local.contiguous();
  for (int64_t i = 0; i < l.numel(); ++i) {
    EXPECT_EQ(r.data_ptr<float>()[i], l.data_ptr<float>()[i]) << "element " << i;
  }
}

TEST_F(RemoteCalibratorTest, SameAmaxAsTheLocalCalibrators) {
  // The local HistogramCalibrator is pytorch-quantization's: the reference layout.
  auto session = NewSession("same_amax", {.histogram_layout = v1::HISTOGRAM_LAYOUT_REFERENCE});
  TensorQuantizer local_input(kInputDesc), remote_input(kInputDesc);
  TensorQuantizer local_weight(kWeightDesc), remote_weight(kWeightDesc);
  UseRemoteCalibrator(*remote_input, session, "conv1._input_quantizer");
  UseRemoteCalibrator(*remote_weight, session, "conv1._weight_quantizer");
  EXPECT_EQ(remote_input->calibrator()->name(), "RemoteCalibrator");
  for (TensorQuantizer* q : {&local_input, &remote_input, &local_weight, &remote_weight}) {
    StartCalibration(*q);
  }
  torch::manual_seed(11);
  const at::Tensor weight = torch::randn({8, 3, 3, 3});
  for (int step = 0; step < 4; ++step) {
    // Activations whose range grows, so the histogram extends; some exact zeros (ReLU).
    const at::Tensor x = (torch::randn({16, 3, 12, 12}) * (1.0 + step)).relu();
    EXPECT_TRUE(remote_input(x).is_same(x));
    local_input(x);
    local_weight(weight * (1.0 + 0.1 * step));
    remote_weight(weight * (1.0 + 0.1 * step));
  }
  for (const CalibAmaxArgs& args :
       {CalibAmaxArgs{.method = "entropy"}, CalibAmaxArgs{.method = "mse"},
        CalibAmaxArgs{.method = "percentile", .percentile = 99.9},
        CalibAmaxArgs{.method = "entropy", .start_bin = 64, .stride = 2},
        CalibAmaxArgs{.method = "max"}}) {
    SCOPED_TRACE(args.method);
    local_input->load_calib_amax(args);
    remote_input->load_calib_amax(args);
    ExpectSameTensor(*remote_input->amax(), *local_input->amax());
  }
  local_weight->load_calib_amax();
  remote_weight->load_calib_amax();
  EXPECT_EQ(remote_weight->amax()->sizes(), c10::IntArrayRef({8, 1, 1, 1}));
  ExpectSameTensor(*remote_weight->amax(), *local_weight->amax());
  // A max quantizer reports its max whatever the method, locally and remotely.
  remote_weight->load_calib_amax({.method = "entropy"});
  ExpectSameTensor(*remote_weight->amax(), *local_weight->amax());
  EXPECT_EQ(remote_input->calibrator()->str(),
            "RemoteCalibrator(model=same_amax quantizer=conv1._input_quantizer "
            "calibrator=histogram)");
}

// An FP8 E4M3 descriptor (pytorch-quantization's num_bits=(4, 3)) is declared FP8 on the server,
// and every method gives the local calibrator's amax: both pass the format to the kernels'
// searches (SearchOptions::format), so entropy and mse agree whether or not they simulate E4M3.
TEST_F(RemoteCalibratorTest, Fp8DescriptorsAreDeclaredFp8AndGiveTheLocalAmax) {
  auto session = NewSession("fp8", {.histogram_layout = v1::HISTOGRAM_LAYOUT_REFERENCE});
  const QuantDescriptor fp8(
      {.calib_method = "histogram", .format = kernels::QuantFormat::kFp8E4M3});
  TensorQuantizer local(fp8), remote(fp8);
  UseRemoteCalibrator(*remote, session, "conv1._input_quantizer");
  StartCalibration(local);
  StartCalibration(remote);
  torch::manual_seed(5);
  for (int step = 0; step < 3; ++step) {
    const at::Tensor x = torch::randn({8, 3, 10, 10}) * (1.0 + step);
    local(x);
    remote(x);
  }
  for (const CalibAmaxArgs& args :
       {CalibAmaxArgs{.method = "entropy"}, CalibAmaxArgs{.method = "mse"},
        CalibAmaxArgs{.method = "percentile", .percentile = 99.9},
        CalibAmaxArgs{.method = "max"}}) {
    SCOPED_TRACE(args.method);
    local->load_calib_amax(args);
    remote->load_calib_amax(args);
    ExpectSameTensor(*remote->amax(), *local->amax());
  }
  const absl::StatusOr<v1::ModelInfo> info = client_->GetModel("fp8");
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->quantizers_size(), 1);
  EXPECT_EQ(info->quantizers(0).spec().format(), v1::QUANT_FORMAT_FP8_E4M3);
  EXPECT_EQ(info->quantizers(0).spec().num_bits(), 8);
}

// Options::aggregate counts on the trainer (CPU tensors here, by the kernels) and sends partial
// states: every amax equals raw streaming's bit for bit, whatever the dtype and send_every.
TEST_F(RemoteCalibratorTest, PreAggregationGivesTheAmaxOfStreaming) {
  for (const int64_t send_every : {0, 1, 3}) {
    SCOPED_TRACE(send_every);
    const std::string suffix = std::to_string(send_every);
    auto raw = NewSession("stream_raw_" + suffix);
    auto counted = NewSession("stream_counted_" + suffix,
                              {.aggregate = true, .aggregate_send_every = send_every});
    TensorQuantizer raw_input(kInputDesc), counted_input(kInputDesc);
    TensorQuantizer raw_weight(kWeightDesc), counted_weight(kWeightDesc);
    UseRemoteCalibrator(*raw_input, raw, "conv1._input_quantizer");
    UseRemoteCalibrator(*raw_weight, raw, "conv1._weight_quantizer");
    UseRemoteCalibrator(*counted_input, counted, "conv1._input_quantizer");
    UseRemoteCalibrator(*counted_weight, counted, "conv1._weight_quantizer");
    for (TensorQuantizer* q : {&raw_input, &counted_input, &raw_weight, &counted_weight}) {
      StartCalibration(*q);
    }
    torch::manual_seed(5);
    const at::Tensor weight = torch::randn({8, 3, 3, 3});
    const std::vector<at::ScalarType> dtypes = {at::kFloat, at::kHalf, at::kBFloat16, at::kDouble,
                                                at::kFloat};
    for (size_t step = 0; step < dtypes.size(); ++step) {
      at::Tensor x = (torch::randn({4, 3, 12, 12}) * (1.0 + 3.0 * step)).relu().to(dtypes[step]);
      x.view({-1})[step] = std::numeric_limits<float>::quiet_NaN();
      raw_input(x);
      counted_input(x);
      raw_weight(weight * (1.0 + 0.1 * step));
      counted_weight(weight * (1.0 + 0.1 * step));
    }
    for (const CalibAmaxArgs& args :
         {CalibAmaxArgs{.method = "entropy"}, CalibAmaxArgs{.method = "mse"},
          CalibAmaxArgs{.method = "percentile", .percentile = 99.9},
          CalibAmaxArgs{.method = "max"}}) {
      SCOPED_TRACE(args.method);
      raw_input->load_calib_amax(args);
      counted_input->load_calib_amax(args);
      ExpectSameTensor(*counted_input->amax(), *raw_input->amax());
    }
    raw_weight->load_calib_amax();
    counted_weight->load_calib_amax();
    ExpectSameTensor(*counted_weight->amax(), *raw_weight->amax());
    EXPECT_GT(counted->session().Stats().applied_partials, 0);
    EXPECT_EQ(raw->session().Stats().applied_partials, 0);
  }
}

TEST_F(RemoteCalibratorTest, NoDataYetAndNewDataAfterAnAmax) {
  auto session = NewSession("no_data_yet");
  TensorQuantizer q;
  UseRemoteCalibrator(*q, session, "fc._input_quantizer");
  EXPECT_THROW(q->load_calib_amax(), c10::Error);  // the reference's "Calibrator returned None"
  EXPECT_FALSE(q->amax().has_value());
  StartCalibration(q);
  q(at::tensor({1.0f, -2.0f}));
  q->load_calib_amax();
  EXPECT_EQ(q->amax()->item<float>(), 2.0f);
  q(at::tensor({-5.0f}));  // a record after an amax request: the next one sees it
  q->load_calib_amax();
  EXPECT_EQ(q->amax()->item<float>(), 5.0f);
}

TEST_F(RemoteCalibratorTest, Errors) {
  auto session = NewSession("errors");
  TensorQuantizer input(kInputDesc);
  UseRemoteCalibrator(*input, session, "a._input_quantizer");
  StartCalibration(input);
  input(at::tensor({1.0f, 2.0f}));
  // The model exists now: a quantizer declared later is refused.
  TensorQuantizer late;
  EXPECT_THROW(UseRemoteCalibrator(*late, session, "b._input_quantizer"), c10::Error);
  EXPECT_THROW(input->load_calib_amax(), c10::ValueError);  // a histogram needs a method
  EXPECT_THROW(input->calibrator()->reset(), c10::NotImplementedError);
  EXPECT_THROW(input->load_calib_amax({.method = "mse", .start_bin = 0}), c10::ValueError);
  EXPECT_THROW(input->load_calib_amax({.method = "percentile", .percentile = 101.0}),
               c10::ValueError);
  EXPECT_THROW(RemoteQuantizerSpec("w", QuantDescriptor({.axis = QuantAxis::Tuple({0, 1})})),
               c10::ValueError);
  EXPECT_THROW(RemoteQuantizerSpec("w", QuantDescriptor({.axis = 0, .calib_method = "histogram"})),
               c10::NotImplementedError);
  // The model name is taken: a second session fails unless it joins with the same quantizers.
  auto again = NewSession("errors");
  TensorQuantizer twin(kInputDesc);
  UseRemoteCalibrator(*twin, again, "a._input_quantizer");
  StartCalibration(twin);
  EXPECT_THROW(twin(at::tensor({3.0f})), c10::Error);
  auto joined = NewSession("errors", {.reuse_existing_model = true});
  UseRemoteCalibrator(*twin, joined, "a._input_quantizer");
  input->load_calib_amax({.method = "max"});
  EXPECT_EQ(input->amax()->item<float>(), 2.0f);
  twin(at::tensor({3.0f}));
  joined->Flush();  // the other trainer's batch is applied
  // The table computed above is stale now: the next amax sees both trainers' data.
  input->load_calib_amax({.method = "max"});
  EXPECT_EQ(input->amax()->item<float>(), 3.0f);
  auto mismatched = NewSession("errors", {.reuse_existing_model = true});
  TensorQuantizer other;  // a max calibrator where the model has a histogram
  UseRemoteCalibrator(*other, mismatched, "a._input_quantizer");
  StartCalibration(other);
  EXPECT_THROW(other(at::tensor({1.0f})), c10::Error);
}

TEST_F(RemoteCalibratorTest, UnreachableServer) {
  auto client = Client::Create("127.0.0.1:1");
  ASSERT_TRUE(client.ok());
  auto session = RemoteSession::Create(std::shared_ptr<Client>(std::move(*client)), "nowhere");
  TensorQuantizer q;
  UseRemoteCalibrator(*q, session, "x._input_quantizer");
  StartCalibration(q);
  EXPECT_THROW(q(at::tensor({1.0f})), c10::Error);
}

}  // namespace
}  // namespace qcal::quant
