// `qcal state save` and `qcal state load`.
#include "absl/strings/str_cat.h"
#include "client/cli/atomic_file.h"
#include "client/cli/commands.h"
#include "client/status_macros.h"
#include "qcal/local_file.h"

namespace qcal::cli {

absl::Status SaveState(Client& client, const std::string& model, const std::string& path,
                       const ProgressTarget& progress, std::ostream& out) {
  QCAL_CLIENT_RETURN_IF_ERROR(CheckWritablePath(path));
  ProgressBar bar(progress, absl::StrCat("state save ", model));
  QCAL_CLIENT_ASSIGN_OR_RETURN(const std::string state, client.SaveState(model, bar.Callback()));
  bar.Finish();
  QCAL_CLIENT_RETURN_IF_ERROR(WriteFileAtomically(path, state));
  out << "saved model '" << model << "' to " << path << " (" << state.size() << " bytes)\n";
  return absl::OkStatus();
}

absl::Status LoadState(Client& client, const std::string& model, const std::string& path,
                       bool merge, const ProgressTarget& progress, std::ostream& out) {
  ProgressBar bar(progress, absl::StrCat("state load ", path));
  // Streamed from the file: a state file of any size costs 4 MiB of memory here.
  QCAL_CLIENT_ASSIGN_OR_RETURN(
      const v1::ModelInfo info,
      client.LoadStateFile(model, path, {.merge = merge, .progress = bar.Callback()}));
  bar.Finish();
  out << (merge ? "merged " : "loaded ") << path << (merge ? " into model '" : " as model '")
      << model << "': " << info.quantizers_size()
      << (info.quantizers_size() == 1 ? " quantizer, " : " quantizers, ")
      << HistogramLayoutName(info.histogram_layout()) << " histograms"
      << (info.amax_method().empty() ? "" : absl::StrCat(", amax table ", info.amax_method()))
      << (info.has_onnx() ? ", ONNX model" : "") << "\n";
  return absl::OkStatus();
}

}  // namespace qcal::cli
