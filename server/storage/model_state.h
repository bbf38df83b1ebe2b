// ModelSnapshot <-> qcal.v1.ModelState (the payload of a state file), and the conversions of the
// parts it shares with the API (QuantizerSpec, AmaxTable, HistogramLayout), which the gRPC
// front-end uses too.
//
//   v1::ModelState proto;
//   ModelSnapshotToProto(snapshot, &proto);
//   QCAL_ASSIGN_OR_RETURN(ModelSnapshot back, ModelSnapshotFromProto(proto));
#ifndef QCAL_SERVER_STORAGE_MODEL_STATE_H_
#define QCAL_SERVER_STORAGE_MODEL_STATE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/mergeable_histogram.h"
#include "kernels/quant_format.h"
#include "qcal/v1/calibration.pb.h"
#include "server/storage/model_snapshot.h"
#include "server/tables/amax_table.h"
#include "server/tables/quantizer_spec.h"

namespace qcal::server {

// The wire's QuantFormat (unset: QUANT_FORMAT_INT). INVALID_ARGUMENT naming `where` for a value
// outside the enum (a newer client's format this server does not know).
absl::StatusOr<kernels::QuantFormat> QuantFormatFromProto(int format, absl::string_view where);

// num_bits 0 -> 8, num_bins 0 -> 2048, format unset -> QUANT_FORMAT_INT, CALIBRATOR_UNSPECIFIED ->
// `unspecified` (the role's default). Not validated here (Model and QuantizerState do that); the
// layout is left at its default (the model sets it). INVALID_ARGUMENT for a calibrator or format
// value outside its enum.
absl::StatusOr<QuantizerSpec> SpecFromProto(const v1::QuantizerSpec& proto,
                                            CalibratorKind unspecified);
void SpecToProto(const QuantizerSpec& spec, v1::QuantizerSpec* proto);

void AmaxTableToProto(const AmaxTable& table, v1::AmaxTable* proto);
AmaxTable AmaxTableFromProto(const v1::AmaxTable& proto);

v1::HistogramLayout HistogramLayoutToProto(kernels::HistogramLayout layout);

void ModelSnapshotToProto(const ModelSnapshot& snapshot, v1::ModelState* proto);

// The snapshot a ModelState describes, every spec's layout set to the state's. INVALID_ARGUMENT
// naming the field for what does not fit the format: a histogram_layout that is no layout
// (UNSPECIFIED included), an unknown calibrator, a calibrator state whose kind disagrees with
// the spec's calibrator or the layout, a MaxState whose axis is not the spec's, a tensor_map
// naming a quantizer twice, sessions naming a session twice. The states' own consistency is checked
// when a model takes them (QuantizerState::Restore).
absl::StatusOr<ModelSnapshot> ModelSnapshotFromProto(const v1::ModelState& proto);

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_MODEL_STATE_H_
