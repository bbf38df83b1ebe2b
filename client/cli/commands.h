// The `qcal` subcommands, each one function over a connected Client: it prints its result on
// `out` (warnings on `err`) and returns the status the CLI reports.
#ifndef QCAL_CLIENT_CLI_COMMANDS_H_
#define QCAL_CLIENT_CLI_COMMANDS_H_

#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "client/cli/progress_bar.h"
#include "qcal/client.h"

namespace qcal::cli {

// --format of models/info: "text" or "json".
absl::Status ListModels(Client& client, const std::string& format, std::ostream& out);
// `qcal models --all ADDR,...`: asks each replica directly (behind a router, ListModels names no
// model and reaches one replica) and lists every model with the replica it lives on. A model on
// more than one replica (its hash target changed, e.g. after scaling, and it was not moved) gets
// a warning on `err`. A replica that cannot be listed does not hide the others: the rest are
// printed and the first such error, naming the replica, is returned.
absl::Status ListAllModels(const std::vector<std::string>& replicas, const ClientOptions& options,
                           const std::string& format, std::ostream& out, std::ostream& err);
// With options.exist_ok, an existing model of the same configuration is joined ("model 'm'
// exists with the same configuration") and one of another is FAILED_PRECONDITION.
absl::Status CreateModel(Client& client, const std::string& model, const ModelOptions& options,
                         std::ostream& out);
absl::Status ShowModel(Client& client, const std::string& model, const std::string& format,
                       std::ostream& out);
absl::Status ResetModel(Client& client, const std::string& model, std::ostream& out);
// `qcal commit MODEL`: a durable point (Client::Commit): with --data-dir the model's state is on
// disk when it prints "committed model 'MODEL'".
absl::Status CommitModel(Client& client, const std::string& model, std::ostream& out);
absl::Status DeleteModel(Client& client, const std::string& model, std::ostream& out);

// Sends the array of a .npy file as one batch and waits until the server applied it, through a
// session with `session_options` (the CLI bounds its reconnect_deadline by --timeout). A bar on
// `progress` shows the array's bytes sent.
absl::Status RecordNpy(Client& client, const std::string& model, const std::string& quantizer,
                       const std::string& npy_path, const SessionOptions& session_options,
                       const ProgressTarget& progress, std::ostream& out);

// ComputeAmax, the computed table printed as "table", "json" or "trt" (TensorRT calibration
// cache), all from the one ComputeAmax response; the cache's warnings go to `err`.
absl::Status ComputeAmax(Client& client, const std::string& model,
                         const ComputeAmaxOptions& options, const std::string& format,
                         std::ostream& out, std::ostream& err);

// --format "text" or "json".
absl::Status ShowHistogram(Client& client, const std::string& model, const std::string& quantizer,
                           const std::string& format, std::ostream& out);

struct ExportArgs {
  std::string model;
  std::string onnx_in;
  std::string onnx_out;
  // Computes the table first when set; the stored one otherwise.
  std::optional<ComputeAmaxOptions> compute;
  // "QUANTIZER=TENSOR" pairs.
  std::vector<std::string> maps;
  std::string target;
  // --explain: print the explain table (FormatExplain) to `out`, before the "wrote" line.
  bool explain = false;
  std::string fp8_ops;
};
// Exports onnx_in (sent with the export: stored on the server only if the export succeeds) and
// writes onnx_out; warnings, and which amax table the export used, go to `err`; with `explain`,
// the explain table goes to `out` (so `qcal export ... --explain > table.txt` keeps it apart from
// warnings and progress), followed as always by the one "wrote ..." line. Without `compute` a
// missing amax table (FAILED_PRECONDITION) gets a hint to pass --method. A bar on `progress`
// shows onnx_in's bytes sent.
absl::Status ExportOnnx(Client& client, const ExportArgs& args, const ProgressTarget& progress,
                        std::ostream& out, std::ostream& err);

// `qcal state save`: the model's StateFile, written to `path` atomically (atomic_file.h). A
// `path` that is a directory or lies in a missing directory fails before the call. A bar on
// `progress` shows the bytes received (their total is not known ahead).
absl::Status SaveState(Client& client, const std::string& model, const std::string& path,
                       const ProgressTarget& progress, std::ostream& out);
// `qcal state load [--merge]`: sends the file at `path` (local-file errors for a missing,
// unreadable or non-regular file, before any call) and prints what the model holds now. A bar
// on `progress` shows the file's bytes sent.
absl::Status LoadState(Client& client, const std::string& model, const std::string& path,
                       bool merge, const ProgressTarget& progress, std::ostream& out);

}  // namespace qcal::cli

#endif  // QCAL_CLIENT_CLI_COMMANDS_H_
