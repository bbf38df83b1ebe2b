// State files on arbitrary bytes: bytes -> StateFile -> ModelState -> ModelSnapshot -> Model, as
// LoadState does it (StateLoad: create a model from the file, or merge it into a model holding
// data). A loaded model must save again into a file that decodes; a refused merge must change
// nothing.
//
// Input: one options byte, then bytes. Bit 0 of the options: the bytes are a serialized
// qcal.v1.ModelState, wrapped here into a StateFile with the right magic, version and CRC-32 (so
// that the fuzzer reaches the model state's checks, which a random mutation's CRC mismatch would
// otherwise hide); clear: the bytes are the whole file. Bit 1: the merge target holds the
// reference histogram layout. Bit 2: ComputeAmax (percentile) on the loaded model. Seeds:
// corpus/state_file, written by make_corpus.py.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "qcal/v1/calibration.pb.h"
#include "server/core/model_registry.h"
#include "server/core/state_load.h"
#include "server/storage/model_state.h"
#include "server/storage/state_file.h"
#include "tests/fuzz/fuzz_model.h"

namespace qcal::server {
namespace {

constexpr int64_t kMaxStateBytes = int64_t{1} << 20;

[[noreturn]] void Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "fuzz_state_file: %s: %s\n", what, status.ToString().c_str());
  std::abort();
}

std::string StateBytes(const Model& model) {
  absl::StatusOr<ModelSnapshot> snapshot = model.Snapshot();
  if (!snapshot.ok()) Fail("snapshot", snapshot.status());
  v1::ModelState proto;
  ModelSnapshotToProto(*snapshot, &proto);
  // A call, even a refused one, is a use of the model (--model-ttl counts from it).
  proto.clear_last_used_unix_seconds();
  std::string bytes;
  proto.SerializeToString(&bytes);
  return bytes;
}

std::string FileBytes(const uint8_t* data, size_t size, bool wrap) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!wrap) return bytes;
  v1::StateFile file;
  file.set_magic(std::string(kStateFileMagic));
  file.set_format_version(kStateFileVersion);
  file.set_crc32(StateFileCrc32(bytes));
  file.set_model_state(std::move(bytes));
  return file.SerializeAsString();
}

void Run(const uint8_t* data, size_t size) {
  if (size < 1) return;
  const uint8_t options = data[0];
  const std::string file = FileBytes(data + 1, size - 1, options & 1);
  const kernels::HistogramLayout layout =
      (options & 2) ? kernels::HistogramLayout::kReference : kernels::HistogramLayout::kMergeable;
  ModelRegistry registry;
  std::shared_ptr<Model> target = NewFuzzModel(layout);
  const std::vector<float> values = {0.5f, -1.0f, 2.0f, 0.0f, -3.0f, 1.5f, 0.0f, 4.0f};
  for (const char* quantizer : kFuzzQuantizers) {
    if (!target->Record(quantizer, std::vector<int64_t>{2, 4}, values, 32).ok()) std::abort();
  }
  if (!registry.Insert(target).ok()) std::abort();

  // LoadState creating a model.
  StateLoad create(registry, FuzzModelConfig(layout), kMaxStateBytes);
  if (create.Add({.model = "loaded", .merge = false, .data = file}).ok()) {
    absl::StatusOr<std::shared_ptr<Model>> loaded = create.Finish();
    if (Report("load", loaded.status())) {
      // SaveState of what was loaded decodes, and loads again.
      absl::StatusOr<ModelSnapshot> snapshot = (*loaded)->Snapshot();
      if (!snapshot.ok()) Fail("snapshot of a loaded model", snapshot.status());
      absl::StatusOr<ModelSnapshot> again = DecodeStateFile(EncodeStateFile(*snapshot));
      if (!again.ok()) Fail("a loaded model's state file does not decode", again.status());
      absl::StatusOr<std::shared_ptr<Model>> reloaded =
          Model::FromSnapshot(FuzzModelConfig(layout), *again);
      if (!reloaded.ok()) Fail("a loaded model's state file does not load", reloaded.status());
      if (options & 4) {
        Report("compute amax",
               (*loaded)->ComputeAmax({.params = {.method = "percentile"}}).status());
      }
    }
  }

  // LoadState merging into a model with data.
  const std::string before = StateBytes(*target);
  StateLoad merge(registry, FuzzModelConfig(layout), kMaxStateBytes);
  if (merge.Add({.model = "fuzz", .merge = true, .data = file}).ok()) {
    absl::StatusOr<std::shared_ptr<Model>> merged = merge.Finish();
    if (!Report("merge", merged.status()) && StateBytes(*target) != before) {
      Fail("a refused merge changed the model", merged.status());
    }
  }
}

}  // namespace
}  // namespace qcal::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  qcal::server::Run(data, size);
  return 0;
}
