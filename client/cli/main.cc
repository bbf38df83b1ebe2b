// qcal: the command line of the qcal calibration service (see README.md).
//
//   qcal [--server ADDR] [--timeout SECONDS] [--tls-ca PEM [--tls-cert PEM --tls-key PEM]]
//        [--token TOKEN] [--quiet] COMMAND ...
//
// Progress: record, export, state save and state load draw a progress bar on stderr when it is
// a terminal (progress_bar.h); never when it is not, nor with --quiet or QCAL_NO_PROGRESS=1.
//
// Exit status and stderr:
//   0  success.
//   1  the call failed: "error: CODE: message" (CODE as gRPC names it, e.g. INVALID_ARGUMENT,
//      NOT_FOUND, UNAVAILABLE), from the server or from the client library; or a local file
//      could not be read or written: "error: message" (no code: no call failed), e.g.
//      "error: cannot write --out 'x.onnx': No such file or directory", "error: cannot read
//      'runs/a.qcalstate': No such file or directory".
//   2  usage error, found before contacting the server: "error: usage: message" and a pointer
//      to --help (an unknown command or option, a missing or malformed value, a value out of
//      range, an option that does not apply to the method).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/cli/commands.h"
#include "client/cli/descriptor.h"
#include "qcal/client.h"
#include "qcal/local_file.h"
#include "qcal/names.h"

namespace {

constexpr int kUsageExit = 2;

// "qcal state save": the command's words from the root.
std::string CommandPath(const CLI::App* command) {
  std::string path;
  for (; command != nullptr && command->get_parent() != nullptr; command = command->get_parent()) {
    path = " " + command->get_name() + path;
  }
  return "qcal" + path;
}

// Prints a usage error, pointing at the help of the command being parsed, if any.
int UsageError(std::string_view message, const CLI::App* command) {
  const std::string help = CommandPath(command) + " --help";
  std::cerr << "error: usage: " << message << "\n(see '" << help << "')\n";
  return kUsageExit;
}

// A number option's check: the message is `text` as typed (so with its full precision, 100.0001
// and not 100) and `problem`. Text that is not a number is left to CLI11's conversion, which
// names the option and the value.
CLI::Validator NumberCheck(bool (*ok)(double), std::string problem, std::string description) {
  return CLI::Validator(
      [ok, problem](std::string& text) -> std::string {
        char* end = nullptr;
        const double value = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || ok(value)) return "";
        return text + " " + problem;
      },
      std::move(description));
}

// The method options shared by `amax` and `export`.
struct MethodFlags {
  std::string method;
  double percentile = 0;
  int start_bin = 0;
  int stride = 0;
  CLI::Option* percentile_option = nullptr;
  CLI::Option* start_bin_option = nullptr;
  CLI::Option* stride_option = nullptr;

  void AddTo(CLI::App* command, bool method_required) {
    CLI::Option* method_option =
        command->add_option("--method", method, "max, entropy, mse or percentile")
            ->check(CLI::IsMember({"max", "entropy", "mse", "percentile"}));
    if (method_required) method_option->required();
    // Written so that NaN fails too.
    percentile_option = command
                            ->add_option("--percentile", percentile,
                                         "percentile method: in (0, 100], default 99.99")
                            ->check(NumberCheck([](double p) { return p > 0 && p <= 100; },
                                                "is outside (0, 100]", "(0, 100]"));
    // 0 cannot be sent: on the wire it means "the default".
    start_bin_option =
        command
            ->add_option("--start-bin", start_bin,
                         "entropy and mse: first candidate bin, >= 1, default 128")
            ->check(NumberCheck([](double v) { return v >= 1; },
                                "is below 1 (leave the option out for the default, 128)", ">= 1"));
    stride_option =
        command->add_option("--stride", stride, "entropy and mse: candidate step, >= 1, default 1")
            ->check(NumberCheck([](double v) { return v >= 1; },
                                "is below 1 (leave the option out for the default, 1)", ">= 1"));
  }

  // A usage error for an option that the method would ignore, or none.
  std::optional<std::string> Mismatch() const {
    if (method.empty()) {
      for (const CLI::Option* option : {percentile_option, start_bin_option, stride_option}) {
        if (option->count() > 0) {
          return option->get_name() + " needs --method (without it the stored amax table is used)";
        }
      }
      return std::nullopt;
    }
    if (percentile_option->count() > 0 && method != "percentile") {
      return "--percentile applies only to --method percentile, not " + method;
    }
    for (const CLI::Option* option : {start_bin_option, stride_option}) {
      if (option->count() > 0 && method != "entropy" && method != "mse") {
        return option->get_name() + " applies only to --method entropy or mse, not " + method;
      }
    }
    return std::nullopt;
  }

  qcal::ComputeAmaxOptions Options() const {
    qcal::ComputeAmaxOptions options;
    options.method = method;
    if (percentile_option->count() > 0) options.percentile = percentile;
    if (start_bin_option->count() > 0) options.start_bin = start_bin;
    if (stride_option->count() > 0) options.stride = stride;
    return options;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "qcal: stream calibration data to qcal-server, query amax, export QDQ ONNX, save and load "
      "a model's state"};
  app.require_subcommand(1);
  std::string server = qcal::DefaultAddress();
  app.add_option("--server", server,
                 "qcal-server address (default: $QCAL_SERVER, else " +
                     std::string(qcal::kDefaultAddress) + ")");
  double timeout_seconds = 0;
  CLI::Option* timeout_option =
      app.add_option("--timeout", timeout_seconds, "deadline of each call, in seconds")
          ->check(NumberCheck([](double t) { return t > 0 && std::isfinite(t); },
                              "is not a number of seconds > 0", "> 0"));
  qcal::ClientOptions options;
  app.add_option("--tls-ca", options.tls_ca,
                 "PEM CA certificate(s) that signed the server's: connect with TLS");
  app.add_option("--tls-cert", options.tls_cert,
                 "PEM client certificate, for a server with --tls-client-ca (with --tls-key)");
  app.add_option("--tls-key", options.tls_key, "PEM private key of --tls-cert");
  app.add_option("--token", options.token,
                 "bearer token for a server with --auth-tokens (default: $QCAL_TOKEN); visible "
                 "in the process list: prefer $QCAL_TOKEN");
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet,
               "no progress bar on stderr (drawn only on a terminal; also off with "
               "QCAL_NO_PROGRESS=1); results and errors are printed as always");

  std::string model, quantizer, path, format;

  CLI::App* models = app.add_subcommand("models", "list the models");
  models->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));
  std::vector<std::string> replicas;
  models
      ->add_option("--all", replicas,
                   "ADDR[,ADDR...]: ask each replica directly instead of --server and list every "
                   "model with the replica it lives on (behind a router, 'qcal models' reaches "
                   "one replica); repeatable")
      ->delimiter(',');

  CLI::App* create = app.add_subcommand("create", "create an empty model");
  create->add_option("MODEL", model)->required();
  std::string default_input_text, default_weight_text;
  std::vector<std::string> quantizer_texts;
  bool exist_ok = false;
  create->add_option("--default-input", default_input_text,
                     "descriptor of input quantizers first seen by record: KEY=VALUE,... with keys "
                     "num_bits, unsigned, axis (int or none), calibrator (max|histogram), "
                     "num_bins, skip_zeros, format (int|fp8_e4m3: FP8 E4M3, scale amax/448); "
                     "keys left out keep pytorch-quantization's defaults");
  create->add_option("--default-weight", default_weight_text,
                     "descriptor of *_weight_quantizer quantizers first seen by record, as "
                     "--default-input");
  create->add_option("--quantizer", quantizer_texts,
                     "declare a quantizer: name=QUANTIZER,KEY=VALUE,... (repeatable); keys left "
                     "out take the default descriptor of its role");
  create->add_flag("--exist-ok", exist_ok,
                   "an existing model with the same configuration is not an error (another "
                   "configuration is)");
  std::string histogram_layout;
  create
      ->add_option("--histogram-layout", histogram_layout,
                   "bins of the model's histograms: mergeable (2^k-wide bins from 0: the same "
                   "amax whatever the order, batching or split, and states merge) or reference "
                   "(pytorch-quantization's, fixed by the first batch); default: the server's "
                   "--default-histogram-layout (mergeable unless set); compared by --exist-ok")
      ->check(CLI::IsMember({"mergeable", "reference"}));

  CLI::App* info = app.add_subcommand("info", "show a model's quantizers and statistics");
  info->add_option("MODEL", model)->required();
  info->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));

  CLI::App* record = app.add_subcommand("record", "stream a .npy array into a quantizer");
  record->add_option("MODEL", model)->required();
  record->add_option("QUANTIZER", quantizer, "e.g. conv1._input_quantizer")->required();
  record->add_option("FILE", path, ".npy file: float32, float16 or float64, C order")->required();

  CLI::App* amax = app.add_subcommand("amax", "compute and print the amax table");
  amax->add_option("MODEL", model)->required();
  MethodFlags amax_flags;
  amax_flags.AddTo(amax, /*method_required=*/true);
  std::string amax_format = "table";
  amax->add_option("--format", amax_format, "table, json or trt (TensorRT calibration cache)")
      ->check(CLI::IsMember({"table", "json", "trt"}));

  CLI::App* histogram = app.add_subcommand("histogram", "print a quantizer's histogram of |x|");
  histogram->add_option("MODEL", model)->required();
  histogram->add_option("QUANTIZER", quantizer)->required();
  histogram->add_option("--format", format, "text or json")->check(CLI::IsMember({"text", "json"}));

  CLI::App* export_onnx = app.add_subcommand("export", "write a QDQ ONNX model");
  qcal::cli::ExportArgs export_args;
  export_onnx->add_option("MODEL", export_args.model)->required();
  export_onnx
      ->add_option("--onnx", export_args.onnx_in,
                   "float ONNX model (opset >= 13); the server keeps it (and --map) as the "
                   "model's ONNX only if the export succeeds")
      ->required();
  export_onnx->add_option("--out", export_args.onnx_out, "QDQ ONNX to write")->required();
  MethodFlags export_flags;
  export_flags.AddTo(export_onnx, /*method_required=*/false);
  export_onnx
      ->add_option("--map", export_args.maps,
                   "QUANTIZER=TENSOR: bind a quantizer to an ONNX tensor explicitly")
      ->check(CLI::Validator(
          [](const std::string& pair) -> std::string {
            const size_t eq = pair.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == pair.size()) {
              return "'" + pair + "' is not QUANTIZER=TENSOR";
            }
            return "";
          },
          "QUANTIZER=TENSOR"));
  export_onnx
      ->add_option("--target", export_args.target,
                   "tensorrt (default) or onnxruntime: the placement rules' target (shared vs "
                   "dedicated Q/DQ pairs, unsigned as INT8 for TensorRT, ConvTranspose weight "
                   "axis)")
      ->check(CLI::IsMember({"tensorrt", "onnxruntime"}));
  export_onnx->add_flag("--explain", export_args.explain,
                        "print, on stdout, every node input the placement rules considered: "
                        "quantized or why not");
  export_onnx
      ->add_option("--fp8-ops", export_args.fp8_ops,
                   "onnx (default; opset-19 QuantizeLinear, FLOAT8E4M3FN) or trt (TensorRT's "
                   "trt::TRT_FP8QuantizeLinear): how FP8 quantizers are written")
      ->check(CLI::IsMember({"onnx", "trt"}));

  CLI::App* reset = app.add_subcommand("reset", "drop a model's data, keep its configuration");
  reset->add_option("MODEL", model)->required();

  CLI::App* commit = app.add_subcommand(
      "commit", "make a model's state durable now (on disk with the server's --data-dir)");
  commit->add_option("MODEL", model)->required();

  CLI::App* remove = app.add_subcommand("delete", "delete a model");
  remove->add_option("MODEL", model)->required();

  CLI::App* state = app.add_subcommand(
      "state", "save a model's whole state to a file, or load (or merge) one into a model");
  state->require_subcommand(1);
  CLI::App* state_save = state->add_subcommand(
      "save",
      "write MODEL's state (configuration, calibrator state and counters, ONNX, amax table) to "
      "FILE, atomically");
  state_save->add_option("MODEL", model)->required();
  state_save->add_option("FILE", path, "state file to write (replaced if it exists)")->required();
  CLI::App* state_load = state->add_subcommand(
      "load",
      "create MODEL from a state FILE, or with --merge add FILE's calibrator state and counters "
      "into the existing MODEL (same configuration; histograms of the mergeable layout, or of "
      "the reference layout with identical edges)");
  state_load->add_option("MODEL", model)->required();
  state_load->add_option("FILE", path, "state file written by 'qcal state save'")->required();
  bool merge = false;
  state_load->add_flag("--merge", merge, "add into the existing MODEL instead of creating it");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // --help (and CLI11's other "success" exits) print and exit 0 as CLI11 does.
    if (error.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(error);
    std::vector<CLI::App*> selected = app.get_subcommands();
    // The innermost command given ("state save"), whose help the message points at.
    while (!selected.empty() && !selected.front()->get_subcommands().empty()) {
      selected = selected.front()->get_subcommands();
    }
    if (selected.empty()) {
      // CLI11 reports a word that names no command as a missing command: name the word.
      const std::vector<std::string> rest = app.remaining();
      if (!rest.empty() && !rest.front().starts_with("-")) {
        std::string commands;
        for (const CLI::App* command : app.get_subcommands({})) {
          commands += (commands.empty() ? "" : ", ") + command->get_name();
        }
        return UsageError("unknown command '" + rest.front() + "' (commands: " + commands + ")",
                          nullptr);
      }
    }
    return UsageError(error.what(), selected.empty() ? nullptr : selected.front());
  }
  qcal::ModelOptions model_options;
  if (*create) {
    model_options.exist_ok = exist_ok;
    if (!histogram_layout.empty()) model_options.histogram_layout = histogram_layout;
    for (const auto& [text, option, target] :
         {std::tuple{&default_input_text, "--default-input", &model_options.default_input},
          std::tuple{&default_weight_text, "--default-weight", &model_options.default_weight}}) {
      if (create->get_option(option)->count() == 0) continue;
      absl::StatusOr<qcal::QuantizerDescriptor> parsed =
          qcal::cli::ParseDescriptor(*text, option, /*named=*/false);
      if (!parsed.ok()) return UsageError(std::string(parsed.status().message()), create);
      *target = *std::move(parsed);
    }
    for (const std::string& text : quantizer_texts) {
      absl::StatusOr<qcal::QuantizerDescriptor> parsed =
          qcal::cli::ParseDescriptor(text, "--quantizer", /*named=*/true);
      if (!parsed.ok()) return UsageError(std::string(parsed.status().message()), create);
      model_options.quantizers.push_back(*std::move(parsed));
    }
    // Ranges and combinations (num_bits 2..16, a histogram with an axis, ...), as the client
    // library checks them; a bad model name stays the client's INVALID_ARGUMENT (exit 1).
    if (qcal::CheckName("model name", model).ok()) {
      const absl::Status checked = qcal::CreateModelRequestFor(model, model_options).status();
      if (!checked.ok()) return UsageError(std::string(checked.message()), create);
    }
  }
  for (const auto& [command, flags] :
       {std::pair{amax, &amax_flags}, std::pair{export_onnx, &export_flags}}) {
    if (!*command) continue;
    if (std::optional<std::string> mismatch = flags->Mismatch()) {
      return UsageError(*mismatch, command);
    }
  }

  if (timeout_option->count() > 0) options.timeout = absl::Seconds(timeout_seconds);
  absl::StatusOr<std::unique_ptr<qcal::Client>> connected = qcal::Client::Create(server, options);
  absl::Status status = connected.status();
  if (status.ok()) {
    qcal::Client& client = **connected;
    std::ostream& out = std::cout;
    const qcal::cli::ProgressTarget progress = qcal::cli::ProgressTarget::ForStderr(quiet);
    if (*models && !replicas.empty()) {
      status = qcal::cli::ListAllModels(replicas, options, format, out, std::cerr);
    } else if (*models) {
      status = qcal::cli::ListModels(client, format, out);
    } else if (*create) {
      status = qcal::cli::CreateModel(client, model, model_options, out);
    } else if (*info) {
      status = qcal::cli::ShowModel(client, model, format, out);
    } else if (*record) {
      // A mistyped address should not cost the session's whole reconnect deadline (60 s): the
      // one-shot command waits for the server no longer than --timeout, when given.
      qcal::SessionOptions session_options;
      if (options.timeout.has_value()) session_options.reconnect_deadline = *options.timeout;
      status = qcal::cli::RecordNpy(client, model, quantizer, path, session_options, progress, out);
    } else if (*amax) {
      status =
          qcal::cli::ComputeAmax(client, model, amax_flags.Options(), amax_format, out, std::cerr);
    } else if (*histogram) {
      status = qcal::cli::ShowHistogram(client, model, quantizer, format, out);
    } else if (*export_onnx) {
      if (!export_flags.method.empty()) export_args.compute = export_flags.Options();
      status = qcal::cli::ExportOnnx(client, export_args, progress, out, std::cerr);
    } else if (*reset) {
      status = qcal::cli::ResetModel(client, model, out);
    } else if (*commit) {
      status = qcal::cli::CommitModel(client, model, out);
    } else if (*remove) {
      status = qcal::cli::DeleteModel(client, model, out);
    } else if (*state_save) {
      status = qcal::cli::SaveState(client, model, path, progress, out);
    } else if (*state_load) {
      status = qcal::cli::LoadState(client, model, path, merge, progress, out);
    }
  }
  if (!status.ok()) {
    // A local file (a .npy or state file to read, --out or a state file to write) is no call:
    // its error has no gRPC code.
    std::cerr << "error: ";
    if (!qcal::IsLocalFileError(status)) {
      std::cerr << absl::StatusCodeToString(status.code()) << ": ";
    }
    std::cerr << status.message() << "\n";
    return 1;
  }
  return 0;
}
