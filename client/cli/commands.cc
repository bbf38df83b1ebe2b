#include "client/cli/commands.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/format.h"
#include "client/status_macros.h"
#include "qcal/local_file.h"
#include "qcal/npy.h"

namespace qcal::cli {
namespace {

// The QDQ model goes to "<path>.partial", opened before the export is sent (so a path that
// cannot be written fails before the server stores anything), and is renamed to `path` once
// written in full. Its errors are local-file errors, "cannot write --out 'PATH': REASON".
class OutputFile {
 public:
  static absl::StatusOr<OutputFile> Open(const std::string& path) {
    // The rename at the end would fail on a directory, after the server had stored the export.
    struct stat existing;
    if (stat(path.c_str(), &existing) == 0 && S_ISDIR(existing.st_mode)) {
      return LocalFileError(EISDIR, absl::StrCat("cannot write --out '", path, "'"));
    }
    OutputFile file(path);
    file.out_.open(file.partial_, std::ios::binary | std::ios::trunc);
    if (!file.out_) {
      return LocalFileError(errno, absl::StrCat("cannot write --out '", path, "'"));
    }
    return file;
  }
  OutputFile(OutputFile&& other) noexcept
      : path_(std::move(other.path_)),
        partial_(std::move(other.partial_)),
        out_(std::move(other.out_)),
        committed_(std::exchange(other.committed_, true)) {}
  ~OutputFile() {
    if (!committed_) {
      out_.close();
      std::remove(partial_.c_str());
    }
  }

  absl::Status Commit(const std::string& bytes) {
    if (!out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size())) || !out_.flush()) {
      return LocalFileError(errno, absl::StrCat("cannot write --out '", path_, "'"));
    }
    out_.close();
    if (std::rename(partial_.c_str(), path_.c_str()) != 0) {
      return LocalFileError(errno, absl::StrCat("cannot write --out '", path_, "'"));
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  explicit OutputFile(std::string path) : path_(std::move(path)), partial_(path_ + ".partial") {}

  std::string path_;
  std::string partial_;
  std::ofstream out_;
  bool committed_ = false;
};

absl::StatusOr<std::map<std::string, std::string>> ParseMaps(const std::vector<std::string>& maps) {
  std::map<std::string, std::string> tensor_map;
  for (const std::string& pair : maps) {
    const size_t eq = pair.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
      return absl::InvalidArgumentError(absl::StrCat("--map '", pair, "' is not QUANTIZER=TENSOR"));
    }
    tensor_map[pair.substr(0, eq)] = pair.substr(eq + 1);
  }
  return tensor_map;
}

}  // namespace

absl::Status ListModels(Client& client, const std::string& format, std::ostream& out) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(std::vector<v1::ModelInfo> models, client.ListModels());
  if (format == "json") {
    out << ModelsJson(models).dump(2) << "\n";
  } else {
    out << FormatModels(models);
  }
  return absl::OkStatus();
}

absl::Status ListAllModels(const std::vector<std::string>& replicas, const ClientOptions& options,
                           const std::string& format, std::ostream& out, std::ostream& err) {
  std::vector<ReplicaModel> listed;
  std::map<std::string, std::vector<std::string>> replicas_of;
  absl::Status first_error;
  std::set<std::string> asked;
  for (const std::string& replica : replicas) {
    // The same address twice would list its models twice, as if split across replicas.
    if (!asked.insert(replica).second) continue;
    absl::StatusOr<std::vector<v1::ModelInfo>> models = [&] {
      absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(replica, options);
      if (!client.ok()) return absl::StatusOr<std::vector<v1::ModelInfo>>(client.status());
      return (*client)->ListModels();
    }();
    if (!models.ok()) {
      first_error.Update(
          absl::Status(models.status().code(),
                       absl::StrCat("replica ", replica, ": ", models.status().message())));
      continue;
    }
    for (v1::ModelInfo& info : *models) {
      replicas_of[info.name()].push_back(replica);
      listed.push_back({replica, std::move(info)});
    }
  }
  if (format == "json") {
    out << ReplicaModelsJson(listed).dump(2) << "\n";
  } else {
    out << FormatReplicaModels(listed);
  }
  for (const auto& [model, where] : replicas_of) {
    if (where.size() < 2) continue;
    err << "warning: model '" << model << "' is on " << where.size()
        << " replicas: " << absl::StrJoin(where, ", ")
        << " (the router sends its calls to one of them; README, \"Model-affine routing\", says "
           "how to move a model)\n";
  }
  return first_error;
}

absl::Status CreateModel(Client& client, const std::string& model, const ModelOptions& options,
                         std::ostream& out) {
  // Without exist_ok first, to tell "created" from "joined"; the exist_ok call after an
  // ALREADY_EXISTS is itself atomic on the server.
  ModelOptions create = options;
  create.exist_ok = false;
  absl::Status status = client.CreateModel(model, create).status();
  if (status.code() == absl::StatusCode::kAlreadyExists && options.exist_ok) {
    QCAL_CLIENT_RETURN_IF_ERROR(client.CreateModel(model, options).status());
    out << "model '" << model << "' exists with the same configuration\n";
    return absl::OkStatus();
  }
  QCAL_CLIENT_RETURN_IF_ERROR(status);
  out << "created model '" << model << "'\n";
  return absl::OkStatus();
}

absl::Status ShowModel(Client& client, const std::string& model, const std::string& format,
                       std::ostream& out) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(v1::ModelInfo info, client.GetModel(model));
  if (format == "json") {
    out << ModelInfoJson(info).dump(2) << "\n";
  } else {
    out << FormatModelInfo(info);
  }
  return absl::OkStatus();
}

absl::Status ResetModel(Client& client, const std::string& model, std::ostream& out) {
  QCAL_CLIENT_RETURN_IF_ERROR(client.ResetModel(model).status());
  out << "reset model '" << model << "'\n";
  return absl::OkStatus();
}

absl::Status CommitModel(Client& client, const std::string& model, std::ostream& out) {
  QCAL_CLIENT_RETURN_IF_ERROR(client.Commit(model));
  out << "committed model '" << model << "'\n";
  return absl::OkStatus();
}

absl::Status DeleteModel(Client& client, const std::string& model, std::ostream& out) {
  QCAL_CLIENT_RETURN_IF_ERROR(client.DeleteModel(model));
  out << "deleted model '" << model << "'\n";
  return absl::OkStatus();
}

absl::Status RecordNpy(Client& client, const std::string& model, const std::string& quantizer,
                       const std::string& npy_path, const SessionOptions& session_options,
                       const ProgressTarget& progress, std::ostream& out) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(const NpyArray array, ReadNpy(npy_path));
  // Before the session, so that it outlives the sender thread that calls it.
  ProgressBar bar(progress, absl::StrCat("record ", npy_path));
  SessionOptions options = session_options;
  options.progress = bar.Callback(static_cast<int64_t>(array.data.size()));
  std::unique_ptr<ModelSession> session = client.Model(model, options);
  QCAL_CLIENT_RETURN_IF_ERROR(session->Record(quantizer, array.view()));
  QCAL_CLIENT_RETURN_IF_ERROR(session->Flush());
  bar.Finish();
  const SessionStats stats = session->Stats();
  out << "recorded " << npy_path << " into " << model << " / " << quantizer << ": "
      << DTypeName(array.dtype) << " [" << absl::StrJoin(array.shape, ", ") << "], "
      << stats.applied_elements << " elements, " << stats.applied_nonfinite << " non-finite\n";
  return absl::OkStatus();
}

absl::Status ComputeAmax(Client& client, const std::string& model,
                         const ComputeAmaxOptions& options, const std::string& format,
                         std::ostream& out, std::ostream& err) {
  // One call: the forms printed are those of the table this call computed, even while another
  // client computes another method on the same model. Only the printed form (and the TensorRT
  // cache, whose warnings are printed) travels.
  ComputeAmaxOptions asked = options;
  asked.forms = {v1::TABLE_FORM_TRT_CACHE};
  if (format == "table") asked.forms.push_back(v1::TABLE_FORM_MESSAGE);
  if (format == "json") asked.forms.push_back(v1::TABLE_FORM_JSON);
  QCAL_CLIENT_ASSIGN_OR_RETURN(const v1::AmaxTableResponse computed,
                               client.Model(model)->ComputeAmaxTable(asked));
  for (const std::string& warning : computed.warnings()) err << "warning: " << warning << "\n";
  if (format == "table") {
    out << FormatAmaxTable(computed.table());
    return absl::OkStatus();
  }
  const std::string& text = format == "json" ? computed.json() : computed.trt_cache();
  out << text;
  if (!text.empty() && text.back() != '\n') out << "\n";
  return absl::OkStatus();
}

absl::Status ShowHistogram(Client& client, const std::string& model, const std::string& quantizer,
                           const std::string& format, std::ostream& out) {
  QCAL_CLIENT_ASSIGN_OR_RETURN(v1::Histogram histogram, client.Model(model)->Histogram(quantizer));
  if (format == "json") {
    out << HistogramJson(histogram).dump() << "\n";
  } else {
    out << FormatHistogram(histogram);
  }
  return absl::OkStatus();
}

absl::Status ExportOnnx(Client& client, const ExportArgs& args, const ProgressTarget& progress,
                        std::ostream& out, std::ostream& err) {
  ExportOptions options;
  options.compute = args.compute;
  options.target = args.target;
  options.explain = args.explain;
  options.fp8_ops = args.fp8_ops;
  QCAL_CLIENT_ASSIGN_OR_RETURN(options.tensor_map, ParseMaps(args.maps));
  QCAL_CLIENT_ASSIGN_OR_RETURN(const std::string onnx, ReadLocalFile(args.onnx_in, "--onnx "));
  if (onnx.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--onnx ", args.onnx_in, " is empty; expected a float ONNX model"));
  }
  QCAL_CLIENT_ASSIGN_OR_RETURN(OutputFile output, OutputFile::Open(args.onnx_out));
  ProgressBar bar(progress, absl::StrCat("export ", args.onnx_in));
  options.progress = bar.Callback();
  absl::StatusOr<ExportResult> exported = client.Model(args.model)->ExportOnnx(onnx, options);
  if (exported.ok()) bar.Finish();
  if (!exported.ok()) {
    const absl::Status& status = exported.status();
    // A missing amax table gets the methods --method takes; other preconditions (no quantizer
    // name matches a node) are not helped by --method.
    if (status.code() == absl::StatusCode::kFailedPrecondition && !args.compute.has_value() &&
        absl::StrContains(status.message(), "no amax table")) {
      return absl::FailedPreconditionError(absl::StrCat(
          status.message(), " (use --method M, M one of max, entropy, mse, percentile)"));
    }
    return status;
  }
  ExportResult& result = *exported;
  for (const std::string& warning : result.warnings) err << "warning: " << warning << "\n";
  if (result.computed_table) {
    err << "export: computed a new amax table (method " << result.amax_method << ")\n";
  } else {
    err << "export: used the stored amax table (method " << result.amax_method
        << ", computed by an earlier ComputeAmax)\n";
  }
  QCAL_CLIENT_RETURN_IF_ERROR(output.Commit(result.onnx));
  if (args.explain) out << FormatExplain(result.explain);
  out << "wrote " << args.onnx_out << " (" << result.onnx.size() << " bytes, "
      << result.warnings.size() << " warnings)\n";
  return absl::OkStatus();
}

}  // namespace qcal::cli
