#include "quant/remote_session.h"

#include <c10/core/ScalarType.h>

#include <span>
#include <vector>

#include "absl/strings/str_cat.h"
#include "quant/errors.h"
#include "quant/partial_count.h"

namespace qcal::quant {
namespace {

std::optional<DType> WireDType(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return DType::kFloat32;
    case at::kHalf:
      return DType::kFloat16;
    case at::kBFloat16:
      return DType::kBFloat16;
    case at::kDouble:
      return DType::kFloat64;
    default:
      return std::nullopt;
  }
}

// The fields of a spec that decide calibration (the server fills defaults into the others).
bool SameCalibration(const v1::QuantizerSpec& a, const v1::QuantizerSpec& b) {
  const bool histogram = a.calibrator() == v1::CALIBRATOR_HISTOGRAM;
  return a.num_bits() == b.num_bits() && a.is_unsigned() == b.is_unsigned() &&
         a.format() == b.format() && a.has_axis() == b.has_axis() &&
         (!a.has_axis() || a.axis() == b.axis()) && a.calibrator() == b.calibrator() &&
         (!histogram || (a.num_bins() == b.num_bins() && a.skip_zeros() == b.skip_zeros()));
}

std::string CacheKey(const CalibAmaxArgs& args) {
  return absl::StrCat(args.method, "|", args.start_bin, "|", args.stride, "|", args.percentile);
}

}  // namespace

std::shared_ptr<RemoteSession> RemoteSession::Create(std::shared_ptr<Client> client,
                                                     std::string model, Options options) {
  if (client == nullptr) ThrowValueError("RemoteSession: client is null");
  if (model.empty()) ThrowValueError("RemoteSession: the model name is empty");
  return std::shared_ptr<RemoteSession>(
      new RemoteSession(std::move(client), std::move(model), std::move(options)));
}

RemoteSession::RemoteSession(std::shared_ptr<Client> client, std::string model, Options options)
    : client_(std::move(client)),
      model_(std::move(model)),
      options_(std::move(options)),
      session_(client_->Model(model_, options_.session)) {}

RemoteSession::~RemoteSession() {
  absl::MutexLock lock(&mu_);
  SendPendingLocked().IgnoreError();  // Flush() first to see it
}

void RemoteSession::Declare(const v1::QuantizerSpec& spec) {
  absl::MutexLock lock(&mu_);
  const auto it = declared_.find(spec.name());
  if (it != declared_.end()) {
    if (!SameCalibration(it->second, spec)) {
      ThrowRuntimeError(absl::StrCat("qcal-server model ", model_, ": quantizer ", spec.name(),
                                     " is already declared with another descriptor"));
    }
    return;
  }
  if (created_) {
    ThrowRuntimeError(absl::StrCat("qcal-server model ", model_, " was already created; declare ",
                                   spec.name(), " before the first record or amax request"));
  }
  declared_.emplace(spec.name(), spec);
}

void RemoteSession::EnsureModelLocked() {
  if (created_) return;
  v1::CreateModelRequest request;
  request.set_model(model_);
  request.set_histogram_layout(options_.histogram_layout);
  for (const auto& [name, spec] : declared_) *request.add_quantizers() = spec;
  const absl::StatusOr<v1::ModelInfo> created = client_->CreateModel(request);
  if (created.ok()) {
    created_ = true;
    return;
  }
  if (created.status().code() != absl::StatusCode::kAlreadyExists ||
      !options_.reuse_existing_model) {
    ThrowIfError(created.status(), absl::StrCat("qcal-server: creating model ", model_));
  }
  // Join the existing model: it must hold every declared quantizer with the same descriptor.
  const absl::StatusOr<v1::ModelInfo> info = client_->GetModel(model_);
  ThrowIfError(info.status(), absl::StrCat("qcal-server: model ", model_));
  for (const auto& [name, spec] : declared_) {
    const v1::QuantizerSpec* found = nullptr;
    for (const v1::QuantizerStats& q : info->quantizers()) {
      if (q.spec().name() == name) found = &q.spec();
    }
    if (found == nullptr || !SameCalibration(*found, spec)) {
      ThrowRuntimeError(absl::StrCat("qcal-server model ", model_, " exists ",
                                     found == nullptr ? "without quantizer " : "with quantizer ",
                                     name, found == nullptr ? "" : " declared differently",
                                     "; delete the model or use another name"));
    }
  }
  created_ = true;
}

void RemoteSession::Record(const std::string& quantizer, const at::Tensor& tensor) {
  if (!tensor.defined() || !at::isFloatingType(tensor.scalar_type())) {
    ThrowTypeError(absl::StrCat("RemoteCalibrator ", quantizer,
                                ": the input must be a defined floating-point tensor"));
  }
  at::Tensor cpu = tensor.detach();
  std::optional<DType> dtype = WireDType(cpu.scalar_type());
  if (!dtype.has_value()) {
    cpu = cpu.to(at::kFloat);
    dtype = DType::kFloat32;
  }
  const std::string what = absl::StrCat("qcal-server model ", model_, ", recording ", quantizer);
  if (!options_.aggregate) {
    cpu = cpu.to(at::kCPU).contiguous();
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(cpu.data_ptr()),
                                           static_cast<size_t>(cpu.nbytes()));
    const TensorView view{*dtype, cpu.sizes(), bytes};
    absl::MutexLock lock(&mu_);
    EnsureModelLocked();
    ThrowIfError(session_->Record(quantizer, view), what);
    return;
  }
  PartialTarget target;
  {
    absl::MutexLock lock(&mu_);
    EnsureModelLocked();
    target = TargetLocked(quantizer);
  }
  // Counted without the lock: CPU tensors by the server's kernels, others on their device.
  v1::PartialState counted;
  if (cpu.device().is_cpu()) {
    cpu = cpu.contiguous();
    const std::span<const std::byte> bytes(static_cast<const std::byte*>(cpu.data_ptr()),
                                           static_cast<size_t>(cpu.nbytes()));
    const TensorView view{*dtype, cpu.sizes(), bytes};
    absl::StatusOr<v1::PartialState> result =
        target.histogram ? CountHistogramPartial(view, target.num_bins, target.skip_zeros)
                         : CountMaxPartial(view, target.axis);
    ThrowIfError(result.status(), what);
    counted = *std::move(result);
  } else {
    counted = CountPartialWithAten(cpu, target);
  }
  absl::MutexLock lock(&mu_);
  Pending& pending = pending_[quantizer];
  ThrowIfError(MergePartial(pending.state, counted, target.num_bins), what);
  if (options_.aggregate_send_every <= 0 || ++pending.calls < options_.aggregate_send_every) {
    return;
  }
  const v1::PartialState ready = std::move(pending.state);
  pending_.erase(quantizer);
  ThrowIfError(session_->RecordPartial(quantizer, ready), what);
}

PartialTarget RemoteSession::TargetLocked(const std::string& quantizer) {
  if (!info_.has_value()) {
    absl::StatusOr<v1::ModelInfo> info = client_->GetModel(model_);
    ThrowIfError(info.status(), absl::StrCat("qcal-server model ", model_));
    info_ = *std::move(info);
  }
  absl::StatusOr<PartialTarget> target = PartialTargetFor(*info_, quantizer);
  ThrowIfError(target.status(),
               absl::StrCat("qcal-server model ", model_, ", quantizer ", quantizer));
  return *target;
}

absl::Status RemoteSession::SendPendingLocked() {
  absl::Status status;
  for (auto& [quantizer, pending] : pending_) {
    if (pending.state.batches() > 0)
      status.Update(session_->RecordPartial(quantizer, pending.state));
  }
  pending_.clear();
  return status;
}

std::optional<v1::QuantizerAmax> RemoteSession::ComputeAmax(const std::string& quantizer,
                                                            const CalibAmaxArgs& args) {
  ComputeAmaxOptions request;
  request.method = args.method.empty() ? "max" : args.method;
  if (request.method == "entropy" || request.method == "mse") {
    if (args.start_bin < 1 || args.stride < 1) {
      ThrowValueError(absl::StrCat("RemoteCalibrator ", quantizer, ": start_bin ", args.start_bin,
                                   " and stride ", args.stride,
                                   " must be >= 1 on the wire (0 means the default there)"));
    }
    request.start_bin = args.start_bin;
    request.stride = args.stride;
  }
  if (request.method == "percentile") request.percentile = args.percentile;

  absl::MutexLock lock(&mu_);
  EnsureModelLocked();
  ThrowIfError(SendPendingLocked(), absl::StrCat("qcal-server model ", model_));
  const std::string key = CacheKey(args);
  if (!cached_table_.has_value() || cached_key_ != key || !CachedTableCurrentLocked()) {
    absl::StatusOr<v1::AmaxTable> table = session_->ComputeAmax(request);
    if (table.status().code() == absl::StatusCode::kFailedPrecondition) {
      // No quantizer of the model has data yet.
      cached_table_.reset();
      return std::nullopt;
    }
    ThrowIfError(table.status(),
                 absl::StrCat("qcal-server model ", model_, ": ComputeAmax(", request.method, ")"));
    cached_table_ = *std::move(table);
    cached_key_ = key;
  }
  for (const v1::QuantizerAmax& q : cached_table_->quantizers()) {
    if (q.name() == quantizer) return q;
  }
  return std::nullopt;
}

bool RemoteSession::CachedTableCurrentLocked() {
  // Info() flushes this session's records first.
  const absl::StatusOr<v1::ModelInfo> info = session_->Info();
  ThrowIfError(info.status(), absl::StrCat("qcal-server model ", model_));
  std::map<std::string, int64_t> batches;
  for (const v1::QuantizerAmax& q : cached_table_->quantizers()) batches[q.name()] = q.batches();
  for (const v1::QuantizerStats& q : info->quantizers()) {
    const auto it = batches.find(q.spec().name());
    if (q.batches() != (it == batches.end() ? 0 : it->second)) return false;
  }
  return true;
}

void RemoteSession::Flush() {
  {
    absl::MutexLock lock(&mu_);
    ThrowIfError(SendPendingLocked(), absl::StrCat("qcal-server model ", model_));
  }
  ThrowIfError(session_->Flush(), absl::StrCat("qcal-server model ", model_));
}

void RemoteSession::Reset() {
  absl::MutexLock lock(&mu_);
  EnsureModelLocked();
  cached_table_.reset();
  pending_.clear();  // counted data is collected data: reset drops it
  ThrowIfError(session_->Reset().status(), absl::StrCat("qcal-server model ", model_));
}

}  // namespace qcal::quant
