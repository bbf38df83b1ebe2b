#include "server/core/model_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
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

ModelConfig Config(int input_bins, std::vector<QuantizerSpec> declared = {}) {
  QuantizerSpec input = DefaultInputSpec();
  input.num_bins = input_bins;
  return {.name = "m",
          .default_input = input,
          .default_weight = DefaultWeightSpec(),
          .quantizers = std::move(declared)};
}

TEST(ModelRegistryTest, ExistOkJoinsAnEqualConfigurationAndNamesTheFirstDifference) {
  ModelRegistry registry;
  const QuantizerSpec a{.name = "a._input_quantizer", .num_bits = 6};
  const QuantizerSpec w{
      .name = "b._weight_quantizer", .axis = 1, .calibrator = CalibratorKind::kMax};
  absl::StatusOr<std::shared_ptr<Model>> created = registry.Create(Config(4096, {a, w}), true);
  ASSERT_TRUE(created.ok()) << created.status();

  // Equal, declared quantizers in another order: the same model.
  absl::StatusOr<std::shared_ptr<Model>> joined = registry.Create(Config(4096, {w, a}), true);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(joined->get(), created->get());

  // Without exist_ok: ALREADY_EXISTS, whatever the configuration.
  EXPECT_EQ(registry.Create(Config(4096, {a, w})).status().code(),
            absl::StatusCode::kAlreadyExists);

  const auto refused = [&](ModelConfig config, const std::string& message) {
    const absl::Status status = registry.Create(std::move(config), true).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
    EXPECT_EQ(std::string(status.message()), message);
  };
  refused(Config(2048, {a, w}), "model 'm' exists with default_input num_bins 4096, not 2048");
  ModelConfig weight = Config(4096, {a, w});
  weight.default_weight.calibrator = CalibratorKind::kHistogram;
  weight.default_weight.axis.reset();
  refused(weight, "model 'm' exists with default_weight axis 0, not per-tensor (no axis)");
  refused(Config(4096, {a}),
          "model 'm' exists with declared quantizer 'b._weight_quantizer', which the request "
          "does not declare");
  refused(Config(4096, {a, w, {.name = "c._input_quantizer"}}),
          "model 'm' exists without declared quantizer 'c._input_quantizer', which the request "
          "declares");
  QuantizerSpec unsigned_a = a;
  unsigned_a.is_unsigned = true;
  refused(Config(4096, {unsigned_a, w}),
          "model 'm' exists with quantizer 'a._input_quantizer' unsigned false, not true");
  QuantizerSpec a8 = a;
  a8.num_bits = 8;
  refused(Config(4096, {a8, w}),
          "model 'm' exists with quantizer 'a._input_quantizer' num_bits 6, not 8");
  // The format is part of the configuration (CreateModelRequest's exist_ok).
  QuantizerSpec fp8_a = a8;
  fp8_a.format = kernels::QuantFormat::kFp8E4M3;
  refused(Config(4096, {fp8_a, w}),
          "model 'm' exists with quantizer 'a._input_quantizer' format int, not fp8_e4m3");
  ModelConfig fp8_default = Config(4096, {a, w});
  fp8_default.default_input.format = kernels::QuantFormat::kFp8E4M3;
  refused(fp8_default, "model 'm' exists with default_input format int, not fp8_e4m3");

  // A refused request is checked before the name: INVALID_ARGUMENT, not a difference.
  ModelConfig bad = Config(4096, {a, w});
  bad.default_input.num_bits = 1;
  EXPECT_EQ(registry.Create(std::move(bad), true).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.List().size(), 1u);
}

// Many creators with exist_ok at once: one model, every one of them gets it.
TEST(ModelRegistryTest, ConcurrentExistOkCreatorsGetOneModel) {
  ModelRegistry registry;
  constexpr int kThreads = 8;
  std::vector<Model*> got(kThreads, nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&registry, &got, t] {
      absl::StatusOr<std::shared_ptr<Model>> model = registry.Create(Config(4096), true);
      EXPECT_TRUE(model.ok()) << model.status();
      if (model.ok()) got[t] = model->get();
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_EQ(registry.List().size(), 1u);
  for (Model* model : got) EXPECT_EQ(model, registry.List()[0].get());
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

// A deleted model's DeletedHook (the removal of its --data-dir file) runs before a model of the
// same name can be created: a late hook would otherwise remove the new model's file, and a crash
// would lose a model whose Commit had returned.
TEST(ModelRegistryTest, ACreationOfTheSameNameWaitsForTheDeletedHook) {
  std::mutex mu;
  std::vector<std::string> events;
  std::thread creator;
  ModelRegistry* registry_ptr = nullptr;
  ModelRegistry registry(/*max_models=*/10, [&](const std::string& name) {
    // The creator starts while the hook runs and must not get the name until it returns.
    creator = std::thread([&] {
      const bool created = registry_ptr->Create({.name = "m"}).ok();
      std::lock_guard<std::mutex> lock(mu);
      events.push_back(created ? "created" : "refused");
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    std::lock_guard<std::mutex> lock(mu);
    events.push_back("forgot " + name);
    return absl::OkStatus();
  });
  registry_ptr = &registry;
  ASSERT_TRUE(registry.Create({.name = "m"}).ok());
  ASSERT_TRUE(registry.Delete("m").ok());
  creator.join();
  EXPECT_EQ(events, (std::vector<std::string>{"forgot m", "created"}));
  EXPECT_TRUE(registry.Find("m").ok());
}

TEST(ModelRegistryTest, DeleteReturnsTheDeletedHooksErrorAndTheModelIsGone) {
  ModelRegistry registry(/*max_models=*/10, [](const std::string& name) {
    return absl::UnavailableError("cannot remove the file of " + name);
  });
  ASSERT_TRUE(registry.Create({.name = "m"}).ok());
  const absl::Status status = registry.Delete("m");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "cannot remove the file of m");
  EXPECT_EQ(registry.Find("m").status().code(), absl::StatusCode::kNotFound);
}

// The NewModelHook (the data dir's write of a new model's file) runs before any call can find the
// model, only for new names, and its error leaves no model behind.
TEST(ModelRegistryTest, TheNewModelHookRunsBeforeTheModelIsSeenAndItsErrorRefusesIt) {
  std::vector<std::string> hooked;
  ModelRegistry* registry_ptr = nullptr;
  ModelRegistry registry(/*max_models=*/10, nullptr, [&](Model& model) {
    hooked.push_back(model.name());
    EXPECT_EQ(registry_ptr->Find(model.name()).status().code(), absl::StatusCode::kNotFound);
    if (model.name() == "refused") return absl::UnavailableError("disk full");
    return absl::OkStatus();
  });
  registry_ptr = &registry;
  ASSERT_TRUE(registry.Create({.name = "m"}).ok());
  // Joining and a refused duplicate run no hook.
  ASSERT_TRUE(registry.Create({.name = "m"}, /*exist_ok=*/true).ok());
  EXPECT_EQ(registry.Create({.name = "m"}).status().code(), absl::StatusCode::kAlreadyExists);
  const absl::Status refused = registry.Create({.name = "refused"}).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(refused.message(), "disk full");
  EXPECT_EQ(registry.Find("refused").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<std::shared_ptr<Model>> restored = Model::Create({.name = "restored"});
  ASSERT_TRUE(restored.ok());
  ASSERT_TRUE(registry.Insert(*restored, ModelRegistry::Origin::kRestored).ok());
  absl::StatusOr<std::shared_ptr<Model>> loaded = Model::Create({.name = "refused"});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(registry.Insert(*loaded).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(hooked, (std::vector<std::string>{"m", "refused", "refused"}));
  EXPECT_EQ(registry.size(), 2);
}

}  // namespace
}  // namespace qcal::server
