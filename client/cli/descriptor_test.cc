#include "client/cli/descriptor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace qcal::cli {
namespace {

using ::testing::HasSubstr;

TEST(DescriptorTest, ParsesEveryKey) {
  absl::StatusOr<QuantizerDescriptor> parsed = ParseDescriptor(
      "num_bits=6,unsigned=true,calibrator=histogram,num_bins=4096,skip_zeros=false,axis=none",
      "--default-input", false);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->name, "");
  EXPECT_EQ(parsed->num_bits, 6);
  EXPECT_EQ(parsed->is_unsigned, true);
  EXPECT_EQ(parsed->calibrator, "histogram");
  EXPECT_EQ(parsed->num_bins, 4096);
  EXPECT_EQ(parsed->skip_zeros, false);
  ASSERT_TRUE(parsed->axis.has_value());
  EXPECT_FALSE(parsed->axis->has_value());  // per-tensor

  parsed = ParseDescriptor("name=conv1._weight_quantizer,axis=-1", "--quantizer", true);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->name, "conv1._weight_quantizer");
  EXPECT_EQ(parsed->axis, std::optional<std::optional<int32_t>>(-1));
  // Keys left out stay unset: CreateModelRequestFor fills them from the role's default.
  EXPECT_FALSE(parsed->num_bits.has_value());
  EXPECT_FALSE(parsed->calibrator.has_value());
  EXPECT_FALSE(parsed->format.has_value());

  parsed = ParseDescriptor("format=fp8_e4m3", "--default-input", false);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->format, "fp8_e4m3");
}

TEST(DescriptorTest, RefusesNamingTheOptionAndTheKey) {
  const auto refused = [](std::string_view text, bool named, const std::string& message) {
    const absl::Status status = ParseDescriptor(text, "--opt", named).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(message)) << text;
  };
  refused("bits=8", false, "--opt: unknown key 'bits' (keys: name, num_bits,");
  refused("num_bits=eight", false, "--opt: num_bits=eight: expected an integer");
  refused("unsigned=yes", false, "--opt: unsigned=yes: expected true or false");
  refused("axis=x", false, "--opt: axis=x: expected an integer, or none for per-tensor");
  refused("calibrator=kl", false, "--opt: calibrator=kl: expected max or histogram");
  refused("num_bins=1e3", false, "--opt: num_bins=1e3: expected an integer");
  refused("skip_zeros=1", false, "--opt: skip_zeros=1: expected true or false");
  refused("format=fp8", false, "--opt: format=fp8: expected int or fp8_e4m3");
  refused("num_bits=8,num_bits=4", false, "--opt: key num_bits is given twice");
  refused("num_bits", false, "--opt: 'num_bits' is not KEY=VALUE");
  refused("", false, "--opt: '' is not KEY=VALUE");
  refused("name=q", false, "--opt: name does not apply to a default descriptor");
  refused("num_bits=8", true, "--opt: name=QUANTIZER is required");
}

}  // namespace
}  // namespace qcal::cli
