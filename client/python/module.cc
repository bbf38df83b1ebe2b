// qcal._qcal: the C++ client (qcal/client.h) for Python. The public, documented API is the
// pure-Python layer in qcal/__init__.py, which turns numpy arrays and torch tensors into
// (dtype, shape, buffer) and parses JSON; this module only crosses the language boundary.
//
// Every call that can wait (on the network, or on a full send queue) releases the GIL, so other
// Python threads keep running. Errors raise qcal.QcalError(code, message) with the gRPC code name.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "qcal/client.h"
#include "qcal/partial_state.h"

namespace py = pybind11;

namespace qcal::python {
namespace {

// Carries an absl::Status out of a binding; translated into qcal.QcalError.
struct StatusError : std::exception {
  explicit StatusError(absl::Status s) : status(std::move(s)) {}
  const char* what() const noexcept override { return "qcal status error"; }
  absl::Status status;
};

void Check(const absl::Status& status) {
  if (!status.ok()) throw StatusError(status);
}

template <typename T>
T Value(absl::StatusOr<T> result) {
  Check(result.status());
  return *std::move(result);
}

// Runs `call` without the GIL and returns its result; throws (with the GIL) on an error.
template <typename Call>
auto Released(Call&& call) {
  using Result = decltype(call());
  std::optional<Result> result;
  {
    py::gil_scoped_release release;
    result.emplace(call());
  }
  if constexpr (std::is_same_v<Result, absl::Status>) {
    Check(*result);
  } else {
    return Value(*std::move(result));
  }
}

// A Python buffer held in C order for the duration of a call (raises BufferError otherwise).
class ContiguousBuffer {
 public:
  explicit ContiguousBuffer(const py::handle& object) {
    if (PyObject_GetBuffer(object.ptr(), &view_, PyBUF_C_CONTIGUOUS) != 0) {
      throw py::error_already_set();
    }
  }
  ~ContiguousBuffer() { PyBuffer_Release(&view_); }
  ContiguousBuffer(const ContiguousBuffer&) = delete;
  ContiguousBuffer& operator=(const ContiguousBuffer&) = delete;

  std::span<const std::byte> bytes() const {
    return {static_cast<const std::byte*>(view_.buf), static_cast<size_t>(view_.len)};
  }

 private:
  Py_buffer view_;
};

py::object Axis(const v1::QuantizerSpec& spec) {
  return spec.has_axis() ? py::object(py::int_(spec.axis())) : py::object(py::none());
}

py::str CalibratorName(v1::CalibratorKind kind) {
  switch (kind) {
    case v1::CALIBRATOR_MAX:
      return py::str("max");
    case v1::CALIBRATOR_HISTOGRAM:
      return py::str("histogram");
    default:
      return py::str("default");
  }
}

py::dict SpecDict(const v1::QuantizerSpec& spec) {
  py::dict dict;
  dict["calibrator"] = CalibratorName(spec.calibrator());
  dict["num_bits"] = spec.num_bits();
  dict["unsigned"] = spec.is_unsigned();
  dict["axis"] = Axis(spec);
  dict["num_bins"] = spec.num_bins();
  dict["skip_zeros"] = spec.skip_zeros();
  dict["format"] = std::string(QuantFormatName(spec.format()));
  return dict;
}

py::dict InfoDict(const v1::ModelInfo& info) {
  py::dict quantizers;
  for (const v1::QuantizerStats& q : info.quantizers()) {
    py::dict entry = SpecDict(q.spec());
    entry["batches"] = q.batches();
    entry["elements"] = q.elements();
    entry["nonfinite"] = q.nonfinite();
    entry["bytes"] = q.bytes();
    entry["bins"] = q.bins();
    entry["amax_size"] = q.amax_size();
    quantizers[py::str(q.spec().name())] = entry;
  }
  py::dict dict;
  dict["name"] = info.name();
  dict["has_onnx"] = info.has_onnx();
  dict["amax_method"] =
      info.amax_method().empty() ? py::object(py::none()) : py::object(py::str(info.amax_method()));
  // None from a server without layouts.
  dict["histogram_layout"] =
      info.histogram_layout() == v1::HISTOGRAM_LAYOUT_UNSPECIFIED
          ? py::object(py::none())
          : py::object(py::str(std::string(HistogramLayoutName(info.histogram_layout()))));
  dict["default_input"] = SpecDict(info.default_input());
  dict["default_weight"] = SpecDict(info.default_weight());
  dict["quantizers"] = quantizers;
  dict["onnx_bindings"] =
      std::map<std::string, std::string>(info.onnx_bindings().begin(), info.onnx_bindings().end());
  return dict;
}

// (name, num_bits, unsigned, axis given, axis, calibrator, num_bins, skip_zeros, format) as the
// Python layer passes a descriptor dict: unset keys are None, and "axis": None (per-tensor) is
// told apart from no "axis" key by the flag.
using DescriptorTuple =
    std::tuple<std::string, std::optional<int32_t>, std::optional<bool>, bool,
               std::optional<int32_t>, std::optional<std::string>, std::optional<int32_t>,
               std::optional<bool>, std::optional<std::string>>;

QuantizerDescriptor ToDescriptor(const DescriptorTuple& tuple) {
  QuantizerDescriptor descriptor;
  bool axis_given = false;
  std::optional<int32_t> axis;
  std::tie(descriptor.name, descriptor.num_bits, descriptor.is_unsigned, axis_given, axis,
           descriptor.calibrator, descriptor.num_bins, descriptor.skip_zeros, descriptor.format) =
      tuple;
  if (axis_given) descriptor.axis = axis;
  return descriptor;
}

ModelOptions ToModelOptions(const std::optional<DescriptorTuple>& default_input,
                            const std::optional<DescriptorTuple>& default_weight,
                            const std::vector<DescriptorTuple>& quantizers, bool exist_ok,
                            const std::optional<std::string>& histogram_layout) {
  ModelOptions options;
  if (default_input.has_value()) options.default_input = ToDescriptor(*default_input);
  if (default_weight.has_value()) options.default_weight = ToDescriptor(*default_weight);
  for (const DescriptorTuple& quantizer : quantizers) {
    options.quantizers.push_back(ToDescriptor(quantizer));
  }
  options.exist_ok = exist_ok;
  options.histogram_layout = histogram_layout;
  return options;
}

py::dict HistogramDict(const v1::Histogram& histogram) {
  py::dict dict;
  dict["model"] = histogram.model();
  dict["quantizer"] = histogram.quantizer();
  dict["counts"] = py::array_t<uint64_t>(histogram.counts_size(), histogram.counts().data());
  dict["edges"] = py::array_t<float>(histogram.edges_size(), histogram.edges().data());
  dict["abs_max"] = histogram.abs_max();
  dict["total"] = histogram.total();
  dict["nonfinite"] = histogram.nonfinite();
  return dict;
}

py::dict StatsDict(const SessionStats& stats) {
  py::dict dict;
  dict["queued_batches"] = stats.queued_batches;
  dict["queued_bytes"] = stats.queued_bytes;
  dict["blocked_records"] = stats.blocked_records;
  dict["dropped_batches"] = stats.dropped_batches;
  dict["applied_batches"] = stats.applied_batches;
  dict["applied_elements"] = stats.applied_elements;
  dict["applied_nonfinite"] = stats.applied_nonfinite;
  dict["applied_bytes"] = stats.applied_bytes;
  dict["applied_partials"] = stats.applied_partials;
  dict["unconfirmed_batches"] = stats.unconfirmed_batches;
  dict["last_sequence"] = stats.last_sequence;
  dict["applied_sequence"] = stats.applied_sequence;
  dict["durable_sequence"] = stats.durable_sequence;
  dict["reconnects"] = stats.reconnects;
  dict["resent_batches"] = stats.resent_batches;
  dict["duplicate_batches"] = stats.duplicate_batches;
  return dict;
}

// A PartialState as the Python layer sees it: {"batches", "elements", "nonfinite", and
// "histogram": {"exponent", "counts" (numpy uint64), "abs_max", "zeros"} or "max": {"amax" (numpy
// float32), "axis" (int or None)}}.
py::dict PartialDict(const v1::PartialState& partial) {
  py::dict dict;
  dict["batches"] = partial.batches();
  dict["elements"] = partial.elements();
  dict["nonfinite"] = partial.nonfinite();
  if (partial.has_histogram()) {
    const v1::MergeableHistogram& h = partial.histogram();
    py::dict histogram;
    histogram["exponent"] = h.exponent();
    histogram["counts"] = py::array_t<uint64_t>(h.counts_size(), h.counts().data());
    histogram["abs_max"] = h.abs_max();
    histogram["zeros"] = h.zeros();
    dict["histogram"] = histogram;
  } else if (partial.has_max()) {
    py::dict max;
    max["amax"] = py::array_t<float>(partial.max().amax_size(), partial.max().amax().data());
    max["axis"] = partial.max().has_axis() ? py::object(py::int_(partial.max().axis()))
                                           : py::object(py::none());
    dict["max"] = max;
  }
  return dict;
}

v1::PartialState FromPartialDict(const py::dict& dict) {
  v1::PartialState partial;
  partial.set_batches(dict["batches"].cast<int64_t>());
  partial.set_elements(dict["elements"].cast<int64_t>());
  partial.set_nonfinite(dict["nonfinite"].cast<int64_t>());
  if (dict.contains("histogram") && !dict["histogram"].is_none()) {
    const py::dict h = dict["histogram"].cast<py::dict>();
    v1::MergeableHistogram* histogram = partial.mutable_histogram();
    histogram->set_exponent(h["exponent"].cast<int32_t>());
    const auto counts =
        py::array_t<uint64_t, py::array::c_style | py::array::forcecast>::ensure(h["counts"]);
    if (!counts) throw py::type_error("partial state: histogram counts must be integers");
    histogram->mutable_counts()->Assign(counts.data(), counts.data() + counts.size());
    histogram->set_abs_max(h["abs_max"].cast<float>());
    histogram->set_zeros(h["zeros"].cast<uint64_t>());
  } else if (dict.contains("max") && !dict["max"].is_none()) {
    const py::dict m = dict["max"].cast<py::dict>();
    const auto amax =
        py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(m["amax"]);
    if (!amax) throw py::type_error("partial state: max amax must be numbers");
    v1::MaxState* max = partial.mutable_max();
    max->mutable_amax()->Assign(amax.data(), amax.data() + amax.size());
    if (!m["axis"].is_none()) max->set_axis(m["axis"].cast<int32_t>());
  }
  return partial;
}

py::dict TargetDict(const PartialTarget& target) {
  py::dict dict;
  dict["calibrator"] = target.histogram ? "histogram" : "max";
  dict["num_bins"] = target.num_bins;
  dict["skip_zeros"] = target.skip_zeros;
  dict["axis"] =
      target.axis.has_value() ? py::object(py::int_(*target.axis)) : py::object(py::none());
  return dict;
}

// (method, percentile, start_bin, stride) as the Python layer passes it.
using MethodTuple =
    std::tuple<std::string, std::optional<double>, std::optional<int32_t>, std::optional<int32_t>>;

ComputeAmaxOptions ToOptions(const MethodTuple& method,
                             const std::map<std::string, MethodTuple>& overrides) {
  ComputeAmaxOptions options;
  std::tie(options.method, options.percentile, options.start_bin, options.stride) = method;
  for (const auto& [quantizer, entry] : overrides) {
    AmaxMethod& override_method = options.overrides[quantizer];
    std::tie(override_method.method, override_method.percentile, override_method.start_bin,
             override_method.stride) = entry;
  }
  return options;
}

// (json, trt_cache, warnings) of ComputeAmax's or GetAmaxTable's response.
std::tuple<std::string, std::string, std::vector<std::string>> TableForms(
    const v1::AmaxTableResponse& response) {
  return {response.json(), response.trt_cache(),
          std::vector<std::string>(response.warnings().begin(), response.warnings().end())};
}

std::string_view BytesView(const py::bytes& bytes) {
  char* data = nullptr;
  Py_ssize_t size = 0;
  if (PyBytes_AsStringAndSize(bytes.ptr(), &data, &size) != 0) throw py::error_already_set();
  return std::string_view(data, static_cast<size_t>(size));
}

// Sessions are destroyed without the GIL: the destructor waits for the sender to close its
// stream, which may need another Python thread (a server in the same process, say).
struct ReleasingDeleter {
  void operator()(ModelSession* session) const {
    py::gil_scoped_release release;
    delete session;
  }
};
using SessionHolder = std::unique_ptr<ModelSession, ReleasingDeleter>;

}  // namespace
}  // namespace qcal::python

PYBIND11_MODULE(_qcal, m) {
  using namespace qcal;          // NOLINT: the binding table reads better unqualified
  using namespace qcal::python;  // NOLINT
  m.doc() = "C++ client of qcal-server; use the documented API in the qcal package.";

  py::register_exception_translator([](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
    } catch (const StatusError& e) {
      py::object cls = py::module_::import("qcal._errors").attr("QcalError");
      py::object exception =
          cls(absl::StatusCodeToString(e.status.code()), std::string(e.status.message()));
      PyErr_SetObject(cls.ptr(), exception.ptr());
    }
  });

  m.attr("MAX_CHUNK_BYTES") = kMaxChunkBytes;
  m.def("default_address", &DefaultAddress, "$QCAL_SERVER, else 127.0.0.1:50051.");

  // Pre-aggregation with the server's own kernels (qcal/partial_state.h).
  m.def(
      "count_histogram",
      [](const std::string& dtype, const std::vector<int64_t>& shape, const py::object& data,
         int64_t num_bins, bool skip_zeros) {
        const DType parsed = Value(ParseDType(dtype));
        ContiguousBuffer buffer(data);
        const TensorView view{parsed, shape, buffer.bytes()};
        return PartialDict(
            Released([&] { return CountHistogramPartial(view, num_bins, skip_zeros); }));
      },
      py::arg("dtype"), py::arg("shape"), py::arg("data"), py::arg("num_bins"),
      py::arg("skip_zeros"));
  m.def(
      "count_max",
      [](const std::string& dtype, const std::vector<int64_t>& shape, const py::object& data,
         std::optional<int32_t> axis) {
        const DType parsed = Value(ParseDType(dtype));
        ContiguousBuffer buffer(data);
        const TensorView view{parsed, shape, buffer.bytes()};
        return PartialDict(Released([&] { return CountMaxPartial(view, axis); }));
      },
      py::arg("dtype"), py::arg("shape"), py::arg("data"), py::arg("axis"));
  m.def(
      "merge_partial",
      [](const py::dict& state, const py::dict& other, int64_t num_bins) {
        v1::PartialState merged = FromPartialDict(state);
        Check(MergePartial(merged, FromPartialDict(other), num_bins));
        return PartialDict(merged);
      },
      py::arg("state"), py::arg("other"), py::arg("num_bins"));

  // One quantizer's histogram counted across steps (HistogramPartialCounter): one pass per
  // tensor while the exponent holds.
  py::class_<HistogramPartialCounter>(m, "HistogramCounter")
      .def(py::init([](int64_t num_bins, bool skip_zeros) {
             return Value(HistogramPartialCounter::Create(num_bins, skip_zeros));
           }),
           py::arg("num_bins"), py::arg("skip_zeros"))
      .def(
          "add",
          [](HistogramPartialCounter& self, const std::string& dtype,
             const std::vector<int64_t>& shape, const py::object& data) {
            const DType parsed = Value(ParseDType(dtype));
            ContiguousBuffer buffer(data);
            const TensorView view{parsed, shape, buffer.bytes()};
            Released([&] { return self.Add(view); });
          },
          py::arg("dtype"), py::arg("shape"), py::arg("data"))
      .def(
          "merge",
          [](HistogramPartialCounter& self, const py::dict& partial) {
            Check(self.Merge(FromPartialDict(partial)));
          },
          py::arg("partial"))
      .def_property_readonly("batches", &HistogramPartialCounter::batches)
      .def("take", [](HistogramPartialCounter& self) { return PartialDict(self.Take()); });

  py::class_<ModelSession, SessionHolder>(m, "Session")
      .def_property_readonly("model", &ModelSession::model)
      .def(
          "record",
          [](ModelSession& self, const std::string& quantizer, const std::string& dtype,
             const std::vector<int64_t>& shape, const py::object& data) {
            const DType parsed = Value(ParseDType(dtype));
            ContiguousBuffer buffer(data);  // taken with the GIL, read without it
            const TensorView view{parsed, shape, buffer.bytes()};
            Released([&] { return self.Record(quantizer, view); });
          },
          py::arg("quantizer"), py::arg("dtype"), py::arg("shape"), py::arg("data"))
      .def(
          "record_partial",
          [](ModelSession& self, const std::string& quantizer, const py::dict& partial) {
            const v1::PartialState state = FromPartialDict(partial);
            Released([&] { return self.RecordPartial(quantizer, state); });
          },
          py::arg("quantizer"), py::arg("partial"))
      .def(
          "partial_targets",
          [](ModelSession& self, const std::vector<std::string>& quantizers) {
            // One GetModel for all (Info() flushes first, as every state-reading call does).
            const v1::ModelInfo info = Released([&] { return self.Info(); });
            py::dict targets;
            for (const std::string& quantizer : quantizers) {
              absl::StatusOr<PartialTarget> target = PartialTargetFor(info, quantizer);
              if (!target.ok()) {  // named as the C++ session names it
                Check(absl::Status(target.status().code(),
                                   absl::StrCat("model '", self.model(), "', quantizer '",
                                                quantizer, "': ", target.status().message())));
              }
              targets[py::str(quantizer)] = TargetDict(*target);
            }
            return targets;
          },
          py::arg("quantizers"))
      .def("flush", [](ModelSession& self) { Released([&] { return self.Flush(); }); })
      .def("commit",
           [](ModelSession& self) {
             const CommitResult result = Released([&] { return self.Commit(); });
             py::dict dict;
             dict["applied_sequence"] = result.applied_sequence;
             dict["durable_sequence"] = result.durable_sequence;
             return dict;
           })
      .def("stats", [](ModelSession& self) { return StatsDict(self.Stats()); })
      .def("info",
           [](ModelSession& self) { return InfoDict(Released([&] { return self.Info(); })); })
      .def("reset",
           [](ModelSession& self) { return InfoDict(Released([&] { return self.Reset(); })); })
      .def(
          "compute_amax",
          [](ModelSession& self, const MethodTuple& method,
             const std::map<std::string, MethodTuple>& overrides) {
            ComputeAmaxOptions options = ToOptions(method, overrides);
            // One call: the forms of the table this call computed (a second GetAmaxTable could
            // read another client's table); the message form is not used here.
            options.forms = {v1::TABLE_FORM_JSON, v1::TABLE_FORM_TRT_CACHE};
            return TableForms(Released([&] { return self.ComputeAmaxTable(options); }));
          },
          py::arg("method"), py::arg("overrides"))
      .def("amax_table",
           [](ModelSession& self) {
             return TableForms(Released([&] {
               return self.AmaxTable({v1::TABLE_FORM_JSON, v1::TABLE_FORM_TRT_CACHE});
             }));
           })
      .def(
          "histogram",
          [](ModelSession& self, const std::string& quantizer) {
            return HistogramDict(Released([&] { return self.Histogram(quantizer); }));
          },
          py::arg("quantizer"))
      .def(
          "upload_onnx",
          [](ModelSession& self, const py::bytes& onnx,
             const std::map<std::string, std::string>& tensor_map) {
            const std::string_view bytes = BytesView(onnx);
            const v1::UploadOnnxResponse response =
                Released([&] { return self.UploadOnnx(bytes, tensor_map); });
            py::dict dict;
            dict["bytes"] = response.bytes();
            dict["opset"] = response.opset();
            dict["bindings"] = std::map<std::string, std::string>(response.bindings().begin(),
                                                                  response.bindings().end());
            return dict;
          },
          py::arg("onnx"), py::arg("tensor_map"))
      .def(
          "export_onnx",
          [](ModelSession& self, const std::optional<py::bytes>& onnx,
             const std::optional<MethodTuple>& method,
             const std::map<std::string, MethodTuple>& overrides,
             const std::map<std::string, std::string>& tensor_map, const std::string& target,
             bool explain, const std::string& fp8_ops) {
            ExportOptions options;
            if (method.has_value()) options.compute = ToOptions(*method, overrides);
            options.tensor_map = tensor_map;
            options.target = target;
            options.explain = explain;
            options.fp8_ops = fp8_ops;
            std::optional<std::string_view> bytes;
            if (onnx.has_value()) bytes = BytesView(*onnx);
            ExportResult result = Released([&] { return self.ExportOnnx(bytes, options); });
            py::list entries;
            for (const ExplainEntry& e : result.explain) {
              py::dict entry;
              entry["node"] = e.node;
              entry["op_type"] = e.op_type;
              entry["input"] = e.input;
              entry["tensor"] = e.tensor;
              entry["decision"] = e.decision;
              entry["quantizer"] = e.quantizer;
              entry["rule"] = e.rule;
              entry["reason"] = e.reason;
              entries.append(entry);
            }
            return std::make_tuple(py::bytes(result.onnx), result.warnings, result.amax_method,
                                   result.computed_table, entries);
          },
          py::arg("onnx"), py::arg("method"), py::arg("overrides"), py::arg("tensor_map"),
          py::arg("target"), py::arg("explain") = false, py::arg("fp8_ops") = "");

  py::class_<Client>(m, "Client")
      .def(py::init([](const std::string& address, std::optional<double> timeout,
                       const std::string& tls_ca, const std::string& tls_cert,
                       const std::string& tls_key, const std::string& token) {
             ClientOptions options;
             if (timeout.has_value()) options.timeout = absl::Seconds(*timeout);
             options.tls_ca = tls_ca;
             options.tls_cert = tls_cert;
             options.tls_key = tls_key;
             options.token = token;
             return Value(Client::Create(address, options));
           }),
           py::arg("address"), py::arg("timeout") = py::none(), py::arg("tls_ca") = "",
           py::arg("tls_cert") = "", py::arg("tls_key") = "", py::arg("token") = "")
      .def_property_readonly("address", &Client::address)
      .def(
          "create_model",
          [](Client& self, const std::string& model,
             const std::optional<DescriptorTuple>& default_input,
             const std::optional<DescriptorTuple>& default_weight,
             const std::vector<DescriptorTuple>& quantizers, bool exist_ok,
             const std::optional<std::string>& histogram_layout) {
            const ModelOptions options = ToModelOptions(default_input, default_weight, quantizers,
                                                        exist_ok, histogram_layout);
            return InfoDict(Released([&] { return self.CreateModel(model, options); }));
          },
          py::arg("model"), py::arg("default_input") = py::none(),
          py::arg("default_weight") = py::none(),
          py::arg("quantizers") = std::vector<DescriptorTuple>(), py::arg("exist_ok") = false,
          py::arg("histogram_layout") = py::none())
      .def(
          "get_model",
          [](Client& self, const std::string& model) {
            return InfoDict(Released([&] { return self.GetModel(model); }));
          },
          py::arg("model"))
      .def("list_models",
           [](Client& self) {
             py::list models;
             for (const v1::ModelInfo& info : Released([&] { return self.ListModels(); })) {
               models.append(InfoDict(info));
             }
             return models;
           })
      .def(
          "delete_model",
          [](Client& self, const std::string& model) {
            Released([&] { return self.DeleteModel(model); });
          },
          py::arg("model"))
      .def(
          "commit_model",
          [](Client& self, const std::string& model) {
            Released([&] { return self.Commit(model); });
          },
          py::arg("model"))
      .def(
          "reset_model",
          [](Client& self, const std::string& model) {
            return InfoDict(Released([&] { return self.ResetModel(model); }));
          },
          py::arg("model"))
      .def(
          "save_state",
          [](Client& self, const std::string& model) {
            return py::bytes(Released([&] { return self.SaveState(model); }));
          },
          py::arg("model"))
      .def(
          "load_state",
          [](Client& self, const std::string& model, const py::bytes& state, bool merge) {
            const std::string_view bytes = BytesView(state);
            return InfoDict(
                Released([&] { return self.LoadState(model, bytes, {.merge = merge}); }));
          },
          py::arg("model"), py::arg("state"), py::arg("merge"))
      .def(
          "load_state_file",
          [](Client& self, const std::string& model, const std::string& path, bool merge) {
            return InfoDict(
                Released([&] { return self.LoadStateFile(model, path, {.merge = merge}); }));
          },
          py::arg("model"), py::arg("path"), py::arg("merge"))
      .def(
          "session",
          [](Client& self, const std::string& model, std::optional<size_t> max_queue_bytes,
             std::optional<size_t> chunk_bytes, bool aggregate, int64_t send_every,
             std::optional<double> reconnect_deadline) {
            SessionOptions options;
            if (reconnect_deadline.has_value()) {
              options.reconnect_deadline = absl::Seconds(*reconnect_deadline);
            }
            if (max_queue_bytes.has_value()) options.max_queue_bytes = *max_queue_bytes;
            if (chunk_bytes.has_value()) options.chunk_bytes = *chunk_bytes;
            options.aggregate = aggregate;
            options.aggregate_send_every = send_every;
            return SessionHolder(self.Model(model, options).release());
          },
          py::arg("model"), py::arg("max_queue_bytes") = py::none(),
          py::arg("chunk_bytes") = py::none(), py::arg("aggregate") = false,
          py::arg("send_every") = 0, py::arg("reconnect_deadline") = py::none());
}
