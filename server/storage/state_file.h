// The state file: a model's whole state (ModelSnapshot) as bytes that can be written to disk,
// shipped to another server and loaded there (qcal.v1.StateFile: magic "qcal.v1.StateFile",
// format_version 2, the serialized ModelState, and its CRC-32 as zlib's crc32 computes it).
// SaveState streams these bytes, LoadState reads them, `qcal state save/load` writes and reads
// them, and --data-dir keeps one per model (storage/data_dir.h).
//
//   std::string bytes = EncodeStateFile(snapshot);
//   QCAL_ASSIGN_OR_RETURN(ModelSnapshot back, DecodeStateFile(bytes));
#ifndef QCAL_SERVER_STORAGE_STATE_FILE_H_
#define QCAL_SERVER_STORAGE_STATE_FILE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/storage/model_snapshot.h"

namespace qcal::server {

inline constexpr absl::string_view kStateFileMagic = "qcal.v1.StateFile";
// The layout of ModelState this server writes, and the newest it reads: 2 added
// ModelState.sessions and last_used_unix_seconds.
inline constexpr uint32_t kStateFileVersion = 2;
// The oldest it reads: a version 1 file loads as a model with no sessions and an unknown last use
// (0).
inline constexpr uint32_t kOldestStateFileVersion = 1;

// zlib's crc32 of `bytes` (the polynomial of gzip and PNG).
uint32_t StateFileCrc32(absl::string_view bytes);

// The serialized StateFile of `snapshot`. Its bytes start with the tag of `magic` and
// "qcal.v1.StateFile".
std::string EncodeStateFile(const ModelSnapshot& snapshot);

// The snapshot a serialized StateFile holds. INVALID_ARGUMENT, saying what is wrong: bytes that
// are not a state file (they do not parse as one, or carry no magic), another magic, a
// format_version outside kOldestStateFileVersion..kStateFileVersion, naming it (a newer one:
// "upgrade qcal-server"), a CRC-32 that does not match
// the ModelState's bytes (a corrupt or truncated file), a ModelState that does not parse, and
// ModelSnapshotFromProto's errors.
absl::StatusOr<ModelSnapshot> DecodeStateFile(absl::string_view bytes);

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_STATE_FILE_H_
