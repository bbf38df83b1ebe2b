#include "server/storage/state_file.h"

#include <zlib.h>

#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "qcal/v1/calibration.pb.h"
#include "server/base/names.h"
#include "server/base/status_util.h"
#include "server/storage/model_state.h"

namespace qcal::server {

uint32_t StateFileCrc32(absl::string_view bytes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed a state larger than 4 GiB in pieces.
  constexpr size_t kPiece = size_t{1} << 30;
  for (size_t offset = 0; offset < bytes.size(); offset += kPiece) {
    const absl::string_view piece = bytes.substr(offset, kPiece);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(piece.data()), static_cast<uInt>(piece.size()));
  }
  return static_cast<uint32_t>(crc);
}

std::string EncodeStateFile(const ModelSnapshot& snapshot) {
  v1::ModelState state;
  ModelSnapshotToProto(snapshot, &state);
  v1::StateFile file;
  file.set_magic(std::string(kStateFileMagic));
  file.set_format_version(kStateFileVersion);
  file.set_model_state(state.SerializeAsString());
  file.set_crc32(StateFileCrc32(file.model_state()));
  // Fields serialize in number order: magic comes first.
  return file.SerializeAsString();
}

absl::StatusOr<ModelSnapshot> DecodeStateFile(absl::string_view bytes) {
  // What a state file starts with: the tag and length of `magic`, then the magic itself.
  const std::string prefix = absl::StrCat(
      "\x0a", std::string(1, static_cast<char>(kStateFileMagic.size())), kStateFileMagic);
  v1::StateFile file;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()) ||
      !file.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    if (absl::StartsWith(bytes, prefix)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the state file is truncated or corrupt: its ", bytes.size(),
                       " bytes start as a qcal.v1.StateFile but do not parse as one"));
    }
    return absl::InvalidArgumentError(absl::StrCat("not a qcal state file: its ", bytes.size(),
                                                   " bytes do not parse as a qcal.v1.StateFile"));
  }
  if (file.magic().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("not a qcal state file: its ", bytes.size(),
                                                   " bytes do not start with the magic '",
                                                   kStateFileMagic, "'"));
  }
  if (file.magic() != kStateFileMagic) {
    return absl::InvalidArgumentError(absl::StrCat("not a qcal state file: its magic is '",
                                                   ShortForMessage(file.magic()), "', not '",
                                                   kStateFileMagic, "'"));
  }
  if (file.format_version() < kOldestStateFileVersion ||
      file.format_version() > kStateFileVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the state file has format_version ", file.format_version(), "; this qcal-server reads ",
        kOldestStateFileVersion, " to ", kStateFileVersion,
        file.format_version() > kStateFileVersion ? " (the file is newer: upgrade qcal-server)"
                                                  : ""));
  }
  const uint32_t crc = StateFileCrc32(file.model_state());
  if (crc != file.crc32()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the state file is corrupt or truncated: the CRC-32 of its model_state (%u bytes) is "
        "%08x, but the file says %08x",
        file.model_state().size(), crc, file.crc32()));
  }
  v1::ModelState state;
  if (!state.ParseFromString(file.model_state())) {
    return absl::InvalidArgumentError(
        "the state file's model_state does not parse as a qcal.v1.ModelState (its CRC-32 "
        "matches: it was written malformed)");
  }
  if (file.format_version() == 1) {
    // Version 1 had neither field; a writer of 1 cannot have meant them.
    state.clear_sessions();
    state.clear_last_used_unix_seconds();
  }
  absl::StatusOr<ModelSnapshot> snapshot = ModelSnapshotFromProto(state);
  if (!snapshot.ok()) return Annotate(snapshot.status(), "state file");
  return snapshot;
}

}  // namespace qcal::server
