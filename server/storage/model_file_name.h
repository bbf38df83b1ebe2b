// The name of a model's file in --data-dir: a readable prefix of the model name, escaped, then
// 32 hex digits of the name's SHA-256, then ".qcalstate". Model names are 1 to 1024 bytes of
// UTF-8 and may hold '/', file names at most 255 bytes; this maps every name to one file name of
// at most 171 bytes, and different names to different files (the hash decides; the prefix is
// for people). The model name inside the file is authoritative: a file is loaded only under the
// name of the model it holds.
//
//   ModelFileName("team/resnet50")   // "team%2Fresnet50.1f0c...9a.qcalstate"
#ifndef QCAL_SERVER_STORAGE_MODEL_FILE_NAME_H_
#define QCAL_SERVER_STORAGE_MODEL_FILE_NAME_H_

#include <string>

#include "absl/strings/string_view.h"

namespace qcal::server {

inline constexpr absl::string_view kModelFileSuffix = ".qcalstate";
// Files being written start with it (a model file never starts with '.'); a server removes the
// ones a crash left when it starts.
inline constexpr absl::string_view kTempFilePrefix = ".qcaltmp-";
// At most this many bytes of escaped model name start a file name.
inline constexpr size_t kModelFilePrefixBytes = 128;

// Bytes outside [A-Za-z0-9_.-], and a leading '.', are written %XX; the prefix is cut before
// kModelFilePrefixBytes without splitting an escape.
std::string ModelFileName(absl::string_view model);

}  // namespace qcal::server

#endif  // QCAL_SERVER_STORAGE_MODEL_FILE_NAME_H_
