#include "tests/golden/golden_dir.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace qcal::golden {
namespace {

namespace fs = std::filesystem;

// A fresh folder under the test's temporary directory.
fs::path FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("qcal_golden_dir_test_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void Write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

TEST(golden_dir, DefaultIsSharedGoldenNextToTheRepository) {
  EXPECT_EQ(GoldenDir(nullptr, "/repo"), fs::path("/repo/../shared/golden"));
  EXPECT_EQ(GoldenDir("", "/repo"), fs::path("/repo/../shared/golden"));
}

TEST(golden_dir, RelativeToRepositoryOrAbsolute) {
  EXPECT_EQ(GoldenDir("data/golden", "/repo"), fs::path("/repo/data/golden"));
  EXPECT_EQ(GoldenDir("/elsewhere/golden", "/repo"), fs::path("/elsewhere/golden"));
}

TEST(golden_dir, EnvironmentPointingToAnEmptyFolderFails) {
  const fs::path empty = FreshDir("empty");
  const char* old = std::getenv("QCAL_GOLDEN_DIR");
  const std::string saved = old != nullptr ? old : "";
  ASSERT_EQ(setenv("QCAL_GOLDEN_DIR", empty.c_str(), 1), 0);
  const auto dir = GoldenDirFromEnvironment("/repo");
  if (old != nullptr) {
    setenv("QCAL_GOLDEN_DIR", saved.c_str(), 1);
  } else {
    unsetenv("QCAL_GOLDEN_DIR");
  }
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(dir.status().message().find("empty"), std::string::npos);
}

TEST(golden_dir, MissingFolderFails) {
  const fs::path missing = FreshDir("missing") / "not_there";
  EXPECT_EQ(CheckGoldenDir(missing).code(), absl::StatusCode::kNotFound);
}

TEST(golden_dir, MissingEmptyOrCaselessFilesFail) {
  const fs::path dir = FreshDir("files");
  EXPECT_EQ(LoadGoldenFile(dir, "absent.json").status().code(), absl::StatusCode::kNotFound);
  Write(dir / "empty.json", "");
  EXPECT_EQ(LoadGoldenFile(dir, "empty.json").status().code(),
            absl::StatusCode::kFailedPrecondition);
  Write(dir / "no_cases.json", R"({"family": "x", "cases": []})");
  EXPECT_EQ(LoadGoldenFile(dir, "no_cases.json").status().code(),
            absl::StatusCode::kFailedPrecondition);
  Write(dir / "broken.json", R"({"cases": [)");
  EXPECT_EQ(LoadGoldenFile(dir, "broken.json").status().code(), absl::StatusCode::kInvalidArgument);
  Write(dir / "miscounted.json", R"({"case_count": 2, "cases": [{"name": "a"}]})");
  EXPECT_EQ(LoadGoldenFile(dir, "miscounted.json").status().code(),
            absl::StatusCode::kInvalidArgument);
  Write(dir / "good.json", R"({"case_count": 1, "cases": [{"name": "a"}]})");
  const auto good = LoadGoldenFile(dir, "good.json");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good)["cases"][0]["name"], "a");
}

}  // namespace
}  // namespace qcal::golden
