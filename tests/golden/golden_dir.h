// Where the golden vectors live and how a golden file is loaded, with the refusals the suite
// relies on: a missing or empty folder, a missing or empty file, or a file without cases fails.
#ifndef QCAL_TESTS_GOLDEN_GOLDEN_DIR_H_
#define QCAL_TESTS_GOLDEN_GOLDEN_DIR_H_

#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace qcal::golden {

// The folder named by QCAL_GOLDEN_DIR (`env_value`, may be null): absolute, or relative to the
// repository root; unset or empty means ../shared/golden relative to the repository root.
std::filesystem::path GoldenDir(const char* env_value, const std::filesystem::path& repo_root);

// NOT_FOUND unless `dir` is an existing folder; FAILED_PRECONDITION when it holds no file.
absl::Status CheckGoldenDir(const std::filesystem::path& dir);

// GoldenDir of the QCAL_GOLDEN_DIR environment variable, checked by CheckGoldenDir.
absl::StatusOr<std::filesystem::path> GoldenDirFromEnvironment(
    const std::filesystem::path& repo_root);

// Parses dir/file_name. NOT_FOUND for a missing file; FAILED_PRECONDITION for an empty file or
// one without cases; INVALID_ARGUMENT for malformed JSON or a case_count that does not match.
absl::StatusOr<nlohmann::json> LoadGoldenFile(const std::filesystem::path& dir,
                                              const std::string& file_name);

}  // namespace qcal::golden

#endif  // QCAL_TESTS_GOLDEN_GOLDEN_DIR_H_
