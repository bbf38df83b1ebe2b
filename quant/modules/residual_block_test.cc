// A residual block as pytorch-quantization's resnet.py writes it (QuantConv2d, a
// residual_quantizer on the shortcut, QuantMaxPool2d after the add), calibrated locally and on a
// real qcal-server (this build's, on a free port): the same names and the same amax both ways.
#include <ATen/TensorOperators.h>
#include <c10/util/Exception.h>
#include <torch/csrc/autograd/generated/variable_factories.h>
#include <torch/nn/functional/activation.h>
#include <torch/utils.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quant/modules/model_quantizers.h"
#include "quant/modules/quant_conv.h"
#include "quant/modules/quant_pooling.h"
#include "quant/modules/remote_model.h"
#include "quant/modules/residual_quantizer.h"
#include "quant/server_process_testing.h"

namespace qcal::quant {
namespace {

const QuantDescriptor kHistogram({.calib_method = "histogram"});

// [N, 3, 8, 8] -> relu(conv 3x3) + residual_quantizer(x) -> max pool 2 -> [N, 3, 4, 4].
struct BlockImpl : torch::nn::Module {
  BlockImpl()
      : conv(register_module("conv",
                             QuantConv2d(torch::nn::Conv2dOptions(3, 3, 3).padding(1),
                                         QuantMixinOptions{.quant_desc_input = kHistogram}))),
        residual_quantizer(register_residual_quantizer(*this, kHistogram)),
        pool(register_module("pool",
                             QuantMaxPool2d(torch::nn::MaxPool2dOptions(2),
                                            QuantInputOptions{.quant_desc_input = kHistogram}))) {}

  at::Tensor forward(const at::Tensor& x) {
    at::Tensor out = torch::nn::functional::relu(conv(x));
    out += residual_quantizer(x);
    return pool(out);
  }

  QuantConv2d conv;
  TensorQuantizer residual_quantizer;
  QuantMaxPool2d pool;
};
TORCH_MODULE(Block);

struct NetImpl : torch::nn::Module {
  NetImpl() : block(register_module("block", Block())) {}
  at::Tensor forward(const at::Tensor& x) { return block(x); }
  Block block;
};
TORCH_MODULE(Net);

std::vector<std::string> Names(const torch::nn::Module& model) {
  std::vector<std::string> names;
  for (const auto& [name, quantizer] : named_quantizers(model)) names.push_back(name);
  return names;
}

TEST(ResidualQuantizer, DefaultsToQuantConv2dsInputDescriptor) {
  torch::nn::Module block;
  const TensorQuantizer q = register_residual_quantizer(block);
  EXPECT_EQ(q->descriptor().str(), QuantConv2dImpl::default_quant_desc_input().str());
  EXPECT_EQ(Names(block), std::vector<std::string>({"residual_quantizer"}));
  EXPECT_THROW(register_residual_quantizer(block), c10::Error);  // the name is taken
}

TEST(ResidualQuantizer, SameAmaxLocallyAndOnTheServer) {
  test_support::ServerProcess server;
  ASSERT_FALSE(server.address().empty()) << "qcal-server did not start";
  auto client = Client::Create(server.address());
  ASSERT_TRUE(client.ok()) << client.status();
  // The local HistogramCalibrator has pytorch-quantization's (reference) histogram layout.
  auto session = RemoteSession::Create(std::move(*client), "residual_block",
                                       {.histogram_layout = v1::HISTOGRAM_LAYOUT_REFERENCE});

  torch::manual_seed(3);
  Net local, remote;
  {
    torch::NoGradGuard no_grad;
    const auto from = local->named_parameters();
    for (auto& p : remote->named_parameters()) p.value().copy_(from[p.key()]);
  }
  const std::vector<std::string> expected = {
      "block.conv._input_quantizer", "block.conv._weight_quantizer", "block.residual_quantizer",
      "block.pool._input_quantizer"};
  EXPECT_EQ(Names(*local), expected);
  EXPECT_EQ(use_remote_calibrators(*remote, session), 4);
  EXPECT_EQ(remote->block->residual_quantizer->calibrator()->str(),
            "RemoteCalibrator(model=residual_block quantizer=block.residual_quantizer "
            "calibrator=histogram)");

  enable_calibration(*local);
  enable_calibration(*remote);
  at::Tensor shortcut_max = torch::zeros({});
  for (int step = 0; step < 3; ++step) {
    const at::Tensor x = torch::randn({4, 3, 8, 8}) * (1.0 + step);
    shortcut_max = torch::maximum(shortcut_max, x.abs().max());
    EXPECT_TRUE(torch::equal(local(x), remote(x)));  // calibration does not quantize
  }
  disable_calibration(*local);
  disable_calibration(*remote);

  for (const CalibAmaxArgs& args :
       {CalibAmaxArgs{.method = "entropy"}, CalibAmaxArgs{.method = "mse"},
        CalibAmaxArgs{.method = "percentile", .percentile = 99.9},
        CalibAmaxArgs{.method = "max"}}) {
    SCOPED_TRACE(args.method);
    load_calib_amax(*local, args);
    load_calib_amax(*remote, args);
    const auto want = named_amax(*local);
    const auto got = named_amax(*remote);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].first, expected[i]);
      EXPECT_TRUE(torch::equal(got[i].second, want[i].second))
          << got[i].first << ": " << got[i].second << " vs " << want[i].second;
    }
  }
  // With "max" the shortcut's amax is max |x| over the batches, computed by hand.
  EXPECT_TRUE(torch::equal(*remote->block->residual_quantizer->amax(), shortcut_max))
      << *remote->block->residual_quantizer->amax() << " vs " << shortcut_max;
}

}  // namespace
}  // namespace qcal::quant
