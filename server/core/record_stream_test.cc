// RecordStream's totals (what RecordResponse reports) against partial states whose counters a
// client declares. The overflow was found while writing tests/fuzz/fuzz_record, whose input
// corpus/record/partials_overflow_stream_totals reproduces it.
#include "server/core/record_stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "absl/time/time.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

constexpr char kFirst[] = "a._input_quantizer";
constexpr char kSecond[] = "b._input_quantizer";

// A partial state of `elements` values, all NaN or inf: an empty histogram, valid for any count.
RecordChunk NonFinitePartial(const char* quantizer, int64_t elements) {
  return {.model = "net",
          .quantizer = quantizer,
          .partial = PartialState{.batches = 1, .elements = elements, .nonfinite = elements},
          .partial_bytes = 20};
}

int64_t Elements(const Model& model, const char* quantizer) {
  for (const QuantizerInfo& info : model.Info().quantizers) {
    if (info.spec.name == quantizer) return info.stats.elements;
  }
  return -1;  // not created
}

TEST(RecordStreamTest, PartialStatesWhoseSumWouldWrapAreRefusedAndChangeNothing) {
  ModelRegistry registry;
  absl::StatusOr<std::shared_ptr<Model>> model = registry.Create({.name = "net"});
  ASSERT_TRUE(model.ok()) << model.status();
  Metrics metrics;
  InflightBudget budget(1 << 20, absl::ZeroDuration(), nullptr);
  const NoCallControl call;
  RecordStream stream(registry, metrics, 1 << 20, budget, IdleTrimmer::Activity(), call);

  // Each fits its own quantizer's counters; their sum passes 2^63 - 1.
  const int64_t big = int64_t{5'000'000'000'000'000'000};
  ASSERT_TRUE(stream.Add(NonFinitePartial(kFirst, big)).ok());
  const absl::Status second = stream.Add(NonFinitePartial(kSecond, big));
  EXPECT_EQ(second.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(second.message(), HasSubstr("model 'net': the Record stream's elements"));
  EXPECT_THAT(second.message(), HasSubstr("would overflow a 64-bit counter"));

  // The client is told what counted: the first state only, which the model holds.
  EXPECT_EQ(stream.applied().batches, 1);
  EXPECT_EQ(stream.applied().elements, big);
  EXPECT_EQ(stream.applied().nonfinite, big);
  EXPECT_EQ(stream.applied().partials, 1);
  EXPECT_EQ(Elements(**model, kFirst), big);
  EXPECT_EQ(Elements(**model, kSecond), -1);
}

TEST(RecordStreamTest, PartialStatesUpToTheLimitAddUp) {
  ModelRegistry registry;
  absl::StatusOr<std::shared_ptr<Model>> model = registry.Create({.name = "net"});
  ASSERT_TRUE(model.ok()) << model.status();
  Metrics metrics;
  InflightBudget budget(1 << 20, absl::ZeroDuration(), nullptr);
  const NoCallControl call;
  RecordStream stream(registry, metrics, 1 << 20, budget, IdleTrimmer::Activity(), call);

  const int64_t half = std::numeric_limits<int64_t>::max() / 2;
  ASSERT_TRUE(stream.Add(NonFinitePartial(kFirst, half)).ok());
  ASSERT_TRUE(stream.Add(NonFinitePartial(kSecond, half + 1)).ok());
  absl::StatusOr<BatchStats> totals = stream.Finish();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->elements, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(totals->batches, 2);
  EXPECT_EQ(totals->bytes, 40);
  EXPECT_EQ(totals->partials, 2);
}

}  // namespace
}  // namespace qcal::server
