// CreateModelRequestFor: how descriptors are filled in and checked before anything is sent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "qcal/client.h"

namespace qcal {
namespace {

using ::testing::HasSubstr;

v1::QuantizerSpec Spec(int num_bits, bool is_unsigned, std::optional<int> axis,
                       v1::CalibratorKind calibrator, int num_bins, bool skip_zeros,
                       const std::string& name = "") {
  v1::QuantizerSpec spec;
  spec.set_name(name);
  spec.set_num_bits(num_bits);
  spec.set_is_unsigned(is_unsigned);
  if (axis.has_value()) spec.set_axis(*axis);
  spec.set_calibrator(calibrator);
  spec.set_num_bins(num_bins);
  spec.set_skip_zeros(skip_zeros);
  return spec;
}

std::string Text(const v1::QuantizerSpec& spec) { return spec.ShortDebugString(); }

TEST(CreateModelRequestTest, NoDescriptorsMeansPytorchQuantizationsDefaults) {
  absl::StatusOr<v1::CreateModelRequest> request = CreateModelRequestFor("m", {});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->model(), "m");
  EXPECT_FALSE(request->exist_ok());
  EXPECT_EQ(Text(request->default_input()),
            Text(Spec(8, false, std::nullopt, v1::CALIBRATOR_HISTOGRAM, 2048, false)));
  EXPECT_EQ(Text(request->default_weight()),
            Text(Spec(8, false, 0, v1::CALIBRATOR_MAX, 2048, false)));
  EXPECT_EQ(request->quantizers_size(), 0);
}

TEST(CreateModelRequestTest, UnsetFieldsTakeTheRolesDefault) {
  ModelOptions options;
  options.default_input = QuantizerDescriptor{.num_bits = 6, .num_bins = 4096};
  options.default_weight = QuantizerDescriptor{.is_unsigned = true};
  options.quantizers = {
      {.name = "conv1._input_quantizer", .skip_zeros = true},
      {.name = "conv1._weight_quantizer", .axis = kPerTensor},
      {.name = "fc._weight_quantizer", .calibrator = "histogram"},
      {.name = "fc._input_quantizer", .calibrator = "max"},
      {.name = "head._input_quantizer", .axis = 1, .calibrator = "max"},
  };
  options.exist_ok = true;
  absl::StatusOr<v1::CreateModelRequest> request = CreateModelRequestFor("m", options);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->exist_ok());
  EXPECT_EQ(Text(request->default_input()),
            Text(Spec(6, false, std::nullopt, v1::CALIBRATOR_HISTOGRAM, 4096, false)));
  EXPECT_EQ(Text(request->default_weight()),
            Text(Spec(8, true, 0, v1::CALIBRATOR_MAX, 2048, false)));
  ASSERT_EQ(request->quantizers_size(), 5);
  // Declared quantizers start from the defaults of this request, by role.
  EXPECT_EQ(Text(request->quantizers(0)),
            Text(Spec(6, false, std::nullopt, v1::CALIBRATOR_HISTOGRAM, 4096, true,
                      "conv1._input_quantizer")));
  EXPECT_EQ(Text(request->quantizers(1)), Text(Spec(8, true, std::nullopt, v1::CALIBRATOR_MAX, 2048,
                                                    false, "conv1._weight_quantizer")));
  // A histogram without an axis given is per-tensor; a max calibrator keeps the role's axis.
  EXPECT_EQ(Text(request->quantizers(2)), Text(Spec(8, true, std::nullopt, v1::CALIBRATOR_HISTOGRAM,
                                                    2048, false, "fc._weight_quantizer")));
  EXPECT_EQ(Text(request->quantizers(3)), Text(Spec(6, false, std::nullopt, v1::CALIBRATOR_MAX,
                                                    4096, false, "fc._input_quantizer")));
  EXPECT_EQ(Text(request->quantizers(4)),
            Text(Spec(6, false, 1, v1::CALIBRATOR_MAX, 4096, false, "head._input_quantizer")));
}

TEST(CreateModelRequestTest, BadDescriptorsAreRefusedNamingTheField) {
  const auto refused = [](const ModelOptions& options, const std::string& message) {
    const absl::Status status = CreateModelRequestFor("m", options).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message));
  };
  refused({.default_input = QuantizerDescriptor{.num_bits = 1}},
          "model 'm', default_input: num_bits 1 is outside 2..16");
  refused({.default_weight = QuantizerDescriptor{.num_bins = 0}},
          "model 'm', default_weight: num_bins 0 is outside 1..16777216");
  refused({.default_input = QuantizerDescriptor{.calibrator = "kl"}},
          "default_input: calibrator 'kl' is not max or histogram");
  refused({.default_input = QuantizerDescriptor{.axis = 0}},
          "default_input: axis 0 applies to max calibrators only");
  refused({.default_weight = QuantizerDescriptor{.skip_zeros = true}},
          "default_weight: skip_zeros applies to histogram calibrators only");
  refused({.default_input = QuantizerDescriptor{.name = "x"}},
          "default_input: a default descriptor has no name (got 'x')");
  refused({.quantizers = {{.num_bits = 4}}}, "model 'm': declared quantizer name");
  refused({.quantizers = {{.name = "q", .num_bits = 17}}},
          "model 'm', quantizer 'q': num_bits 17 is outside 2..16");
  EXPECT_EQ(CreateModelRequestFor("", {}).status().code(), absl::StatusCode::kInvalidArgument);
}

// FP8 E4M3: 8 bits whatever the role's width; declared quantizers inherit the role's format and
// may set it back to integers.
TEST(CreateModelRequestTest, Fp8FormatIsFilledInAndChecked) {
  ModelOptions options;
  options.default_input = QuantizerDescriptor{.num_bits = 6};
  options.default_weight = QuantizerDescriptor{.format = "fp8_e4m3"};
  options.quantizers = {
      {.name = "a._input_quantizer", .format = "fp8_e4m3"},
      {.name = "a._weight_quantizer"},
      {.name = "b._weight_quantizer", .format = "int"},
  };
  absl::StatusOr<v1::CreateModelRequest> request = CreateModelRequestFor("m", options);
  ASSERT_TRUE(request.ok()) << request.status();
  v1::QuantizerSpec fp8_weight = Spec(8, false, 0, v1::CALIBRATOR_MAX, 2048, false);
  fp8_weight.set_format(v1::QUANT_FORMAT_FP8_E4M3);
  EXPECT_EQ(request->default_input().format(), v1::QUANT_FORMAT_INT);
  EXPECT_EQ(Text(request->default_weight()), Text(fp8_weight));
  v1::QuantizerSpec fp8_input =
      Spec(8, false, std::nullopt, v1::CALIBRATOR_HISTOGRAM, 2048, false, "a._input_quantizer");
  fp8_input.set_format(v1::QUANT_FORMAT_FP8_E4M3);
  EXPECT_EQ(Text(request->quantizers(0)), Text(fp8_input));
  fp8_weight.set_name("a._weight_quantizer");
  EXPECT_EQ(Text(request->quantizers(1)), Text(fp8_weight));
  EXPECT_EQ(Text(request->quantizers(2)),
            Text(Spec(8, false, 0, v1::CALIBRATOR_MAX, 2048, false, "b._weight_quantizer")));

  const auto refused = [](const ModelOptions& bad, const std::string& message) {
    const absl::Status status = CreateModelRequestFor("m", bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_EQ(std::string(status.message()), message);
  };
  refused({.default_input = QuantizerDescriptor{.num_bits = 4, .format = "fp8_e4m3"}},
          "model 'm', default_input: num_bits 4 does not fit format fp8_e4m3 (8 bits, or unset)");
  refused({.default_weight = QuantizerDescriptor{.is_unsigned = true, .format = "fp8_e4m3"}},
          "model 'm', default_weight: format fp8_e4m3 is signed; unsigned must be false");
  refused({.quantizers = {{.name = "q", .format = "fp8"}}},
          "model 'm', quantizer 'q': format 'fp8' is not int or fp8_e4m3");
  // A declared quantizer inherits FP8 from its role, so a 4-bit one must say "int".
  refused({.default_input = QuantizerDescriptor{.format = "fp8_e4m3"},
           .quantizers = {{.name = "q", .num_bits = 4}}},
          "model 'm', quantizer 'q': num_bits 4 does not fit format fp8_e4m3 (8 bits, or unset)");
  EXPECT_EQ(QuantFormatName(*ParseQuantFormat("fp8_e4m3")), "fp8_e4m3");
  EXPECT_EQ(QuantFormatName(*ParseQuantFormat("int")), "int");
  EXPECT_EQ(QuantFormatName(static_cast<v1::QuantFormat>(7)), "unknown");
}

TEST(CreateModelRequestTest, HistogramLayoutIsSentWhenGiven) {
  absl::StatusOr<v1::CreateModelRequest> request = CreateModelRequestFor("m", {});
  ASSERT_TRUE(request.ok()) << request.status();
  // Unset: the server's default, which the request leaves to the server.
  EXPECT_EQ(request->histogram_layout(), v1::HISTOGRAM_LAYOUT_UNSPECIFIED);
  request = CreateModelRequestFor("m", {.histogram_layout = "reference"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->histogram_layout(), v1::HISTOGRAM_LAYOUT_REFERENCE);
  request = CreateModelRequestFor("m", {.exist_ok = true, .histogram_layout = "mergeable"});
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->histogram_layout(), v1::HISTOGRAM_LAYOUT_MERGEABLE);
  EXPECT_TRUE(request->exist_ok());
}

TEST(CreateModelRequestTest, AnUnknownHistogramLayoutIsRefusedNamingIt) {
  for (const std::string layout : {"", "Mergeable", "reference ", "2", "unspecified"}) {
    const absl::Status status = CreateModelRequestFor("m", {.histogram_layout = layout}).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << layout;
    EXPECT_EQ(status.message(), absl::StrCat("model 'm': histogram_layout '", layout,
                                             "' is not mergeable or reference"));
  }
}

TEST(CreateModelRequestTest, HistogramLayoutNamesRoundTrip) {
  for (const v1::HistogramLayout layout :
       {v1::HISTOGRAM_LAYOUT_MERGEABLE, v1::HISTOGRAM_LAYOUT_REFERENCE}) {
    absl::StatusOr<v1::HistogramLayout> parsed = ParseHistogramLayout(HistogramLayoutName(layout));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, layout);
  }
  EXPECT_EQ(HistogramLayoutName(v1::HISTOGRAM_LAYOUT_UNSPECIFIED), "unspecified");
}

}  // namespace
}  // namespace qcal
