// One Record stream, independent of gRPC: chunks in (see BatchAssembler for the chunking
// contract), each completed batch decoded and applied to the model's quantizer at once. Each
// batch holds a reservation of the server's InflightBudget from its header until it is applied
// or dropped; Add() blocks while the reservation waits (the caller, not reading further
// messages, applies backpressure to the client).
//
//   RecordStream stream(registry, metrics, max_batch_bytes, budget, trimmer.Begin(), call);
//   for (RecordChunk& chunk : incoming) QCAL_RETURN_IF_ERROR(stream.Add(std::move(chunk)));
//   QCAL_ASSIGN_OR_RETURN(BatchStats totals, stream.Finish());
//
// On the first error the stream is over: batches applied before it stay applied, the refused
// one changes nothing.
#ifndef QCAL_SERVER_CORE_RECORD_STREAM_H_
#define QCAL_SERVER_CORE_RECORD_STREAM_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "server/core/batch_assembler.h"
#include "server/core/call_control.h"
#include "server/core/idle_trimmer.h"
#include "server/core/inflight_budget.h"
#include "server/core/metrics.h"
#include "server/core/model_registry.h"
#include "server/core/partial_state.h"
#include "server/core/quantizer_state.h"

namespace qcal::server {

// One message of the stream (RecordRequest without the wire types).
struct RecordChunk {
  // Required in the first chunk; later ones may leave it empty or repeat it.
  std::string model{};
  // Required with `header`.
  std::string quantizer{};
  // Starts a new batch.
  std::optional<BatchHeader> header{};
  std::string data{};
  // A pre-aggregated batch of its own (with `quantizer`, without `header` and `data`), and its
  // serialized size on the wire (counted in the statistics' bytes).
  std::optional<PartialState> partial{};
  int64_t partial_bytes = 0;
  // Exactly-once (RecordRequest.session_id / sequence): the session, in the first chunk (later
  // ones may leave it empty or repeat it), and the sequence of the batch a chunk with `header`
  // or `partial` starts (0 elsewhere).
  std::string session_id{};
  int64_t sequence = 0;
};

// What a Record stream did (RecordResponse), also after an error.
struct RecordStreamResult {
  BatchStats applied{};
  // With a session id: the session's last applied and durable sequences (durable == applied
  // in a core without Durability); 0 without one.
  int64_t applied_sequence = 0;
  int64_t durable_sequence = 0;
  // Batches dropped because their sequence had been applied before.
  int64_t duplicates = 0;
};

class RecordStream {
 public:
  // Counts itself in metrics' active streams while it lives. `budget` and `call` must outlive it;
  // `activity` keeps the server from giving memory back while the stream runs. `durability`:
  // whether the core has a Durability (else a session's durable sequence is its applied one).
  RecordStream(ModelRegistry& registry, Metrics& metrics, int64_t max_batch_bytes,
               InflightBudget& budget, IdleTrimmer::Activity activity, const CallControl& call,
               bool durability = false);
  ~RecordStream();
  RecordStream(const RecordStream&) = delete;
  RecordStream& operator=(const RecordStream&) = delete;

  // Takes one chunk; applies the batch it completes. A chunk with a header first waits for the
  // batch's reservation (InflightBudget::Reserve).
  // A chunk with a partial state is merged at once (Model::RecordPartial).
  // Errors: INVALID_ARGUMENT for a first chunk without a model, a chunk naming another model or
  // quantizer, and the chunking errors of BatchAssembler; a partial state with a header or data,
  // without a quantizer, or while a tensor batch is incomplete; RESOURCE_EXHAUSTED for an over-size
  // batch, or one that waited for --max-inflight-bytes until the call's deadline (or
  // --max-inflight-wait-seconds); CANCELLED when the call is cancelled while it waits; NOT_FOUND
  // for an unknown (or since deleted) model; those of Model::Record and Model::RecordPartial.
  // With a session: a batch whose sequence was applied before is read whole (its framing
  // checked) and dropped (RecordStreamResult::duplicates); the next one is applied; one further
  // on is FAILED_PRECONDITION naming the missing sequences (Model::RecordSequenced).
  // INVALID_ARGUMENT for a session_id not of 1 to 128 bytes, one that differs from the first
  // chunk's (or comes after a first chunk without one), a sequence without session_id, on a
  // chunk that starts no batch, or < 1 on a batch of a session.
  absl::Status Add(RecordChunk chunk);

  // End of the stream: what was applied. INVALID_ARGUMENT when it ends mid-batch.
  absl::StatusOr<BatchStats> Finish();

  // What was applied so far (also after an error: the batches before it).
  const BatchStats& applied() const { return applied_; }
  // The RecordResponse: applied(), and with a session its sequences (read from the model now)
  // and the duplicates dropped.
  RecordStreamResult Result() const;

 private:
  // Add() without releasing the reservation on errors.
  absl::Status AddChunk(RecordChunk chunk);
  // Decodes (into a pooled scratch buffer) and applies a complete batch, looking the model up
  // again.
  absl::Status Apply(const Batch& batch);
  // Checks where a partial state stands in the stream and merges it.
  absl::Status ApplyPartial(RecordChunk& chunk);
  // Checks the chunk's session_id and sequence (see Add).
  absl::Status CheckSession(const RecordChunk& chunk, const std::string& where);
  // Counts a batch's outcome: applied (stats) or a duplicate (nullopt).
  void Count(const std::optional<BatchStats>& applied);

  ModelRegistry& registry_;
  Metrics& metrics_;
  InflightBudget& budget_;
  const IdleTrimmer::Activity activity_;
  const CallControl& call_;
  // Empty until the first chunk.
  std::string model_;
  BatchAssembler assembler_;
  // The batch in progress's bytes and decode scratch; empty between batches.
  InflightBudget::Reservation reservation_;
  BatchStats applied_;
  const bool durability_;
  // Empty without a session.
  std::string session_id_;
  // The sequence of the batch in progress (0 without a session), and whether it was found a
  // duplicate at its header (its bytes are then read and dropped, not decoded).
  int64_t sequence_ = 0;
  bool duplicate_ = false;
  int64_t duplicates_ = 0;
};

}  // namespace qcal::server

#endif  // QCAL_SERVER_CORE_RECORD_STREAM_H_
