#include "kernels/histogram_amax.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qcal::kernels {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(HistogramAmaxTest, ParsesMethodNames) {
  for (const AmaxMethod m :
       {AmaxMethod::kMax, AmaxMethod::kEntropy, AmaxMethod::kMse, AmaxMethod::kPercentile}) {
    const auto parsed = ParseAmaxMethod(AmaxMethodName(m));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, m);
  }
  const auto unknown = ParseAmaxMethod("foo");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("foo"));
}

TEST(HistogramAmaxTest, DispatchesToTheSearches) {
  Histogram h({.num_bins = 4});
  ASSERT_TRUE(h.Collect(std::vector<float>{0.1f, 0.6f, 1.1f, 1.6f, 2.0f}).ok());
  // Edges 0, .5, 1, 1.5, 2; counts 1, 1, 1, 2.
  auto choice = HistogramAmax(h, AmaxMethod::kPercentile, {}, 50.0);
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, 2);  // cdf .2, .4, .6
  EXPECT_EQ(choice->amax, 1.0f);
  choice = HistogramAmax(h, AmaxMethod::kMax, {});
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->amax, 2.0f);
  EXPECT_EQ(choice->index, -1);
  choice = HistogramAmax(h, AmaxMethod::kEntropy, {.num_bits = 2, .start_bin = 2});
  ASSERT_TRUE(choice.ok());
  const auto direct = EntropyAmax(h.Counts(), h.Edges(), {.num_bits = 2, .start_bin = 2});
  EXPECT_EQ(choice->index, direct->index);
  choice = HistogramAmax(h, AmaxMethod::kMse, {.start_bin = 0});
  ASSERT_TRUE(choice.ok());
  EXPECT_EQ(choice->index, MseAmax(h.Counts(), h.Edges(), {.start_bin = 0})->index);
}

TEST(HistogramAmaxTest, OnlyZerosGiveAmaxZeroForEveryMethod) {
  Histogram h({});
  ASSERT_TRUE(h.Collect(std::vector<float>(10, 0.0f)).ok());
  for (const AmaxMethod m :
       {AmaxMethod::kMax, AmaxMethod::kEntropy, AmaxMethod::kMse, AmaxMethod::kPercentile}) {
    const auto choice = HistogramAmax(h, m, {});
    ASSERT_TRUE(choice.ok()) << AmaxMethodName(m);
    EXPECT_EQ(choice->amax, 0.0f);
  }
  // Bad arguments are still refused.
  EXPECT_EQ(HistogramAmax(h, AmaxMethod::kPercentile, {}, 0.0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HistogramAmax(h, AmaxMethod::kEntropy, {.stride = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HistogramAmaxTest, NoDataIsAFailedPrecondition) {
  Histogram h({});
  for (const AmaxMethod m :
       {AmaxMethod::kMax, AmaxMethod::kEntropy, AmaxMethod::kMse, AmaxMethod::kPercentile}) {
    EXPECT_EQ(HistogramAmax(h, m, {}).status().code(), absl::StatusCode::kFailedPrecondition);
  }
  EXPECT_EQ(HistogramAmax(h, AmaxMethod::kPercentile, {}, 101.0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HistogramAmaxTest, FewerBinsThanStartBinIsAClearError) {
  // Field case: a 64-bin histogram asked for entropy with the default start_bin 128.
  Histogram h({.num_bins = 64});
  std::vector<float> x(1000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) / 100.0f;
  ASSERT_TRUE(h.Collect(x).ok());
  const auto choice = HistogramAmax(h, AmaxMethod::kEntropy, {});
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(choice.status().message(), AllOf(HasSubstr("start_bin 128"), HasSubstr("64 bins")));
  EXPECT_TRUE(HistogramAmax(h, AmaxMethod::kEntropy, {.start_bin = 32}).ok());
}

}  // namespace
}  // namespace qcal::kernels
