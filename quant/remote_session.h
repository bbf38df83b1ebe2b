// One model on a qcal-server, shared by the RemoteCalibrators of a network: it declares their
// quantizers, streams their batches and asks the server for amax (../shared/DESIGN.md: trainer ->
// client -> gRPC Record -> server kernels). Target qcal_quant_remote.
//
//   auto client = qcal::Client::Create("127.0.0.1:50051");
//   auto session = qcal::quant::RemoteSession::Create(std::move(*client), "fashion_cnn");
//   qcal::quant::UseRemoteCalibrator(*model->conv1->input_quantizer(), session,
//                                    "conv1._input_quantizer");          // remote_calibrator.h
//   ... calibration forward passes ...                                   // Record, in background
//   model->conv1->input_quantizer()->load_calib_amax({.method = "entropy"});   // ComputeAmax
//
// The model is created on the server on first use (the first Record or amax request), with
// every quantizer declared until then; declaring one later is a c10::Error. A model that
// already exists is an error unless Options::reuse_existing_model, and then every declared
// quantizer must exist there with the same descriptor (several trainers feeding one model).
// ComputeAmax computes the whole model's table once per method and arguments and reuses it while
// the model's batch counts are unchanged (one GetModel call checks them, so batches other
// trainers send are seen too): loading every quantizer's amax costs one server computation.
//
// Errors: c10::Error carrying the server's or client's status (UNAVAILABLE when nothing
// listens, NOT_FOUND, FAILED_PRECONDITION...), c10::ValueError for INVALID_ARGUMENT. A failed
// background Record surfaces at the next Record, Flush or ComputeAmax (see qcal/client.h).
// Thread-safe.
#ifndef QCAL_QUANT_REMOTE_SESSION_H_
#define QCAL_QUANT_REMOTE_SESSION_H_

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "qcal/client.h"
#include "qcal/partial_state.h"
#include "quant/calibrator.h"

namespace qcal::quant {

class RemoteSession {
 public:
  struct Options {
    // Join an existing model whose quantizers match the declared ones instead of failing.
    bool reuse_existing_model = false;
    SessionOptions session{};
    // Layout of the model's histograms when this session creates it (CreateModelRequest);
    // UNSPECIFIED is the server's default (mergeable). The local HistogramCalibrator has the
    // reference layout: ask for HISTOGRAM_LAYOUT_REFERENCE to get its amax bit for bit.
    v1::HistogramLayout histogram_layout = v1::HISTOGRAM_LAYOUT_UNSPECIFIED;
    // Client-side pre-aggregation (qcal/partial_state.h): Record() counts each tensor into its
    // quantizer's partial state instead of sending it, CPU tensors with qcal's kernels, tensors
    // on another device (CUDA) with ATen ops on that device (quant/partial_count.h), exactly as
    // the server would count them; a quantizer's state is sent every `aggregate_send_every`
    // Record() calls of it (0: only at Flush), and at Flush(), ComputeAmax() and destruction.
    // Histogram quantizers need a mergeable-layout model (FAILED_PRECONDITION otherwise, as a
    // c10::Error at the first Record()).
    bool aggregate = false;
    int64_t aggregate_send_every = 0;
  };

  // Contacts no server yet.
  static std::shared_ptr<RemoteSession> Create(std::shared_ptr<Client> client, std::string model,
                                               Options options);
  static std::shared_ptr<RemoteSession> Create(std::shared_ptr<Client> client, std::string model) {
    return Create(std::move(client), std::move(model), Options{});
  }
  ~RemoteSession();
  RemoteSession(const RemoteSession&) = delete;
  RemoteSession& operator=(const RemoteSession&) = delete;

  // Adds a quantizer to the model to be created. Declaring the same name again with the same
  // spec is a no-op; with another spec, or after the model was created, c10::Error.
  void Declare(const v1::QuantizerSpec& spec);

  // Queues `tensor` (floating, any device; float32, float16, bfloat16 and float64 travel as
  // they are, other dtypes as float32) as one batch of `quantizer`; returns at once. With
  // Options::aggregate, counts it instead (above).
  void Record(const std::string& quantizer, const at::Tensor& tensor);

  // `quantizer`'s amax from the server's table for `args` (method "" asks for "max", which
  // max calibrators always report); std::nullopt when the quantizer has no data yet.
  // c10::ValueError for arguments the wire cannot carry (start_bin or stride 0).
  std::optional<v1::QuantizerAmax> ComputeAmax(const std::string& quantizer,
                                               const CalibAmaxArgs& args);

  // Sends the counted partial states (Options::aggregate), then waits until every recorded batch
  // is applied; throws the first error.
  void Flush();
  // Drops the collected data and amax table of the whole model (ResetModel).
  void Reset();

  const std::string& model() const { return model_; }
  Client& client() { return *client_; }
  // The underlying session, e.g. for AmaxTable() or ExportOnnx().
  ModelSession& session() { return *session_; }

 private:
  RemoteSession(std::shared_ptr<Client> client, std::string model, Options options);
  // Creates (or joins) the model once. Requires mu_.
  void EnsureModelLocked();
  // True when no batch reached the model (from this session or any other) since the cached
  // table was computed: the server's batch counts still equal the table's. Requires mu_.
  bool CachedTableCurrentLocked();
  // How `quantizer`'s state is counted (one GetModel, cached). Requires mu_.
  PartialTarget TargetLocked(const std::string& quantizer);
  // Queues every quantizer's counted state. Requires mu_.
  absl::Status SendPendingLocked();

  struct Pending {
    v1::PartialState state;
    int64_t calls = 0;
  };

  const std::shared_ptr<Client> client_;
  const std::string model_;
  const Options options_;
  const std::unique_ptr<ModelSession> session_;

  absl::Mutex mu_;
  std::map<std::string, v1::QuantizerSpec> declared_;  // guarded by mu_
  bool created_ = false;                               // guarded by mu_
  // The last table computed, for the arguments of cached_key_.
  std::optional<v1::AmaxTable> cached_table_;  // guarded by mu_
  std::string cached_key_;                     // guarded by mu_
  // Options::aggregate: the model's configuration, and the states counted but not yet sent.
  std::optional<v1::ModelInfo> info_;       // guarded by mu_
  std::map<std::string, Pending> pending_;  // guarded by mu_
};

}  // namespace qcal::quant

#endif  // QCAL_QUANT_REMOTE_SESSION_H_
