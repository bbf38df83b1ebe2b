// The qcal client: talks to qcal-server over gRPC (the contract in
// proto/qcal/v1/calibration.proto).
//
// A Client holds one channel to a server and manages models; a ModelSession streams activation
// tensors into one model and asks for its amax table, histograms and QDQ ONNX export.
//
//   auto client = qcal::Client::Create("127.0.0.1:50051");      // StatusOr<unique_ptr<Client>>
//   if (!client.ok()) return client.status();
//   (*client)->CreateModel("resnet18");                         // ALREADY_EXISTS if it exists
//   (*client)->CreateModel("resnet18", {.default_input = qcal::QuantizerDescriptor{
//                                           .num_bins = 4096},
//                                       .exist_ok = true});       // create, or join if equal
//   std::unique_ptr<qcal::ModelSession> session = (*client)->Model("resnet18");
//   session->Record("conv1._input_quantizer", view);            // copies, returns at once
//   session->Flush();                                           // everything applied (or error)
//   auto table = session->ComputeAmaxTable({.method = "entropy"});  // + JSON, TensorRT cache
//   auto stored = session->AmaxTable();                         // the stored table, same forms
//   auto qdq = session->ExportOnnx(float_onnx_bytes);           // QDQ model bytes + warnings
//   auto state = (*client)->SaveState("resnet18");              // StateFile bytes (a file)
//   (*other)->LoadState("resnet18", *state, {.merge = true});   // add them into another model
//
// Errors. Every call returns absl::Status / absl::StatusOr. A server error keeps its gRPC code and
// message unchanged (absl::StatusCode and grpc::StatusCode use the same google.rpc numbers):
// NOT_FOUND (unknown model or quantizer), ALREADY_EXISTS, INVALID_ARGUMENT (bad dtype, shape,
// byte count, axis, method, percentile, start_bin, malformed or opset < 13 ONNX),
// FAILED_PRECONDITION (no data yet, no ONNX or amax table yet, CreateModel with exist_ok on a model
// configured otherwise), RESOURCE_EXHAUSTED (a batch above
// the server's --max-batch-bytes), UNAVAILABLE (no server at the address), DEADLINE_EXCEEDED
// (ClientOptions::timeout ran out). The client itself returns INVALID_ARGUMENT, sending nothing,
// for: a model, quantizer or ONNX tensor name that is not a name by qcal/names.h (empty, over
// 1024 bytes, not UTF-8, or holding a control character), a method or target that is not UTF-8,
// a byte count that does not match shape x dtype, a percentile outside (0, 100], a start_bin or
// stride below 1 (0 cannot be sent: the wire reads it as "default"), and a parameter that does
// not apply to the method (percentile without "percentile", start_bin / stride without "entropy"
// or "mse"), and a tensor_map for ExportOnnx without ONNX bytes. qcal-server applies the same
// name and parameter rules to whatever it receives.
//
// Threading. Client and ModelSession are thread-safe. Each ModelSession owns one background sender
// thread and at most one open Record stream; several sessions (in one or many processes) may feed
// the same model at once.
#ifndef QCAL_CLIENT_CLIENT_H_
#define QCAL_CLIENT_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qcal/progress.h"
#include "qcal/tensor.h"
#include "qcal/v1/calibration.grpc.pb.h"
#include "qcal/v1/calibration.pb.h"

namespace qcal {

namespace internal {
class Aggregator;
struct Connection;
class RecordSender;
}  // namespace internal

// "127.0.0.1:50051": the default port of qcal-server.
inline constexpr std::string_view kDefaultAddress = "127.0.0.1:50051";

// $QCAL_SERVER when set and not empty, else kDefaultAddress.
std::string DefaultAddress();

struct ClientOptions {
  // Deadline of each unary call and each UploadOnnx / ExportOnnx / SaveState / LoadState
  // stream; unset means none.
  // Record streams have no deadline (they live as long as data keeps coming).
  std::optional<absl::Duration> timeout;
  // Largest message the client accepts (ExportOnnx chunks, large histograms).
  int max_receive_message_bytes = 256 << 20;
  // TLS (README, "Security"): paths of PEM files, read once by Client::Create. tls_ca set: the
  // channel uses TLS and trusts the server certificates this CA signed (the address's host name
  // or IP address must be in the server's certificate). tls_cert and tls_key (both or neither,
  // and only with tls_ca): the client's certificate and key, for a server with --tls-client-ca.
  // All empty: plaintext.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // Bearer token sent with every call as "authorization: Bearer TOKEN" (for a server with
  // --auth-tokens); empty: $QCAL_TOKEN when set, else none. It is sent on plaintext channels too
  // (per-call metadata), where anyone on the path can read it: use TLS beyond loopback.
  std::string token;
};

struct SessionOptions {
  // Bytes of recorded tensors the session may hold before Record() blocks: queued, and sent but
  // not yet known durable (kept to be resent after a reconnect; see ModelSession::Record). A
  // single tensor larger than this is still accepted when nothing is held.
  size_t max_queue_bytes = size_t{256} << 20;
  // Data bytes per Record message: 1 .. kMaxChunkBytes. Small values only make sense in tests
  // (the result never depends on the chunking, see calibration.proto).
  size_t chunk_bytes = size_t{4} << 20;
  // Client-side pre-aggregation (qcal/partial_state.h). When true, Record() counts each tensor on
  // the calling thread into its quantizer's partial state, exactly as the server would count it,
  // and sends nothing; the state goes out as one pre-aggregated batch (RecordPartial) every
  // `aggregate_send_every` Record() calls of that quantizer, and at Flush() (and so before
  // every call that flushes, and when the session is destroyed). The session reads the model's
  // configuration once (GetModel, at the first Record()) to learn each quantizer's calibrator:
  // a declared quantizer's spec, else the model's default for its role.
  bool aggregate = false;
  // Record() calls per quantizer between sends; 0: only at Flush().
  int64_t aggregate_send_every = 0;
  // How long the session keeps reconnecting (README, "What survives what") after its Record
  // stream broke with UNAVAILABLE (the server is gone or restarting) or CANCELLED (the server
  // closed it, e.g. an idle stream) before it gives up: the next Record() or Flush() then returns
  // UNAVAILABLE naming this deadline and the batches not confirmed. Counted from the first
  // failure; a stream that reaches the server again starts the count anew.
  absl::Duration reconnect_deadline = absl::Seconds(60);
  // Called on the sender thread after each Record message written (qcal/progress.h): the data
  // bytes the session wrote so far, resends after a reconnect included; total kUnknownTotal
  // (the caller knows what it recorded).
  ProgressCallback progress = nullptr;
};

// The backoff between reconnection attempts of a session's Record stream: the first wait is
// kReconnectInitialBackoff, each next one twice the last, at most kReconnectMaxBackoff (and never
// past SessionOptions::reconnect_deadline).
inline constexpr absl::Duration kReconnectInitialBackoff = absl::Milliseconds(100);
inline constexpr absl::Duration kReconnectMaxBackoff = absl::Seconds(5);

// A session's exactly-once sequences (calibration.proto, RecordRequest.sequence): the last batch
// the server applied and the last one durable (on disk with --data-dir; equal to applied without
// it, where a server restart loses it).
struct CommitResult {
  int64_t applied_sequence = 0;
  int64_t durable_sequence = 0;
};

// Largest data chunk of one Record / UploadOnnx message: 4 MiB, well inside the server's 16 MiB
// message limit.
inline constexpr size_t kMaxChunkBytes = size_t{4} << 20;

// One amax method and its parameters (ComputeAmaxRequest / MethodOverride).
struct AmaxMethod {
  // "max", "entropy", "mse" or "percentile" (the server checks it).
  std::string method = "max";
  // percentile method only: in (0, 100]; unset means 99.99.
  std::optional<double> percentile;
  // entropy and mse only: first candidate bin (>= 1; unset means 128) and step (>= 1; unset
  // means 1).
  std::optional<int32_t> start_bin;
  std::optional<int32_t> stride;
};

// The fields mean what AmaxMethod's do.
struct ComputeAmaxOptions {
  std::string method = "max";
  std::optional<double> percentile;
  std::optional<int32_t> start_bin;
  std::optional<int32_t> stride;
  // Quantizer name -> method replacing the one above for that quantizer.
  std::map<std::string, AmaxMethod> overrides;
  // The forms of the table ComputeAmaxTable returns (the others stay empty); empty means all
  // three. Per-channel tables are large in the message and JSON forms: asking for one keeps the
  // response within the server's --max-response-bytes. The cache's warnings come with
  // TABLE_FORM_TRT_CACHE.
  std::vector<v1::TableForm> forms;
};

struct ExportOptions {
  // When set, the server computes the amax table first, as ComputeAmax would, and stores it if
  // the export succeeds; otherwise it uses the stored table (FAILED_PRECONDITION when there is
  // none).
  std::optional<ComputeAmaxOptions> compute;
  // Per-channel axis of ConvTranspose weights: "tensorrt" (the default when empty; axis 0) or
  // "onnxruntime" (axis 1).
  std::string target;
  // FP8 E4M3 quantizers as "onnx" (the default when empty: opset-19 QuantizeLinear with a
  // FLOAT8E4M3FN zero point) or "trt" (TensorRT's TRT_FP8QuantizeLinear custom ops).
  std::string fp8_ops;
  // Quantizer -> ONNX tensor pairs overriding the automatic matching, for the ONNX bytes given
  // to ExportOnnx (INVALID_ARGUMENT without them).
  std::map<std::string, std::string> tensor_map;
  // Called after each chunk of the ONNX bytes given to ExportOnnx is sent (qcal/progress.h):
  // bytes sent, of their size.
  ProgressCallback progress = nullptr;
  // Also return ExportResult::explain (ExportOnnxRequest.explain); off by default.
  bool explain = false;
};

// One node input that a placement rule of the export considered (ExportOnnxResponse.explain).
struct ExplainEntry {
  // The node's name and op_type, which of its inputs (0-based), and that input's tensor.
  std::string node;
  std::string op_type;
  int32_t input = 0;
  std::string tensor;
  // "quantized" (a new Q/DQ pair feeds it), "rewritten" / "kept" (it came from a
  // DequantizeLinear of the uploaded model), "skipped" (left float; see reason).
  std::string decision;
  // The quantizer whose amax gave the scale, or the one looked for.
  std::string quantizer;
  // The placement rule, e.g. "weighted-op input", "residual add shortcut", "pooling input",
  // "concat shared scale".
  std::string rule;
  // Why not, or how the scale was chosen.
  std::string reason;
};

struct ExportResult {
  // Serialized ModelProto with QuantizeLinear/DequantizeLinear pairs.
  std::string onnx;
  // E.g. an amax of 0 replaced by scale 1, naming the tensor and channel.
  std::vector<std::string> warnings;
  // The method of the amax table the export used (ExportOnnxResponse.amax_method).
  std::string amax_method;
  // True when the export computed that table (ExportOptions::compute); false when it used the
  // stored one, which any client may have computed last.
  bool computed_table = false;
  // With ExportOptions::explain: every node input considered, in graph order; else empty.
  std::vector<ExplainEntry> explain;
};

// `QuantizerDescriptor::axis = kPerTensor` asks for a per-tensor calibrator.
inline constexpr std::optional<int32_t> kPerTensor = std::nullopt;

// A quantizer's descriptor for CreateModel (pytorch-quantization's QuantDescriptor, the parts
// calibration uses). A field left unset takes the value of the role's default descriptor: for
// ModelOptions::default_input / default_weight, pytorch-quantization's (input: 8-bit signed
// per-tensor histogram of 2048 bins; weight: 8-bit signed per-channel on axis 0, max); for a
// declared quantizer, the model's default_input, or default_weight for a name ending in
// "_weight_quantizer", as given in the same ModelOptions. An unset axis is the role's axis for a
// max calibrator and per-tensor for a histogram.
struct QuantizerDescriptor {
  // Declared quantizers: the quantizer ("conv1._input_quantizer"), a name (qcal/names.h).
  // Default descriptors: empty.
  std::string name;
  // 2..16.
  std::optional<int32_t> num_bits;
  std::optional<bool> is_unsigned;
  // Set: the channel axis of a per-channel max calibrator (negative counts from the end), or
  // kPerTensor. Histograms are per-tensor.
  std::optional<std::optional<int32_t>> axis;
  // "max" or "histogram".
  std::optional<std::string> calibrator;
  // Histogram bins on the first batch: 1 .. 2^24 (the server's --max-num-bins may allow fewer).
  std::optional<int32_t> num_bins;
  // Histogram only: drop exact zeros before binning.
  std::optional<bool> skip_zeros;
  // "int" (num_bits integers) or "fp8_e4m3" (FP8 E4M3, scale = amax / 448; calibration.proto's
  // QuantFormat). FP8 takes num_bits 8 when num_bits is unset, and refuses any other num_bits and
  // is_unsigned true (pytorch-quantization writes it num_bits=(4, 3)).
  std::optional<std::string> format;
};

struct ModelOptions {
  // Descriptors of the quantizers first seen by Record; unset: pytorch-quantization's.
  std::optional<QuantizerDescriptor> default_input;
  std::optional<QuantizerDescriptor> default_weight;
  // Quantizers declared up front (kept by ResetModel), each with its name.
  std::vector<QuantizerDescriptor> quantizers;
  // When the model exists: false is ALREADY_EXISTS; true returns it when its configuration
  // (defaults and declared quantizers, in any order) equals this one, FAILED_PRECONDITION naming
  // the first difference otherwise. One server call: two creators cannot race.
  bool exist_ok = false;
  // Layout of the model's histogram calibrators (HistogramLayout in calibration.proto):
  // "mergeable" (bins of width 2^k anchored at 0: the same data gives the same counts in any
  // order, batching or split, and states add exactly) or "reference" (pytorch-quantization's
  // bins, fixed by the first batch). Unset: the server's default (its --default-histogram-layout,
  // mergeable unless set). Part of the configuration that exist_ok compares.
  std::optional<std::string> histogram_layout = std::nullopt;
};

// "int" -> QUANT_FORMAT_INT, "fp8_e4m3" -> QUANT_FORMAT_FP8_E4M3; INVALID_ARGUMENT naming `text`
// for anything else (case-sensitive).
absl::StatusOr<v1::QuantFormat> ParseQuantFormat(std::string_view text);
// "int", "fp8_e4m3", or "unknown" (a value newer than this client).
std::string_view QuantFormatName(v1::QuantFormat format);

// "mergeable" -> HISTOGRAM_LAYOUT_MERGEABLE, "reference" -> HISTOGRAM_LAYOUT_REFERENCE;
// INVALID_ARGUMENT naming `text` for anything else (case-sensitive).
absl::StatusOr<v1::HistogramLayout> ParseHistogramLayout(std::string_view text);
// "mergeable", "reference", or "unspecified" (a server without layouts).
std::string_view HistogramLayoutName(v1::HistogramLayout layout);

struct LoadStateOptions {
  // false: create the model from the state (ALREADY_EXISTS when the name is taken); true: add
  // the state's calibrator state and counters into the existing model.
  bool merge = false;
  // Called after each piece is sent (qcal/progress.h): bytes sent, of the state's size (the
  // file's size when opened, for LoadStateFile).
  ProgressCallback progress = nullptr;
};

// The request CreateModel(model, options) sends: every descriptor complete (unset fields filled
// in as QuantizerDescriptor says), so the server compares exactly what was asked for.
// INVALID_ARGUMENT, naming the descriptor ("default_input", "quantizer 'q'") and the field, for:
// a model or quantizer name that is not a name, a default descriptor with a name, a declared
// quantizer without one, num_bits outside 2..16, num_bins outside 1..2^24, a calibrator other
// than "max" or "histogram", a histogram with an axis, skip_zeros on a max calibrator, a format
// other than "int" or "fp8_e4m3", an FP8 descriptor with num_bits other than 8 or unsigned, a
// histogram_layout other than "mergeable" or "reference".
absl::StatusOr<v1::CreateModelRequest> CreateModelRequestFor(std::string_view model,
                                                             const ModelOptions& options);

// What a session's sender did so far (observability; the numbers only grow, except the queue).
struct SessionStats {
  // Batches (tensors, or pre-aggregated states) recorded but not yet written to the current
  // stream; batches written but not yet known durable (kept to be resent after a reconnect); the
  // bytes of both (what SessionOptions::max_queue_bytes bounds).
  size_t queued_batches = 0;
  size_t unconfirmed_batches = 0;
  size_t queued_bytes = 0;
  // Record() calls waiting for room in the queue right now.
  size_t blocked_records = 0;
  // Batches thrown away because an earlier send failed (see ModelSession::Record).
  int64_t dropped_batches = 0;
  // What the server applied (its counts, RecordResponse), each batch counted once when the
  // server first reports its sequence applied: equal to the server's count, also after an
  // idle-closed stream or a restart (resent batches it drops as duplicates were applied before).
  // applied_nonfinite is the sum of the streams' reports (only the server sees the values): a
  // stream that ended without a report adds nothing, one that applied a batch again after a
  // restart adds it twice.
  int64_t applied_batches = 0;
  int64_t applied_elements = 0;
  int64_t applied_nonfinite = 0;
  int64_t applied_bytes = 0;
  // Pre-aggregated batches (RecordPartial messages) the server applied (RecordResponse.partials);
  // applied_batches counts the tensors each stands for (PartialState.batches), applied_bytes the
  // bytes the server counts for it (its serialized PartialState, not the tensors').
  int64_t applied_partials = 0;
  // Exactly-once: the session's last batch sequence numbered, and the last ones the server
  // reported applied and durable (RecordResponse, Commit).
  int64_t last_sequence = 0;
  int64_t applied_sequence = 0;
  int64_t durable_sequence = 0;
  // Streams reopened after a broken one; batches written again on them; batches the server
  // reported as already applied and dropped (RecordResponse.duplicates).
  int64_t reconnects = 0;
  int64_t resent_batches = 0;
  int64_t duplicate_batches = 0;
};

class ModelSession;

// A connection to one qcal-server. Creating it does not contact the server: the first call does
// (UNAVAILABLE when nothing listens there).
class Client {
 public:
  // `address` is "host:port" (gRPC target syntax). INVALID_ARGUMENT when empty; INVALID_ARGUMENT
  // naming the option and the file when a TLS file cannot be read, tls_cert comes without tls_key
  // (or the other way round) or without tls_ca, or the token (or $QCAL_TOKEN) holds a byte
  // outside printable ASCII.
  static absl::StatusOr<std::unique_ptr<Client>> Create(std::string address,
                                                        ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const std::string& address() const;

  // ALREADY_EXISTS when the name is taken. The request may declare quantizers and defaults.
  absl::StatusOr<v1::ModelInfo> CreateModel(std::string_view model);
  absl::StatusOr<v1::ModelInfo> CreateModel(const v1::CreateModelRequest& request);
  // CreateModelRequestFor(model, options), sent; its errors, then the server's (ALREADY_EXISTS,
  // or with exist_ok FAILED_PRECONDITION for another configuration).
  absl::StatusOr<v1::ModelInfo> CreateModel(std::string_view model, const ModelOptions& options);
  // NOT_FOUND for an unknown model (also for the three below).
  absl::StatusOr<v1::ModelInfo> GetModel(std::string_view model);
  absl::StatusOr<std::vector<v1::ModelInfo>> ListModels();
  absl::Status DeleteModel(std::string_view model);
  // Drops collected data, amax table and statistics; keeps configuration and uploaded ONNX
  // (quantizers that Record created are removed, declared ones kept).
  absl::StatusOr<v1::ModelInfo> ResetModel(std::string_view model);
  // A durable point for `model` (calibration.proto, Commit): with --data-dir its state is on
  // disk when this returns. The sequences are those of no session ({0, 0}); a session's own
  // come from ModelSession::Commit(). NOT_FOUND for an unknown model; UNAVAILABLE when the
  // server cannot write the state (naming the file and the reason).
  absl::Status Commit(std::string_view model);

  // A session on `model`; it does not check that the model exists (Record into an unknown model
  // fails with NOT_FOUND at the next Record() or Flush()). May outlive the Client.
  std::unique_ptr<ModelSession> Model(std::string_view model, SessionOptions options = {});

  // State files (calibration.proto: SaveState, LoadState, StateFile) move a model's whole state
  // (configuration and layout, every quantizer's calibrator state and counters, the uploaded
  // ONNX with its tensor_map, the stored amax table) between models and servers:
  //
  //   absl::StatusOr<std::string> a = server_a->SaveState("m");        // the StateFile bytes
  //   server_b->LoadState("m", *a);                                    // a new model "m"
  //   server_b->LoadState("m", *other, {.merge = true});               // adds its counts
  //
  // The serialized StateFile of `model` (the concatenated StateChunk pieces): the bytes `qcal
  // state save` writes. NOT_FOUND for an unknown model; INVALID_ARGUMENT for a bad name (sent
  // nothing); RESOURCE_EXHAUSTED when the state is larger than the server sends. `progress`
  // (qcal/progress.h) is called after each piece received: bytes so far, total kUnknownTotal.
  absl::StatusOr<std::string> SaveState(std::string_view model,
                                        const ProgressCallback& progress = {});
  // Sends `state` (a StateFile, as SaveState returns it) in kMaxChunkBytes pieces and returns
  // the info of the model it created (merge false) or merged into (merge true). The server
  // reads and checks the whole file first, and a refused load changes nothing:
  // INVALID_ARGUMENT for a foreign, truncated or corrupt file (naming what is wrong: magic,
  // format version, CRC-32, a field) or a bad model name (the client's, sending nothing);
  // ALREADY_EXISTS without merge when `model` exists; NOT_FOUND with merge when it does not;
  // FAILED_PRECONDITION with merge for another configuration (defaults, declared quantizers,
  // layout), or reference-layout histograms whose edges differ; RESOURCE_EXHAUSTED for a file
  // larger than the server's --max-batch-bytes.
  absl::StatusOr<v1::ModelInfo> LoadState(std::string_view model, std::string_view state,
                                          const LoadStateOptions& options = {});
  // LoadState of the file at `path`, read and sent one kMaxChunkBytes piece at a time, so a file
  // of any size costs 4 MiB of memory here (the server refuses one past its --max-batch-bytes).
  // Local-file errors (qcal/local_file.h) "cannot read 'PATH': REASON", sending nothing, for a
  // file that cannot be opened (NOT_FOUND, PERMISSION_DENIED) or is not a regular file
  // (FAILED_PRECONDITION); a read error part way cancels the call (the server then changes
  // nothing) and is returned; then LoadState's errors.
  absl::StatusOr<v1::ModelInfo> LoadStateFile(std::string_view model, const std::string& path,
                                              const LoadStateOptions& options = {});

 private:
  explicit Client(std::shared_ptr<internal::Connection> connection);

  std::shared_ptr<internal::Connection> connection_;
};

// Streams tensors into one model and queries it. Thread-safe.
//
// Record() only queues; a background thread sends. Calls that read or change the model's state
// (Info, Reset, ComputeAmaxTable, ComputeAmax, AmaxTable, Histogram, UploadOnnx, ExportOnnx)
// first Flush(), so they see every tensor recorded before them, and return Flush()'s error if it
// fails.
class ModelSession {
 public:
  // Sends what is still queued and closes the stream (as Flush(), whose status is then lost:
  // call Flush() to see it).
  ~ModelSession();
  ModelSession(const ModelSession&) = delete;
  ModelSession& operator=(const ModelSession&) = delete;

  const std::string& model() const;

  // Copies `tensor` into the send queue and returns; the background sender streams it as one
  // batch into `quantizer` (created by the server on first use with the model's defaults), in
  // chunks of at most SessionOptions::chunk_bytes.
  //
  // Blocks while the queue holds max_queue_bytes (never drops data to make room).
  // Returns INVALID_ARGUMENT at once, queuing nothing, when the model or quantizer name is not a
  // name (qcal/names.h) or the byte count is not prod(shape) * DTypeSize(dtype) (a negative
  // dimension included); other checks (empty tensor, axis against the rank, size limit, unknown
  // model) are the server's.
  //
  // An error of a background send is returned by the next Record() or Flush() (exactly once; the
  // tensor of that Record() call is then not queued). The server ends a Record stream at its
  // first error: batches completed before it stay applied, the failing one changes nothing,
  // batches sent after it are not applied and what was still queued is dropped
  // (SessionStats::dropped_batches).
  //
  // Exactly-once (README, "What survives what"): the session numbers every batch under its own
  // random 16-byte id and keeps it until the server reports it durable (within max_queue_bytes,
  // counted together with the queue; when that is full of applied batches not yet durable, the
  // sender asks the server to Commit and frees them). A stream that breaks with UNAVAILABLE (the
  // server gone or restarting) or CANCELLED (the server closed it) is reopened with backoff
  // (kReconnectInitialBackoff, doubling, at most kReconnectMaxBackoff) and every batch not yet
  // durable is resent; the server drops those it applied already, so each batch counts once.
  // A server unreachable for longer than SessionOptions::reconnect_deadline makes the next
  // Record() or Flush() return UNAVAILABLE naming the deadline and the batches not confirmed
  // (those not applied count in dropped_batches). After such an error the session goes on
  // under a new session id, numbering from 1 (a dropped batch may have been applied unseen, so
  // its sequence is not reused).
  //
  // With SessionOptions::aggregate the tensor is counted here instead (see there), and these
  // errors come at once, nothing counted: FAILED_PRECONDITION "pre-aggregation needs the
  // mergeable histogram layout" for a histogram quantizer of a reference-layout model; GetModel's
  // errors (NOT_FOUND for an unknown model); INVALID_ARGUMENT for an empty tensor, an axis
  // outside the rank, or a channel count that differs from the quantizer's earlier tensors.
  absl::Status Record(std::string_view quantizer, const TensorView& tensor);

  // Queues a pre-aggregated batch for `quantizer` (qcal/partial_state.h builds one); the sender
  // streams it as one Record message with `partial`, between whole tensor batches, and the server
  // merges it as if the tensors it was counted from had been sent. INVALID_ARGUMENT at once for a
  // name that is not a name or a state with neither histogram nor max; RESOURCE_EXHAUSTED at once
  // for a state whose serialization passes kMaxChunkBytes (one message carries it, and every
  // server takes 4 MiB: about 10^6 bins of small counts; the histogram of num_bins B holds up to
  // 2B bins, so B above about 2^18 may not fit; such quantizers stream tensors); the server's
  // refusals
  // (calibration.proto, RecordRequest: a non-canonical state, the other calibrator kind, a
  // reference-layout model, overflowing counts) come like Record()'s background errors.
  absl::Status RecordPartial(std::string_view quantizer, const v1::PartialState& partial);

  // With SessionOptions::aggregate, first queues every quantizer's counted state.
  // Waits until every tensor recorded before the call is sent and applied by the server (the
  // stream is closed and its status checked); returns the first error since the last Record() or
  // Flush() that returned one.
  absl::Status Flush();

  // A durable point: Flush(), then the server's Commit for this session (calibration.proto):
  // with --data-dir the model's state is on disk when it returns; without, the server keeps it in
  // memory only (durable == applied, lost at a server restart). Returns the session's applied and
  // durable sequences (every batch recorded before the call is in both). Flush()'s errors;
  // NOT_FOUND for an unknown model; UNAVAILABLE when the server cannot write its state (disk
  // full, an I/O error: its message names the file), after retrying up to reconnect_deadline.
  absl::StatusOr<CommitResult> Commit();

  SessionStats Stats() const;

  absl::StatusOr<v1::ModelInfo> Info();
  absl::StatusOr<v1::ModelInfo> Reset();

  // Computes amax for every quantizer with data, stores the table in the model, and returns the
  // table this call computed as a message, as JSON and as a TensorRT calibration cache (with the
  // cache's warnings), in one call: another client computing another method at the same time
  // cannot swap it.
  // FAILED_PRECONDITION before any data; INVALID_ARGUMENT for an unknown method, a percentile
  // outside (0, 100], start_bin beyond a histogram's bins, or a client-side refusal (above).
  absl::StatusOr<v1::AmaxTableResponse> ComputeAmaxTable(const ComputeAmaxOptions& options);

  // ComputeAmaxTable(options)'s table alone (only that form is sent).
  absl::StatusOr<v1::AmaxTable> ComputeAmax(const ComputeAmaxOptions& options);

  // The stored table (of the last ComputeAmax, whoever asked for it) in the `forms` asked for
  // (empty: all three). FAILED_PRECONDITION when no table was computed since the last reset;
  // RESOURCE_EXHAUSTED when the response would pass the server's --max-response-bytes.
  absl::StatusOr<v1::AmaxTableResponse> AmaxTable(std::vector<v1::TableForm> forms = {});

  // Histogram of |x| of a histogram quantizer (counts and edges empty until a non-zero finite
  // value arrived). NOT_FOUND for an unknown quantizer, FAILED_PRECONDITION for a max calibrator.
  absl::StatusOr<v1::Histogram> Histogram(std::string_view quantizer);

  // Uploads a float ONNX model (opset >= 13), sent in kMaxChunkBytes chunks. INVALID_ARGUMENT
  // when it does not parse, fails the checker or has an older opset; the previous upload stays.
  absl::StatusOr<v1::UploadOnnxResponse> UploadOnnx(
      std::string_view onnx, const std::map<std::string, std::string>& tensor_map = {});

  // A float ONNX model with Q/DQ pairs: `onnx` when given (sent in kMaxChunkBytes chunks in the
  // same call, with options.tensor_map), else the one stored by UploadOnnx or an earlier export.
  // All or nothing: the server stores `onnx` (and its tensor_map) and a table computed by
  // options.compute only when the export succeeds; a refused export leaves the model as it was.
  // FAILED_PRECONDITION without a stored ONNX (and no `onnx`) or without an amax table (and no
  // options.compute); INVALID_ARGUMENT for a malformed or too old ONNX (an empty `onnx`
  // included), or one whose nodes the tensor_map does not match.
  absl::StatusOr<ExportResult> ExportOnnx(std::optional<std::string_view> onnx = std::nullopt,
                                          const ExportOptions& options = {});

 private:
  friend class Client;
  ModelSession(std::shared_ptr<internal::Connection> connection, std::string model,
               SessionOptions options);

  const std::shared_ptr<internal::Connection> connection_;
  const std::string model_;
  const std::unique_ptr<internal::RecordSender> sender_;
  // Set with SessionOptions::aggregate.
  const std::unique_ptr<internal::Aggregator> aggregator_;
};

}  // namespace qcal

#endif  // QCAL_CLIENT_CLIENT_H_
