#include "server/storage/model_state.h"

#include <algorithm>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "server/base/status_util.h"

namespace qcal::server {
namespace {

std::string AxisText(const std::optional<int>& axis) {
  return axis.has_value() ? absl::StrCat("axis ", *axis) : "no axis";
}

void StateToProto(const CalibratorState& state, const QuantizerSpec& spec,
                  v1::QuantizerSnapshot* proto) {
  if (const auto* max = std::get_if<MaxValues>(&state)) {
    v1::MaxState* out = proto->mutable_max();
    out->mutable_amax()->Add(max->amax.begin(), max->amax.end());
    if (spec.axis.has_value()) out->set_axis(*spec.axis);
  } else if (const auto* mergeable = std::get_if<kernels::MergeableState>(&state)) {
    v1::MergeableHistogram* out = proto->mutable_mergeable_histogram();
    out->set_exponent(mergeable->exponent);
    out->mutable_counts()->Add(mergeable->counts.begin(), mergeable->counts.end());
    out->set_abs_max(mergeable->abs_max);
    out->set_zeros(mergeable->zeros);
  } else if (const auto* reference = std::get_if<kernels::Histogram::ReferenceState>(&state)) {
    v1::ReferenceHistogram* out = proto->mutable_reference_histogram();
    out->mutable_counts()->Add(reference->counts.begin(), reference->counts.end());
    out->mutable_edges()->Add(reference->edges.begin(), reference->edges.end());
    out->set_abs_max(reference->abs_max);
    out->set_total(reference->total);
    out->set_pending_zeros(reference->pending_zeros);
    out->set_collected(reference->collected);
  }
}

absl::StatusOr<CalibratorState> StateFromProto(const v1::QuantizerSnapshot& proto,
                                               const QuantizerSpec& spec,
                                               const std::string& where) {
  const bool histogram = spec.calibrator == CalibratorKind::kHistogram;
  const bool mergeable = spec.layout == kernels::HistogramLayout::kMergeable;
  switch (proto.calibrator_case()) {
    case v1::QuantizerSnapshot::CALIBRATOR_NOT_SET:
      return CalibratorState{};
    case v1::QuantizerSnapshot::kMax: {
      if (histogram) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": a max state for a histogram calibrator"));
      }
      const std::optional<int> axis =
          proto.max().has_axis() ? std::optional<int>(proto.max().axis()) : std::nullopt;
      if (axis != spec.axis) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": max state with ", AxisText(axis),
                                                       ", but the spec has ", AxisText(spec.axis)));
      }
      return CalibratorState{
          MaxValues{.amax = {proto.max().amax().begin(), proto.max().amax().end()}}};
    }
    case v1::QuantizerSnapshot::kMergeableHistogram: {
      if (!histogram || !mergeable) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": a mergeable_histogram state for a ",
                         histogram ? "model of the reference layout" : "max calibrator"));
      }
      const v1::MergeableHistogram& in = proto.mergeable_histogram();
      return CalibratorState{
          kernels::MergeableState{.exponent = in.exponent(),
                                  .counts = {in.counts().begin(), in.counts().end()},
                                  .abs_max = in.abs_max(),
                                  .zeros = in.zeros()}};
    }
    case v1::QuantizerSnapshot::kReferenceHistogram: {
      if (!histogram || mergeable) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": a reference_histogram state for a ",
                         histogram ? "model of the mergeable layout" : "max calibrator"));
      }
      const v1::ReferenceHistogram& in = proto.reference_histogram();
      return CalibratorState{
          kernels::Histogram::ReferenceState{.counts = {in.counts().begin(), in.counts().end()},
                                             .edges = {in.edges().begin(), in.edges().end()},
                                             .abs_max = in.abs_max(),
                                             .total = in.total(),
                                             .pending_zeros = in.pending_zeros(),
                                             .collected = in.collected()}};
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(where, ": unknown calibrator state"));
}

v1::QuantFormat QuantFormatToProto(kernels::QuantFormat format) {
  return format == kernels::QuantFormat::kFp8E4M3 ? v1::QUANT_FORMAT_FP8_E4M3
                                                  : v1::QUANT_FORMAT_INT;
}

}  // namespace

absl::StatusOr<kernels::QuantFormat> QuantFormatFromProto(int format, absl::string_view where) {
  switch (format) {
    case v1::QUANT_FORMAT_INT:
      return kernels::QuantFormat::kInt;
    case v1::QUANT_FORMAT_FP8_E4M3:
      return kernels::QuantFormat::kFp8E4M3;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown format ", format,
                       "; expected QUANT_FORMAT_INT (0, or unset) or QUANT_FORMAT_FP8_E4M3 (1)"));
  }
}

absl::StatusOr<QuantizerSpec> SpecFromProto(const v1::QuantizerSpec& proto,
                                            CalibratorKind unspecified) {
  QuantizerSpec spec{.name = proto.name(),
                     .num_bits = proto.num_bits() == 0 ? kDefaultNumBits : proto.num_bits(),
                     .is_unsigned = proto.is_unsigned(),
                     .axis = std::nullopt,
                     .calibrator = unspecified,
                     .num_bins = proto.num_bins() == 0 ? kDefaultNumBins : proto.num_bins(),
                     .skip_zeros = proto.skip_zeros()};
  if (proto.has_axis()) spec.axis = proto.axis();
  QCAL_ASSIGN_OR_RETURN(
      spec.format,
      QuantFormatFromProto(proto.format(), absl::StrCat("quantizer '", proto.name(), "'")));
  switch (proto.calibrator()) {
    case v1::CALIBRATOR_UNSPECIFIED:
      break;
    case v1::CALIBRATOR_MAX:
      spec.calibrator = CalibratorKind::kMax;
      break;
    case v1::CALIBRATOR_HISTOGRAM:
      spec.calibrator = CalibratorKind::kHistogram;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("quantizer '", proto.name(),
                                                     "': unknown calibrator ",
                                                     static_cast<int>(proto.calibrator())));
  }
  return spec;
}

void SpecToProto(const QuantizerSpec& spec, v1::QuantizerSpec* proto) {
  proto->set_name(spec.name);
  proto->set_num_bits(spec.num_bits);
  proto->set_is_unsigned(spec.is_unsigned);
  if (spec.axis.has_value()) {
    proto->set_axis(*spec.axis);
  } else {
    proto->clear_axis();
  }
  proto->set_calibrator(spec.calibrator == CalibratorKind::kMax ? v1::CALIBRATOR_MAX
                                                                : v1::CALIBRATOR_HISTOGRAM);
  proto->set_num_bins(spec.num_bins);
  proto->set_skip_zeros(spec.skip_zeros);
  proto->set_format(QuantFormatToProto(spec.format));
}

void AmaxTableToProto(const AmaxTable& table, v1::AmaxTable* proto) {
  proto->set_model(table.model);
  proto->set_method(table.method);
  for (const auto& [name, entry] : table.quantizers) {
    v1::QuantizerAmax* out = proto->add_quantizers();
    out->set_name(name);
    out->mutable_amax()->Add(entry.amax.begin(), entry.amax.end());
    if (entry.axis.has_value()) out->set_axis(*entry.axis);
    out->set_num_bits(entry.num_bits);
    out->set_is_unsigned(entry.is_unsigned);
    out->set_method(entry.method);
    out->set_batches(entry.batches);
    out->set_elements(entry.elements);
    out->set_nonfinite(entry.nonfinite);
    out->set_format(QuantFormatToProto(entry.format));
  }
}

AmaxTable AmaxTableFromProto(const v1::AmaxTable& proto) {
  AmaxTable table{.model = proto.model(), .method = proto.method(), .quantizers = {}};
  for (const v1::QuantizerAmax& in : proto.quantizers()) {
    QuantizerAmax entry{.name = in.name(),
                        .amax = {in.amax().begin(), in.amax().end()},
                        .axis = std::nullopt,
                        .num_bits = in.num_bits(),
                        .is_unsigned = in.is_unsigned(),
                        .method = in.method(),
                        .batches = in.batches(),
                        .elements = in.elements(),
                        .nonfinite = in.nonfinite()};
    if (in.has_axis()) entry.axis = in.axis();
    // A value this build does not know reads as integers: this form is only read back from a
    // table this server wrote.
    if (in.format() == v1::QUANT_FORMAT_FP8_E4M3) entry.format = kernels::QuantFormat::kFp8E4M3;
    table.quantizers.insert_or_assign(in.name(), std::move(entry));
  }
  return table;
}

v1::HistogramLayout HistogramLayoutToProto(kernels::HistogramLayout layout) {
  return layout == kernels::HistogramLayout::kReference ? v1::HISTOGRAM_LAYOUT_REFERENCE
                                                        : v1::HISTOGRAM_LAYOUT_MERGEABLE;
}

void ModelSnapshotToProto(const ModelSnapshot& snapshot, v1::ModelState* proto) {
  proto->set_model(snapshot.model);
  proto->set_histogram_layout(HistogramLayoutToProto(snapshot.layout));
  SpecToProto(snapshot.default_input, proto->mutable_default_input());
  SpecToProto(snapshot.default_weight, proto->mutable_default_weight());
  for (const QuantizerSnapshot& quantizer : snapshot.quantizers) {
    v1::QuantizerSnapshot* out = proto->add_quantizers();
    SpecToProto(quantizer.spec, out->mutable_spec());
    out->set_declared(quantizer.declared);
    out->set_batches(quantizer.batches);
    out->set_elements(quantizer.elements);
    out->set_nonfinite(quantizer.nonfinite);
    out->set_bytes(quantizer.bytes);
    StateToProto(quantizer.state, quantizer.spec, out);
  }
  proto->set_onnx(snapshot.onnx);
  for (const auto& [quantizer, tensor] : snapshot.tensor_map) {
    v1::TensorMapEntry* entry = proto->add_tensor_map();
    entry->set_key(quantizer);
    entry->set_value(tensor);
  }
  if (snapshot.amax_table.has_value()) {
    AmaxTableToProto(*snapshot.amax_table, proto->mutable_amax_table());
  }
  for (const auto& [session_id, sequence] : snapshot.sessions) {  // in session_id order
    v1::SessionSequence* session = proto->add_sessions();
    session->set_session_id(session_id);
    session->set_sequence(sequence);
  }
  proto->set_last_used_unix_seconds(snapshot.last_used_unix_seconds);
}

absl::StatusOr<ModelSnapshot> ModelSnapshotFromProto(const v1::ModelState& proto) {
  ModelSnapshot out{.model = proto.model()};
  switch (proto.histogram_layout()) {
    case v1::HISTOGRAM_LAYOUT_REFERENCE:
      out.layout = kernels::HistogramLayout::kReference;
      break;
    case v1::HISTOGRAM_LAYOUT_MERGEABLE:
      out.layout = kernels::HistogramLayout::kMergeable;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "the state's histogram_layout is ", static_cast<int>(proto.histogram_layout()),
          "; expected HISTOGRAM_LAYOUT_REFERENCE (1) or HISTOGRAM_LAYOUT_MERGEABLE (2)"));
  }
  QCAL_ASSIGN_OR_RETURN(out.default_input,
                        SpecFromProto(proto.default_input(), DefaultInputSpec().calibrator));
  QCAL_ASSIGN_OR_RETURN(out.default_weight,
                        SpecFromProto(proto.default_weight(), DefaultWeightSpec().calibrator));
  out.default_input.layout = out.layout;
  out.default_weight.layout = out.layout;
  for (const v1::QuantizerSnapshot& in : proto.quantizers()) {
    const QuantizerSpec& role =
        IsWeightQuantizer(in.spec().name()) ? out.default_weight : out.default_input;
    QuantizerSnapshot quantizer{.declared = in.declared(),
                                .batches = in.batches(),
                                .elements = in.elements(),
                                .nonfinite = in.nonfinite(),
                                .bytes = in.bytes()};
    QCAL_ASSIGN_OR_RETURN(quantizer.spec, SpecFromProto(in.spec(), role.calibrator));
    quantizer.spec.layout = out.layout;
    QCAL_ASSIGN_OR_RETURN(
        quantizer.state,
        StateFromProto(in, quantizer.spec, absl::StrCat("quantizer '", in.spec().name(), "'")));
    out.quantizers.push_back(std::move(quantizer));
  }
  out.onnx = proto.onnx();
  for (const v1::TensorMapEntry& entry : proto.tensor_map()) {
    if (!out.tensor_map.emplace(entry.key(), entry.value()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the state's tensor_map names quantizer '", entry.key(), "' twice"));
    }
  }
  if (proto.has_amax_table()) out.amax_table = AmaxTableFromProto(proto.amax_table());
  for (const v1::SessionSequence& session : proto.sessions()) {
    if (!out.sessions.emplace(session.session_id(), session.sequence()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("the state's sessions name session ",
                       absl::BytesToHexString(session.session_id().substr(0, 32)), " twice"));
    }
  }
  out.last_used_unix_seconds = std::max<int64_t>(proto.last_used_unix_seconds(), 0);
  return out;
}

}  // namespace qcal::server
