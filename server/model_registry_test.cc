#include "server/model_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

TEST(ModelRegistryTest, CreateFindListDelete) {
  ModelRegistry registry;
  ASSERT_TRUE(registry.Create({.name = "b"}).ok());
  ASSERT_TRUE(registry.Create({.name = "a"}).ok());
  const absl::Status again = registry.Create({.name = "a"}).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(again.message()), HasSubstr("model 'a' already exists"));

  std::vector<std::string> names;
  for (const auto& model : registry.List()) names.push_back(model->name());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));

  ASSERT_TRUE(registry.Find("a").ok());
  const absl::Status missing = registry.Find("c").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.message()), HasSubstr("unknown model 'c'"));

  ASSERT_TRUE(registry.Delete("a").ok());
  EXPECT_EQ(registry.Find("a").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry.Delete("a").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry.List().size(), 1u);
}

// 8 threads record into the same two quantizers of one model (one of them created by whichever
// thread comes first): every batch and element is counted exactly once, and the maxima are
// those of all the data.
TEST(ModelRegistryTest, ConcurrentRecordsLoseNothing) {
  constexpr int kThreads = 8;
  constexpr int kBatches = 60;
  constexpr int kChannels = 4;
  constexpr int kPerChannel = 64;
  ModelRegistry registry;
  ASSERT_TRUE(registry.Create({.name = "net"}).ok());

  // Value j of batch b of thread t; channel c = j / kPerChannel. The largest |x| of channel c is
  // reached once, by thread c + 1 in its last batch.
  const auto value = [](int t, int b, int j) {
    const int c = j / kPerChannel;
    const float base = static_cast<float>((t * 31 + b * 7 + j) % 101) / 101.0f;
    const bool peak = t == c + 1 && b == kBatches - 1 && j % kPerChannel == 5;
    return (j % 2 == 0 ? 1.0f : -1.0f) * (peak ? 10.0f + static_cast<float>(c) : base);
  };

  std::vector<std::thread> threads;
  std::vector<absl::Status> failures(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> batch(kChannels * kPerChannel);
      const std::vector<int64_t> shape = {kChannels, kPerChannel};
      for (int b = 0; b < kBatches; ++b) {
        for (int j = 0; j < static_cast<int>(batch.size()); ++j) batch[j] = value(t, b, j);
        // Look the model up for each batch, as a Record stream does.
        absl::StatusOr<std::shared_ptr<Model>> model = registry.Find("net");
        if (!model.ok()) {
          failures[t] = model.status();
          return;
        }
        for (const char* quantizer : {"x._input_quantizer", "x._weight_quantizer"}) {
          absl::StatusOr<BatchStats> applied =
              (*model)->Record(quantizer, shape, batch, static_cast<int64_t>(batch.size() * 4));
          if (!applied.ok()) {
            failures[t] = applied.status();
            return;
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& failure : failures) ASSERT_TRUE(failure.ok()) << failure;

  const std::shared_ptr<Model> model = *registry.Find("net");
  const int64_t elements = int64_t{kThreads} * kBatches * kChannels * kPerChannel;
  const ModelInfo info = model->Info();
  ASSERT_EQ(info.quantizers.size(), 2u);
  for (const QuantizerInfo& quantizer : info.quantizers) {
    EXPECT_EQ(quantizer.stats, (BatchStats{.batches = kThreads * kBatches,
                                           .elements = elements,
                                           .nonfinite = 0,
                                           .bytes = elements * 4}))
        << quantizer.spec.name;
  }
  EXPECT_EQ(model->GetHistogram("x._input_quantizer")->total, static_cast<uint64_t>(elements));

  const absl::StatusOr<AmaxTableForms> table = model->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->table.quantizers.at("x._input_quantizer").amax, std::vector<float>{13.0f});
  EXPECT_EQ(table->table.quantizers.at("x._weight_quantizer").amax,
            (std::vector<float>{10.0f, 11.0f, 12.0f, 13.0f}));
}

}  // namespace
}  // namespace qcal::server
