// Adding two states of one quantizer (LoadState with merge): the state their batches together
// would give. Mergeable histograms add exactly (kernels::MergeMergeable); maxima take the
// elementwise max; reference-layout histograms add only when their edges are identical (their
// bins depend on which batch came first, so other edges cannot be added without changing the
// counts); counters add.
//
//   QCAL_ASSIGN_OR_RETURN(QuantizerSnapshot merged, MergeQuantizerSnapshots(have, loaded));
#ifndef QCAL_SERVER_STORAGE_SNAPSHOT_MERGE_H_
#define QCAL_SERVER_STORAGE_SNAPSHOT_MERGE_H_

#include "absl/status/statusor.h"
#include "kernels/histogram.h"
#include "server/storage/model_snapshot.h"

namespace qcal::server {

// `have` (the model's) plus `other` (the state file's), both consistent (QuantizerState::Restore
// accepts them) and with equal specs; the result keeps have's spec and `declared`. A side
// without state takes the other's state.
// Errors: FAILED_PRECONDITION for per-channel maxima of different channel counts, or
// reference-layout histograms whose edges differ; OUT_OF_RANGE when a counter or a count would
// pass 64 bits; INVALID_ARGUMENT for states of different kinds.
absl::StatusOr<QuantizerSnapshot> MergeQuantizerSnapshots(const QuantizerSnapshot& have,
                                                          const QuantizerSnapshot& other);

// Two reference-layout histogram states added: with identical edges the counts add; a side
// without bins adds its pending zeros to bin 0 (where the first range puts them). Errors as
// MergeQuantizerSnapshots'; `quantizer` names it in messages.
absl::StatusOr<kernels::Histogram::ReferenceState> MergeReferenceStates(
    const kernels::Histogram::ReferenceState& have, const kernels::Histogram::ReferenceState& other,
    absl::string_view quantizer);

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_SNAPSHOT_MERGE_H_
