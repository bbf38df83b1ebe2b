// Tests only: files for the storage tests, created under gtest's temporary directory.
#ifndef QCAL_SERVER_STORAGE_TESTING_H_
#define QCAL_SERVER_STORAGE_TESTING_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>

namespace qcal::server::testing {

// A new empty directory, named `prefix` and a unique suffix.
inline std::string MakeTempDir(const std::string& prefix) {
  std::string pattern = ::testing::TempDir() + "/" + prefix + "_XXXXXX";
  EXPECT_NE(::mkdtemp(pattern.data()), nullptr) << pattern;
  return pattern;
}

// The whole file; empty when it cannot be read.
inline std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace qcal::server::testing

#endif  // QCAL_SERVER_STORAGE_TESTING_H_
