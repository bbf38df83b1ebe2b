// FP8 E4M3 exports (fp8_qdq.h, opset 19) run by ONNX Runtime (onnxruntime-node, CPU, graph
// optimisation off), the oracle for the fake quant: every FP8 pair's DequantizeLinear output must
// equal, bit for bit, E4M3 fake quant computed here from the pair's input and exported scale
// (x / scale rounded to the nearest E4M3 value, ties to even, saturated to +-448, times scale;
// ONNX's QuantizeLinear-19 with saturate = 1). INT8 pairs in the same model are held to ONNX's
// int8 rule the same way. The reference is this file's own (RoundE4M3), independent of kernels/.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "server/onnx/onnx_model.h"
#include "server/onnx/ort_testing.h"
#include "server/onnx/qdq_export.h"
#include "server/onnx/testing.h"

namespace qcal::server {
namespace {

using testing::Initializer;
using testing::IntAttr;
using testing::LoadModel;
using testing::Producer;
using testing::Values;

using Tensor = testing::OrtTensor;
using Outputs = testing::OrtOutputs;

// The E4M3FN value nearest to v, ties to even, saturating: |v| >= 448 gives +-448 (the largest
// finite value; E4M3FN has no infinity). Quantum: 2^(e - 3) for normal values 2^e <= |v| <
// 2^(e + 1), e >= -6; 2^-9 for subnormals.
float RoundE4M3(float v) {
  if (std::isnan(v)) return v;
  const float a = std::abs(v);
  if (a >= 448.0f) return std::copysign(448.0f, v);
  int e = 0;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  const float quantum = std::ldexp(1.0f, std::max(e - 1, -6) - 3);
  // a / quantum is exact (a power of two); nearbyint rounds half to even.
  const float r = std::nearbyint(a / quantum) * quantum;
  return std::copysign(std::min(r, 448.0f), v);
}

float FakeQuantFp8(float x, float scale) { return RoundE4M3(x / scale) * scale; }

float FakeQuantInt8(float x, float scale) {
  return std::clamp(std::nearbyint(x / scale), -128.0f, 127.0f) * scale;
}

TEST(RoundE4M3Test, KnownValues) {
  EXPECT_EQ(RoundE4M3(1.0625f), 1.0f);   // tie between 1.0 (even) and 1.125
  EXPECT_EQ(RoundE4M3(1.1875f), 1.25f);  // tie between 1.125 and 1.25 (even)
  EXPECT_EQ(RoundE4M3(17.0f), 16.0f);    // quantum 2 at [16, 32)
  EXPECT_EQ(RoundE4M3(19.0f), 20.0f);
  EXPECT_EQ(RoundE4M3(0.0029296875f), 0.00390625f);    // 1.5 * 2^-9, subnormal tie -> 2^-8
  EXPECT_EQ(RoundE4M3(0.0009765625f), 0.0f);           // 2^-10, tie -> 0
  EXPECT_EQ(RoundE4M3(0.00146484375f), 0.001953125f);  // 0.75 * 2^-9 -> 2^-9
  EXPECT_EQ(RoundE4M3(440.0f), 448.0f);
  EXPECT_EQ(RoundE4M3(-1e6f), -448.0f);
  EXPECT_EQ(RoundE4M3(0.015625f), 0.015625f);  // 2^-6, smallest normal
  EXPECT_EQ(RoundE4M3(240.0f), 240.0f);
  EXPECT_EQ(RoundE4M3(250.0f), 256.0f);  // quantum 32 at [256, 448]: 250 -> 256 (quantum 16 below)
}

class Fp8OrtTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("qcal_fp8_ort_" + std::to_string(getpid()) + "_" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs `model` once in onnxruntime-node (testdata/ort_run.js) at graph optimisation level
  // `optimization` ("disabled", "basic", "extended", "all").
  Outputs Run(const onnx::ModelProto& model, const std::map<std::string, Tensor>& feeds,
              const std::string& optimization = "disabled") {
    const std::filesystem::path path = dir_ / "model.onnx";
    {
      std::ofstream out(path, std::ios::binary);
      EXPECT_TRUE(model.SerializeToOstream(&out));
    }
    const std::vector<Outputs> out = testing::RunInOrt({{path, optimization, feeds}}, dir_);
    return out.empty() ? Outputs{} : out.front();
  }

  std::filesystem::path dir_;
};

// One exported Q -> DQ pair and what ORT must give for it.
struct ExportedPair {
  std::string source;  // what Q reads
  std::string dq_out;
  std::vector<float> scale;
  int axis = -1;
  bool fp8 = false;
};

std::vector<ExportedPair> Pairs(const onnx::GraphProto& g) {
  std::vector<ExportedPair> pairs;
  for (const onnx::NodeProto& dq : g.node()) {
    if (dq.op_type() != "DequantizeLinear") continue;
    const onnx::NodeProto* q = Producer(g, dq.input(0));
    const onnx::TensorProto* zp = Initializer(g, dq.input(2));
    if (q == nullptr || zp == nullptr) {
      ADD_FAILURE() << dq.name();
      continue;
    }
    pairs.push_back({.source = q->input(0),
                     .dq_out = dq.output(0),
                     .scale = Values(*Initializer(g, dq.input(1))),
                     .axis = static_cast<int>(IntAttr(dq, "axis", -1)),
                     .fp8 = zp->data_type() == 17});
  }
  return pairs;
}

void AddFloatOutput(onnx::GraphProto* g, const std::string& name) {
  for (const auto& o : g->output()) {
    if (o.name() == name) return;
  }
  onnx::ValueInfoProto* v = g->add_output();
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
}

// x of 64 values: E4M3 ties, subnormals, saturation (in units of `scale`), then random.
Tensor CraftedInput(float scale) {
  Tensor t{{1, 1, 8, 8}, {}};
  for (float v :
       {0.0f,          1.0625f,       -1.0625f,       1.1875f,   17.0f,         19.0f,  -19.0f,
        0.0029296875f, 0.0009765625f, 0.00146484375f, 440.0f,    448.0f,        460.0f, 464.0f,
        1000.0f,       -1000.0f,      250.0f,         0.015625f, 0.0146484375f, 3.3f}) {
    t.data.push_back(v * scale);
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> log2(-12.0f, 9.5f);
  std::bernoulli_distribution negative(0.5);
  while (t.data.size() < 64) {
    const float v = std::exp2(log2(rng)) * scale;
    t.data.push_back(negative(rng) ? -v : v);
  }
  return t;
}

// cnn_bn.onnx with conv1 (scale 0.5: ties exact), conv2 (amax below its range: saturates) and fc1
// FP8, conv3 and fc2 INT8; every pair's source and DQ output compared with the reference.
TEST_F(Fp8OrtTest, EveryPairMatchesTheE4M3ReferenceBitForBit) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  AmaxTable table{.model = "fp8", .method = "max", .quantizers = {}};
  for (const auto& [module, amax, format] :
       std::vector<std::tuple<std::string, float, kernels::QuantFormat>>{
           {"conv1", 224.0f, kernels::QuantFormat::kFp8E4M3},
           {"conv2", 0.05f, kernels::QuantFormat::kFp8E4M3},
           {"conv3", 0.3f, kernels::QuantFormat::kInt},
           {"fc1", 0.7f, kernels::QuantFormat::kFp8E4M3},
           {"fc2", 0.6f, kernels::QuantFormat::kInt}}) {
    const std::string name = module + "._input_quantizer";
    table.quantizers[name] = {.name = name, .amax = {amax}, .method = "max", .format = format};
  }
  absl::StatusOr<QdqResult> qdq = ExportQdq(model, table, {});
  ASSERT_TRUE(qdq.ok()) << qdq.status();
  ASSERT_EQ(DefaultOpset(qdq->model), 19);

  onnx::ModelProto probe = qdq->model;
  const std::vector<ExportedPair> pairs = Pairs(probe.graph());
  ASSERT_EQ(pairs.size(), 10u);  // 5 inputs, 5 weights
  const Tensor x = CraftedInput(0.5f);
  for (const ExportedPair& p : pairs) {
    AddFloatOutput(probe.mutable_graph(), p.dq_out);
    if (p.source != "input" && Initializer(probe.graph(), p.source) == nullptr) {
      AddFloatOutput(probe.mutable_graph(), p.source);
    }
  }
  const Outputs out = Run(probe, {{"input", x}});
  ASSERT_FALSE(out.empty());

  int fp8_pairs = 0, saturated = 0;
  for (const ExportedPair& p : pairs) {
    std::vector<float> source;
    std::vector<int64_t> dims;
    if (p.source == "input") {
      source = x.data;
      dims = x.dims;
    } else if (const onnx::TensorProto* w = Initializer(qdq->model.graph(), p.source)) {
      source = Values(*w);
      dims.assign(w->dims().begin(), w->dims().end());
    } else {
      source = out.at(p.source).data;
      dims = out.at(p.source).dims;
    }
    const std::vector<float>& got = out.at(p.dq_out).data;
    ASSERT_EQ(got.size(), source.size()) << p.dq_out;
    int64_t stride = 1;
    if (p.axis >= 0) {
      for (size_t d = p.axis + 1; d < dims.size(); ++d) stride *= dims[d];
    }
    int mismatches = 0;
    for (size_t i = 0; i < source.size(); ++i) {
      const float scale =
          p.axis < 0 ? p.scale[0] : p.scale[(static_cast<int64_t>(i) / stride) % dims[p.axis]];
      const float want = p.fp8 ? FakeQuantFp8(source[i], scale) : FakeQuantInt8(source[i], scale);
      if (p.fp8 && std::abs(source[i] / scale) > 448.0f) ++saturated;
      if (got[i] != want && mismatches++ < 5) {
        ADD_FAILURE() << p.dq_out << "[" << i << "]: x " << source[i] << ", scale " << scale
                      << ": ORT " << got[i] << ", reference " << want;
      }
    }
    EXPECT_EQ(mismatches, 0) << p.dq_out;
    fp8_pairs += p.fp8;
  }
  EXPECT_EQ(fp8_pairs, 6);
  EXPECT_GT(saturated, 4);  // the crafted input and conv2's small amax reach the clamp
}

// The whole mixed FP8/INT8 network, amax from its float activations: ORT loads and runs it with
// graph optimisation off and at "basic", and its output stays near float while differing from
// it. Not at "extended" or "all": onnxruntime-node 1.31.1's CPU QDQ fusion turns the FP8
// Q -> DQ -> Conv into a QLinearConv, which takes no float8e4m3fn, and refuses the model
// ("Type 'tensor(float8e4m3fn)' of input parameter ... of operator (QLinearConv) ... is
// invalid"); an ORT limitation, not the file's (the README says so).
TEST_F(Fp8OrtTest, Fp8NetworkStaysNearFloat) {
  const onnx::ModelProto model = LoadModel("cnn_bn.onnx");
  AmaxTable table{.model = "fp8", .method = "max", .quantizers = {}};
  // Amax a little above each layer's range on this input (measured from the float model below).
  const Tensor x = CraftedInput(1.0f / 448.0f);
  onnx::ModelProto probe = model;
  for (const char* t : {"/pool/MaxPool_output_0", "/pool_1/MaxPool_output_0", "/Flatten_output_0",
                        "/Relu_3_output_0"}) {
    AddFloatOutput(probe.mutable_graph(), t);
  }
  const Outputs fl = Run(probe, {{"input", x}});
  ASSERT_FALSE(fl.empty());
  const auto amax_of = [&](const std::string& t) {
    float m = 0;
    for (float v : fl.at(t).data) m = std::max(m, std::abs(v));
    return m;
  };
  const std::map<std::string, float> amax = {{"conv1", 1.0f},
                                             {"conv2", amax_of("/pool/MaxPool_output_0")},
                                             {"conv3", amax_of("/pool_1/MaxPool_output_0")},
                                             {"fc1", amax_of("/Flatten_output_0")},
                                             {"fc2", amax_of("/Relu_3_output_0")}};
  for (const auto& [module, a] : amax) {
    const std::string name = module + "._input_quantizer";
    table.quantizers[name] = {
        .name = name,
        .amax = {a},
        .method = "max",
        .format = module == "conv3" ? kernels::QuantFormat::kInt : kernels::QuantFormat::kFp8E4M3};
  }
  absl::StatusOr<QdqResult> qdq = ExportQdq(model, table, {});
  ASSERT_TRUE(qdq.ok()) << qdq.status();
  for (const char* optimize : {"disabled", "basic"}) {
    const Outputs q = Run(qdq->model, {{"input", x}}, optimize);
    ASSERT_FALSE(q.empty());
    const std::vector<float>& a = q.at("output").data;
    const std::vector<float>& b = fl.at("output").data;
    ASSERT_EQ(a.size(), b.size());
    double dot = 0, na = 0, nb = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      dot += double{a[i]} * b[i];
      na += double{a[i]} * a[i];
      nb += double{b[i]} * b[i];
    }
    EXPECT_GT(dot / std::sqrt(na * nb), 0.99) << "optimize " << optimize;
    EXPECT_NE(a, b) << "optimize " << optimize;  // the quantization is there
  }
}

}  // namespace
}  // namespace qcal::server
