// Exactly-once Record batches in the core: session sequences are checked and advanced with the
// batch they number, gaps are refused with nothing changed, duplicates are read and dropped, two
// streams of one session never count a batch twice, and the sequences travel with the state.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/core/calibration_core.h"
#include "server/core/memory_durability_testing.h"
#include "server/core/model.h"
#include "server/storage/state_file.h"

namespace qcal::server {
namespace {

using ::testing::HasSubstr;

constexpr char kIn[] = "x._input_quantizer";
const std::string kSession(16, '\x07');

std::shared_ptr<Model> NewModel(const std::string& name = "net") {
  absl::StatusOr<std::shared_ptr<Model>> model = Model::Create({.name = name});
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

// One batch {value, -value} of `session` numbered `sequence`.
absl::StatusOr<std::optional<BatchStats>> Send(Model& model, const std::string& session,
                                               int64_t sequence, float value = 1.0f) {
  const std::vector<float> values = {value, -value};
  const std::vector<int64_t> shape = {2};
  return model.RecordSequenced(kIn, shape, values, 8,
                               {.session_id = session, .sequence = sequence});
}

int64_t Batches(const Model& model) {
  for (const QuantizerInfo& quantizer : model.Info().quantizers) {
    if (quantizer.spec.name == kIn) return quantizer.stats.batches;
  }
  return 0;
}

TEST(SessionTest, AppliesTheNextDropsDuplicatesAndRefusesGapsChangingNothing) {
  std::shared_ptr<Model> model = NewModel();
  for (int64_t sequence = 1; sequence <= 3; ++sequence) {
    absl::StatusOr<std::optional<BatchStats>> applied = Send(*model, kSession, sequence);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_TRUE(applied->has_value());
    EXPECT_EQ((*applied)->batches, 1);
  }
  // A resend of 2 and 3: dropped, nothing counted (not even a new quantizer).
  for (int64_t sequence : {2, 3, 1}) {
    absl::StatusOr<std::optional<BatchStats>> again = Send(*model, kSession, sequence);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_FALSE(again->has_value()) << sequence;
  }
  EXPECT_EQ(Batches(*model), 3);
  EXPECT_EQ(model->Sequences(kSession).applied, 3);

  // 6 after 3: 4 and 5 are missing.
  absl::StatusOr<std::optional<BatchStats>> gap = Send(*model, kSession, 6, 100.0f);
  ASSERT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gap.status().message(), HasSubstr("sequences 4 to 5 are missing"));
  EXPECT_THAT(gap.status().message(), HasSubstr("model 'net'"));
  absl::StatusOr<std::optional<BatchStats>> one = Send(*model, kSession, 5);
  EXPECT_THAT(one.status().message(), HasSubstr("sequence 4 is missing"));
  EXPECT_EQ(Batches(*model), 3);
  EXPECT_EQ(model->Sequences(kSession).applied, 3);
  absl::StatusOr<AmaxTableForms> table = model->ComputeAmax({.params = {.method = "max"}});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->table.quantizers.at(kIn).amax, std::vector<float>{1.0f});

  // Another session is counted on its own, from any first sequence (a session the model never
  // held, or forgot).
  ASSERT_TRUE(Send(*model, "other", 40).ok());
  EXPECT_EQ(model->Sequences("other").applied, 40);
  EXPECT_EQ(Batches(*model), 4);
  // Without a session nothing is deduplicated.
  const std::vector<float> values = {1.0f};
  const std::vector<int64_t> shape = {1};
  ASSERT_TRUE(model->Record(kIn, shape, values, 4).ok());
  ASSERT_TRUE(model->Record(kIn, shape, values, 4).ok());
  EXPECT_EQ(Batches(*model), 6);
}

TEST(SessionTest, ADuplicateOfANewQuantizerCreatesNothing) {
  std::shared_ptr<Model> model = NewModel();
  ASSERT_TRUE(Send(*model, kSession, 1).ok());
  const std::vector<float> values = {1.0f};
  const std::vector<int64_t> shape = {1};
  absl::StatusOr<std::optional<BatchStats>> dup = model->RecordSequenced(
      "y._input_quantizer", shape, values, 4, {.session_id = kSession, .sequence = 1});
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_FALSE(dup->has_value());
  EXPECT_EQ(model->Info().quantizers.size(), 1u);
}

TEST(SessionTest, KeepsTheMostRecentlyUsedSessions) {
  std::shared_ptr<Model> model = NewModel();
  const size_t n = SessionTable::kMaxSessions + 1;
  auto id = [](size_t i) { return absl::StrCat("session-", i); };
  for (size_t i = 0; i < n; ++i) {
    // Session 0 is used again just before the last one comes: session 1 is the oldest then.
    if (i == n - 1) ASSERT_TRUE(Send(*model, id(0), 2).ok());
    ASSERT_TRUE(Send(*model, id(i), 1).ok());
  }
  EXPECT_EQ(model->Sequences(id(0)).applied, 2);
  EXPECT_EQ(model->Sequences(id(1)).applied, 0);  // forgotten
  EXPECT_EQ(model->Sequences(id(2)).applied, 1);
  EXPECT_EQ(model->Sequences(id(n - 1)).applied, 1);
  absl::StatusOr<ModelSnapshot> snapshot = model->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->sessions.size(), SessionTable::kMaxSessions);
  // A forgotten session starts a new count: its resent batch counts again (the documented cost
  // of the bound).
  ASSERT_TRUE(Send(*model, id(1), 1).ok());
  EXPECT_EQ(Batches(*model), static_cast<int64_t>(n) + 2);
}

TEST(SessionTest, SessionsSurviveSnapshotFileAndResetButNotMerge) {
  std::shared_ptr<Model> model = NewModel();
  for (int64_t s = 1; s <= 4; ++s) ASSERT_TRUE(Send(*model, kSession, s).ok());
  ASSERT_TRUE(Send(*model, "b", 9).ok());
  absl::StatusOr<ModelSnapshot> snapshot = model->Snapshot();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  const std::map<std::string, int64_t> expected = {{"b", 9}, {kSession, 4}};
  EXPECT_EQ(snapshot->sessions, expected);

  // Through the state file (ModelState.sessions).
  absl::StatusOr<ModelSnapshot> decoded = DecodeStateFile(EncodeStateFile(*snapshot));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->sessions, expected);
  absl::StatusOr<std::shared_ptr<Model>> restored = Model::FromSnapshot({.name = "r"}, *decoded);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->Sequences(kSession).applied, 4);
  EXPECT_EQ((*restored)->Sequences(kSession).durable, 0);  // until a Durability marks it
  (*restored)->MarkDurable(decoded->sessions);
  EXPECT_EQ((*restored)->Sequences(kSession).durable, 4);
  absl::StatusOr<std::optional<BatchStats>> resent = Send(**restored, kSession, 4);
  ASSERT_TRUE(resent.ok());
  EXPECT_FALSE(resent->has_value());
  EXPECT_EQ(Batches(**restored), 5);

  // Merge keeps the target's sessions.
  std::shared_ptr<Model> target = NewModel("t");
  ASSERT_TRUE(Send(*target, "c", 2).ok());
  ASSERT_TRUE(target->Merge(*snapshot).ok());
  EXPECT_EQ(target->Sequences(kSession).applied, 0);
  EXPECT_EQ(target->Sequences("c").applied, 2);
  EXPECT_EQ(Batches(*target), 6);

  // Reset keeps them: a batch resent after the reset is not counted into the fresh data.
  model->Reset();
  EXPECT_EQ(model->Sequences(kSession).applied, 4);
  ASSERT_TRUE(Send(*model, kSession, 4).ok());
  EXPECT_EQ(Batches(*model), 0);
  ASSERT_TRUE(Send(*model, kSession, 5).ok());
  EXPECT_EQ(Batches(*model), 1);

  // Bad sessions in a state are refused.
  ModelSnapshot bad = *snapshot;
  bad.sessions = {{std::string(129, 'x'), 1}};
  EXPECT_THAT(Model::FromSnapshot({.name = "x"}, bad).status().message(),
              HasSubstr("session_id has 129 bytes"));
  bad.sessions = {{"s", 0}};
  EXPECT_EQ(Model::FromSnapshot({.name = "x"}, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SessionTest, DurableSequencesRiseOnlyToWhatWasApplied) {
  std::shared_ptr<Model> model = NewModel();
  for (int64_t s = 1; s <= 3; ++s) ASSERT_TRUE(Send(*model, kSession, s).ok());
  model->MarkDurable({{kSession, 2}, {"unknown", 5}});
  EXPECT_EQ(model->Sequences(kSession).durable, 2);
  EXPECT_EQ(model->Sequences("unknown").applied, 0);
  model->MarkDurable({{kSession, 1}});  // never down
  EXPECT_EQ(model->Sequences(kSession).durable, 2);
  model->MarkDurable({{kSession, 10}});  // never past applied
  EXPECT_EQ(model->Sequences(kSession).durable, 3);
}

// --- Through RecordStream and CalibrationCore ---

RecordChunk Header(const std::string& model, const std::string& session, int64_t sequence,
                   float value = 1.0f) {
  std::string data(8, '\0');
  const float values[2] = {value, -value};
  std::memcpy(data.data(), values, 8);
  return {.model = model,
          .quantizer = kIn,
          .header = BatchHeader{.dtype = kernels::DType::kFloat32, .shape = {2}},
          .data = std::move(data),
          .session_id = session,
          .sequence = sequence};
}

TEST(SessionStreamTest, ChecksSessionFieldsAndReportsSequences) {
  Metrics metrics;
  CalibrationCore core({}, metrics);
  ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
  NoCallControl call;
  auto refused = [&](std::vector<RecordChunk> chunks) {
    std::unique_ptr<RecordStream> stream = core.OpenRecordStream(call);
    for (RecordChunk& chunk : chunks) {
      if (absl::Status status = stream->Add(std::move(chunk)); !status.ok()) return status;
    }
    return stream->Finish().status();
  };
  absl::Status status = refused({Header("m", std::string(129, 's'), 1)});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("session_id has 129 bytes; a session id is 1 to 128"));
  status = refused({Header("m", "s2", 1), Header("", "another", 2)});
  EXPECT_THAT(status.message(), HasSubstr("a stream belongs to the session of its first message"));
  status = refused({Header("m", "", 1)});
  EXPECT_THAT(status.message(), HasSubstr("the stream has no session_id"));
  status = refused({Header("m", kSession, 0)});
  EXPECT_THAT(status.message(), HasSubstr("has sequence 0; with session_id every batch"));
  RecordChunk split = Header("m", kSession, 1);
  RecordChunk rest{.data = split.data.substr(4), .sequence = 1};
  split.data.resize(4);
  status = refused({std::move(split), std::move(rest)});
  EXPECT_THAT(status.message(), HasSubstr("a sequence goes on the message that starts a batch"));
  absl::StatusOr<ModelInfo> info = core.GetModel("m");
  ASSERT_TRUE(info.ok());
  // Only the batch before the "another" refusal counted; every refused message changed nothing.
  ASSERT_EQ(info->quantizers.size(), 1u);
  EXPECT_EQ(info->quantizers.at(0).stats.batches, 1);

  // Applied, then resent: the duplicate is read (its framing still checked) and dropped.
  std::unique_ptr<RecordStream> first = core.OpenRecordStream(call);
  ASSERT_TRUE(first->Add(Header("m", kSession, 1)).ok());
  ASSERT_TRUE(first->Add(Header("", "", 2)).ok());
  ASSERT_TRUE(first->Finish().ok());
  EXPECT_EQ(first->Result().applied_sequence, 2);
  EXPECT_EQ(first->Result().durable_sequence, 2);  // no Durability: durable == applied
  std::unique_ptr<RecordStream> again = core.OpenRecordStream(call);
  ASSERT_TRUE(again->Add(Header("m", kSession, 2)).ok());
  RecordChunk dup = Header("", "", 1);
  dup.data += "xxxx";  // more bytes than the header says: refused although a duplicate
  EXPECT_EQ(again->Add(std::move(dup)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(again->Result().duplicates, 1);
  EXPECT_EQ(again->Result().applied.batches, 0);
  std::unique_ptr<RecordStream> gap = core.OpenRecordStream(call);
  status = gap->Add(Header("m", kSession, 9));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("sequences 3 to 8 are missing"));
  EXPECT_EQ(gap->Result().applied_sequence, 2);
  info = core.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->quantizers.at(0).stats.batches, 3);
}

TEST(SessionStreamTest, TwoStreamsOfOneSessionCountEachBatchOnce) {
  Metrics metrics;
  CalibrationCore core({}, metrics);
  ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
  constexpr int kBatches = 2000;
  NoCallControl call;
  // A client reconnecting while its old stream is still being torn down: both streams carry the
  // same batches; every one must count once.
  std::vector<RecordStreamResult> results(2);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<RecordStream> stream = core.OpenRecordStream(call);
      for (int s = 1; s <= kBatches; ++s) {
        absl::Status status = stream->Add(Header(s == 1 ? "m" : "", kSession, s, float(s)));
        ASSERT_TRUE(status.ok()) << status;
      }
      ASSERT_TRUE(stream->Finish().ok());
      results[t] = stream->Result();
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(results[0].applied.batches + results[1].applied.batches, kBatches);
  EXPECT_EQ(results[0].duplicates + results[1].duplicates, kBatches);
  absl::StatusOr<HistogramSnapshot> histogram = core.GetHistogram("m", kIn);
  ASSERT_TRUE(histogram.ok()) << histogram.status();
  absl::StatusOr<ModelInfo> info = core.GetModel("m");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->quantizers.at(0).stats.batches, kBatches);
  EXPECT_EQ(info->quantizers.at(0).stats.elements, 2 * kBatches);
}

TEST(SessionStreamTest, CommitMakesAppliedDurableAndDeleteForgets) {
  Metrics metrics;
  MemoryDurability durability;
  CalibrationCore core({.durability = &durability}, metrics);
  ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
  NoCallControl call;
  std::unique_ptr<RecordStream> stream = core.OpenRecordStream(call);
  for (int s = 1; s <= 3; ++s)
    ASSERT_TRUE(stream->Add(Header(s == 1 ? "m" : "", kSession, s)).ok());
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(stream->Result().applied_sequence, 3);
  EXPECT_EQ(stream->Result().durable_sequence, 0);  // nothing written yet

  absl::StatusOr<SessionSequences> committed = core.Commit("m", kSession);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->applied, 3);
  EXPECT_EQ(committed->durable, 3);
  ASSERT_TRUE(durability.written.contains("m"));
  absl::StatusOr<ModelSnapshot> on_disk = DecodeStateFile(durability.written["m"]);
  ASSERT_TRUE(on_disk.ok());
  EXPECT_EQ(on_disk->sessions.at(kSession), 3);

  EXPECT_EQ(core.Commit("m", "unknown")->applied, 0);
  EXPECT_EQ(core.Commit("m", std::string(129, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(core.Commit("gone", kSession).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(core.DeleteModel("m").ok());
  EXPECT_EQ(durability.forgotten, std::vector<std::string>{"m"});
  EXPECT_FALSE(durability.written.contains("m"));
}

TEST(SessionStreamTest, WithoutDurabilityCommitReportsAppliedAsDurable) {
  Metrics metrics;
  CalibrationCore core({}, metrics);
  ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
  NoCallControl call;
  std::unique_ptr<RecordStream> stream = core.OpenRecordStream(call);
  ASSERT_TRUE(stream->Add(Header("m", kSession, 7)).ok());
  ASSERT_TRUE(stream->Finish().ok());
  absl::StatusOr<SessionSequences> committed = core.Commit("m", kSession);
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(committed->applied, 7);
  EXPECT_EQ(committed->durable, 7);
}

// --- Sessions are charged to --max-state-bytes ---

// What a session of a 128-byte id, of a 16-byte one (kSession), of `n` bytes is charged.
constexpr int64_t kLong = 896 + 2 * 128, kShort = 896 + 2 * 16;
constexpr int64_t Charged(int64_t n) { return 896 + 2 * n; }

// A 128-byte id, the longest, numbered `i` in its first bytes.
std::string LongId(int i) {
  std::string id = absl::StrCat("long-", i, "-");
  id.resize(kMaxSessionIdBytes, 'x');
  return id;
}

// A model whose quantizers are max calibrators, charged to `budget`: a batch of a quantizer it
// has reserves a few bytes (a histogram's worst case would hide the sessions' bytes).
ModelConfig MaxConfig(const std::string& name, StateBudget* budget) {
  ModelConfig config{.name = name, .limits = {.state_budget = budget}};
  config.default_input.calibrator = CalibratorKind::kMax;
  return config;
}

TEST(SessionBudgetTest, TheTableChargesEachSessionItHoldsAndGivesBackTheForgotten) {
  EXPECT_EQ(SessionBytes(LongId(0)), kLong);
  EXPECT_EQ(SessionBytes(kSession), kShort);
  EXPECT_EQ(SessionBytes("s"), Charged(1));
  StateBudget budget(1 << 20);
  {
    SessionTable table(&budget, /*max_sessions=*/4);
    for (int i = 0; i < 10; ++i) {
      absl::StatusOr<std::shared_ptr<SessionTable::Session>> session =
          table.Touch(LongId(i), "model 'm'");
      ASSERT_TRUE(session.ok()) << session.status();
      (*session)->applied.store(1);
      // Until its batch is applied, a new session is held past the bound (nothing is forgotten
      // for a batch that may be refused).
      EXPECT_EQ(table.size(), std::min(i + 1, 5));
      table.Trim();
      EXPECT_EQ(table.size(), std::min(i + 1, 4));
      EXPECT_EQ(budget.used_bytes(), std::min(i + 1, 4) * kLong);
    }
    EXPECT_EQ(table.Get(LongId(5)).applied, 0);  // forgotten
    EXPECT_EQ(table.Get(LongId(6)).applied, 1);
    EXPECT_EQ(table.charged_bytes(), 4 * kLong);

    // A new session whose batch was refused is forgotten again, with its charge...
    absl::StatusOr<std::shared_ptr<SessionTable::Session>> refused = table.Touch("new", "m");
    ASSERT_TRUE(refused.ok());
    EXPECT_EQ(budget.used_bytes(), 4 * kLong + Charged(3));
    table.Forget("new", *refused);
    EXPECT_EQ(table.size(), 4u);
    EXPECT_EQ(budget.used_bytes(), 4 * kLong);
    // ...but not while another stream holds it (it may be about to apply a batch of it), nor
    // once a batch of it was applied.
    refused = table.Touch("new", "m");
    ASSERT_TRUE(refused.ok());
    absl::StatusOr<std::shared_ptr<SessionTable::Session>> other = table.Touch("new", "m");
    ASSERT_TRUE(other.ok());
    table.Forget("new", *refused);
    EXPECT_EQ(table.size(), 5u);
    (*other)->applied.store(3);
    other->reset();
    table.Forget("new", *refused);
    EXPECT_EQ(table.Get("new").applied, 3);
    table.Trim();
    EXPECT_EQ(table.charged_bytes(), 3 * kLong + Charged(3));
    EXPECT_EQ(budget.used_bytes(), 3 * kLong + Charged(3));
  }
  EXPECT_EQ(budget.used_bytes(), 0);  // the table gone (DeleteModel)
}

TEST(SessionBudgetTest, ANewSessionIsChargedAndOneThatDoesNotFitChangesNothing) {
  StateBudget budget(1 << 20);
  absl::StatusOr<std::shared_ptr<Model>> created = Model::Create(MaxConfig("net", &budget));
  ASSERT_TRUE(created.ok()) << created.status();
  std::shared_ptr<Model> model = *std::move(created);
  ASSERT_TRUE(Send(*model, kSession, 1).ok());
  ASSERT_TRUE(Send(*model, kSession, 2).ok());
  const int64_t used = budget.used_bytes();
  EXPECT_EQ(model->charged_bytes(), used);
  ASSERT_TRUE(Send(*model, LongId(1), 1).ok());
  EXPECT_EQ(budget.used_bytes(), used + kLong);
  EXPECT_EQ(model->charged_bytes(), used + kLong);
  ASSERT_TRUE(Send(*model, LongId(1), 2).ok());  // a known session costs nothing more
  EXPECT_EQ(budget.used_bytes(), used + kLong);

  // Leave a byte less than a new 128-byte session needs.
  StateBudget::Charge filler(&budget);
  ASSERT_TRUE(
      filler.Resize(budget.limit_bytes() - budget.used_bytes() - (kLong - 1), "filler").ok());
  const int64_t full = budget.used_bytes();
  absl::StatusOr<std::optional<BatchStats>> refused = Send(*model, LongId(2), 1);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr(absl::StrCat("model 'net': new session ",
                                     absl::BytesToHexString(LongId(2).substr(0, 32)), "... needs ",
                                     kLong, " more bytes of model state")));
  EXPECT_THAT(refused.status().message(), HasSubstr("--max-state-bytes 1048576"));
  EXPECT_EQ(budget.used_bytes(), full);
  EXPECT_EQ(Batches(*model), 4);
  EXPECT_EQ(model->Sequences(LongId(2)).applied, 0);
  absl::StatusOr<ModelSnapshot> snapshot = model->Snapshot();
  ASSERT_TRUE(snapshot.ok());
  const std::map<std::string, int64_t> sessions = {{kSession, 2}, {LongId(1), 2}};
  EXPECT_EQ(snapshot->sessions, sessions);
  // Known sessions go on; a short id still fits.
  ASSERT_TRUE(Send(*model, kSession, 3).ok());
  ASSERT_TRUE(Send(*model, "s", 1).ok());
  EXPECT_EQ(budget.used_bytes(), full + Charged(1));

  // A new session whose first batch is refused for another reason (3 channels where the
  // quantizer has 2) is not kept either, nor charged.
  filler.Settle(0);
  const std::vector<int64_t> two = {2}, three = {3};
  ASSERT_TRUE(model
                  ->RecordSequenced("w._weight_quantizer", two, std::vector<float>{1, 2}, 8,
                                    {.session_id = "s", .sequence = 2})
                  .ok());
  const int64_t before = budget.used_bytes();
  absl::StatusOr<std::optional<BatchStats>> bad =
      model->RecordSequenced("w._weight_quantizer", three, std::vector<float>{1, 2, 3}, 12,
                             {.session_id = LongId(3), .sequence = 1});
  ASSERT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_EQ(budget.used_bytes(), before);
  EXPECT_EQ(model->Sequences(LongId(3)).applied, 0);
  absl::StatusOr<ModelSnapshot> after = model->Snapshot();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->sessions.size(), 3u);

  // Reset keeps the sessions and their charge; their model's deletion gives everything back.
  model->Reset();
  EXPECT_EQ(budget.used_bytes(), kModelBytes + 3 + kShort + kLong + Charged(1));
  EXPECT_EQ(model->charged_bytes(), budget.used_bytes());
  model.reset();
  EXPECT_EQ(budget.used_bytes(), 0);
}

TEST(SessionBudgetTest, ForgottenSessionsGiveTheirChargeBack) {
  StateBudget budget(int64_t{1} << 30);
  absl::StatusOr<std::shared_ptr<Model>> model =
      Model::Create({.name = "net", .limits = {.state_budget = &budget}});
  ASSERT_TRUE(model.ok());
  ASSERT_TRUE(Send(**model, kSession, 1).ok());
  const int64_t one = budget.used_bytes();
  for (int i = 0; i < static_cast<int>(SessionTable::kMaxSessions) + 100; ++i) {
    ASSERT_TRUE(Send(**model, LongId(i), 1).ok());
  }
  // kSession (the least recently used) and the first 100 long ones are forgotten.
  EXPECT_EQ((*model)->Sequences(kSession).applied, 0);
  EXPECT_EQ(budget.used_bytes(), one - kShort + kLong * SessionTable::kMaxSessions);
}

TEST(SessionBudgetTest, DeleteModelGivesTheSessionsBack) {
  Metrics metrics;
  CalibrationCore core({.max_state_bytes = 1 << 20}, metrics);
  const int64_t start = core.state_budget().used_bytes();
  ASSERT_TRUE(core.CreateModel({.name = "m"}).ok());
  const int64_t empty = core.state_budget().used_bytes();
  NoCallControl call;
  for (int i = 0; i < 3; ++i) {
    std::unique_ptr<RecordStream> stream = core.OpenRecordStream(call);
    ASSERT_TRUE(stream->Add(Header("m", LongId(i), 1)).ok());
    ASSERT_TRUE(stream->Finish().ok());
  }
  // The quantizer, then three sessions.
  EXPECT_GT(core.state_budget().used_bytes(), empty + 3 * kLong);
  ASSERT_TRUE(core.DeleteModel("m").ok());
  EXPECT_EQ(core.state_budget().used_bytes(), start);
}

TEST(SessionBudgetTest, ARestoredStateChargesItsSessions) {
  absl::StatusOr<std::shared_ptr<Model>> created = Model::Create(MaxConfig("net", nullptr));
  ASSERT_TRUE(created.ok()) << created.status();
  std::shared_ptr<Model> model = *created;
  ASSERT_TRUE(Send(*model, kSession, 1).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Send(*model, LongId(i), 1).ok());
  absl::StatusOr<ModelSnapshot> snapshot = model->Snapshot();
  ASSERT_TRUE(snapshot.ok());
  ASSERT_EQ(snapshot->sessions.size(), 4u);
  ModelSnapshot bare = *snapshot;
  bare.sessions.clear();

  StateBudget budget(1 << 20);
  int64_t without = 0;
  {
    absl::StatusOr<std::shared_ptr<Model>> restored =
        Model::FromSnapshot({.name = "net", .limits = {.state_budget = &budget}}, bare);
    ASSERT_TRUE(restored.ok()) << restored.status();
    without = budget.used_bytes();
  }
  absl::StatusOr<std::shared_ptr<Model>> restored =
      Model::FromSnapshot({.name = "net", .limits = {.state_budget = &budget}}, *snapshot);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(budget.used_bytes(), without + kShort + 3 * kLong);
  EXPECT_EQ((*restored)->charged_bytes(), budget.used_bytes());
  EXPECT_EQ((*restored)->Sequences(LongId(2)).applied, 1);
  restored->reset();
  EXPECT_EQ(budget.used_bytes(), 0);

  // A budget with room for all but the sessions refuses the state, holding nothing.
  StateBudget small(without + kShort + 3 * kLong - 1);
  absl::StatusOr<std::shared_ptr<Model>> refused =
      Model::FromSnapshot({.name = "net", .limits = {.state_budget = &small}}, *snapshot);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("model 'net' from the state: a table of 4 sessions needs 4384 more bytes"));
  EXPECT_EQ(small.used_bytes(), 0);
}

}  // namespace
}  // namespace qcal::server
