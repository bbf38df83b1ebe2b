#include "tests/golden/golden_dir.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace qcal::golden {

std::filesystem::path GoldenDir(const char* env_value, const std::filesystem::path& repo_root) {
  if (env_value == nullptr || *env_value == '\0') return repo_root / ".." / "shared" / "golden";
  const std::filesystem::path dir(env_value);
  return dir.is_absolute() ? dir : repo_root / dir;
}

absl::Status CheckGoldenDir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("golden folder ", dir.string(), " does not exist (set QCAL_GOLDEN_DIR)"));
  }
  if (std::filesystem::is_empty(dir, ec) || ec) {
    return absl::FailedPreconditionError(absl::StrCat("golden folder ", dir.string(), " is empty"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::filesystem::path> GoldenDirFromEnvironment(
    const std::filesystem::path& repo_root) {
  const std::filesystem::path dir = GoldenDir(std::getenv("QCAL_GOLDEN_DIR"), repo_root);
  if (absl::Status status = CheckGoldenDir(dir); !status.ok()) return status;
  return dir;
}

absl::StatusOr<nlohmann::json> LoadGoldenFile(const std::filesystem::path& dir,
                                              const std::string& file_name) {
  const std::filesystem::path path = dir / file_name;
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("golden file ", path.string(), " is missing"));
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().empty()) {
    return absl::FailedPreconditionError(absl::StrCat("golden file ", path.string(), " is empty"));
  }
  nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(
        absl::StrCat("golden file ", path.string(), " is not valid JSON"));
  }
  if (!doc.is_object() || !doc.contains("cases") || !doc["cases"].is_array() ||
      doc["cases"].empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("golden file ", path.string(), " has no cases"));
  }
  if (doc.contains("case_count") && doc["case_count"] != doc["cases"].size()) {
    return absl::InvalidArgumentError(absl::StrCat("golden file ", path.string(), " announces ",
                                                   doc["case_count"].dump(), " cases but holds ",
                                                   doc["cases"].size()));
  }
  return doc;
}

}  // namespace qcal::golden
