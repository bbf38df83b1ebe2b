#include "qcal/npy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "qcal/local_file.h"

namespace qcal {
namespace {

// The files in testdata/ were written by numpy 1.24 (np.save, numpy.lib.format.write_array).
std::string TestFile(const std::string& name) {
  return std::string(QCAL_SOURCE_DIR) + "/client/testdata/" + name;
}

template <typename T>
std::vector<T> Values(const NpyArray& array) {
  std::vector<T> values(array.data.size() / sizeof(T));
  std::memcpy(values.data(), array.data.data(), array.data.size());
  return values;
}

// A version 1.0 file around `header` (the dict text) and `data`.
std::string NpyBytes(const std::string& header, const std::string& data) {
  std::string file("\x93NUMPY\x01\x00", 8);
  file += static_cast<char>(header.size() & 0xff);
  file += static_cast<char>(header.size() >> 8);
  return file + header + data;
}

TEST(NpyTest, ReadsFloat32InCOrder) {
  absl::StatusOr<NpyArray> array = ReadNpy(TestFile("float32_2x3.npy"));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->dtype, DType::kFloat32);
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Values<float>(*array), (std::vector<float>{1.5f, -2.25f, 3.0f, -4.0f, 0.5f, 6.125f}));
  const TensorView view = array->view();
  EXPECT_EQ(view.data.size(), 24u);
  EXPECT_EQ(view.shape.size(), 2u);
}

TEST(NpyTest, ReadsFloat16Bits) {
  absl::StatusOr<NpyArray> array = ReadNpy(TestFile("float16_4.npy"));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->dtype, DType::kFloat16);
  EXPECT_EQ(array->shape, (std::vector<int64_t>{4}));
  // IEEE half bits of 0.5, -1.0, 65504 and -0.25.
  EXPECT_EQ(Values<uint16_t>(*array), (std::vector<uint16_t>{0x3800, 0xBC00, 0x7BFF, 0xB400}));
}

TEST(NpyTest, ReadsAFloat64Scalar) {
  absl::StatusOr<NpyArray> array = ReadNpy(TestFile("float64_scalar.npy"));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->dtype, DType::kFloat64);
  EXPECT_TRUE(array->shape.empty());
  EXPECT_EQ(Values<double>(*array), (std::vector<double>{-7.75}));
}

TEST(NpyTest, ReadsFormatVersion2) {
  absl::StatusOr<NpyArray> array = ReadNpy(TestFile("float32_v2_2.npy"));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(Values<float>(*array), (std::vector<float>{2.0f, -3.0f}));
}

TEST(NpyTest, ReadsAnEmptyArray) {
  // Valid .npy; the server, not the reader, refuses empty tensors.
  absl::StatusOr<NpyArray> array = ReadNpy(TestFile("float32_empty_0x3.npy"));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(array->data.empty());
}

void ExpectRefused(const absl::StatusOr<NpyArray>& array, const std::string& reason) {
  ASSERT_EQ(array.status().code(), absl::StatusCode::kInvalidArgument) << array.status();
  EXPECT_NE(array.status().message().find(reason), absl::string_view::npos) << array.status();
}

TEST(NpyTest, RefusesFortranOrder) {
  ExpectRefused(ReadNpy(TestFile("fortran_2x3.npy")), "Fortran order");
}

TEST(NpyTest, RefusesIntegerAndBigEndianData) {
  ExpectRefused(ReadNpy(TestFile("int32_3.npy")), "dtype '<i4' is not supported");
  ExpectRefused(ReadNpy(TestFile("bigendian_3.npy")), "big-endian");
}

TEST(NpyTest, ErrorsNameTheFile) {
  const std::string path = TestFile("int32_3.npy");
  absl::StatusOr<NpyArray> array = ReadNpy(path);
  EXPECT_EQ(std::string(array.status().message()).rfind(path + ": ", 0), 0u) << array.status();
}

TEST(NpyTest, MissingFileIsNotFound) {
  const std::string path = TestFile("no_such.npy");
  const absl::Status status = ReadNpy(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "cannot read '" + path + "': No such file or directory");
  EXPECT_TRUE(IsLocalFileError(status));
}

// A directory opens as an ifstream on Linux, and its "size" (tellg) is -1: it used to become a
// std::string of SIZE_MAX bytes, and std::bad_alloc.
TEST(NpyTest, RefusesADirectoryNamingIt) {
  const std::string path = TestFile("");
  const absl::Status status = ReadNpy(path).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "cannot read '" + path + "': a directory, not a regular file");
  EXPECT_TRUE(IsLocalFileError(status));
}

TEST(NpyTest, RefusesWhatIsNotARegularFile) {
  const absl::Status status = ReadNpy("/dev/null").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "cannot read '/dev/null': not a regular file");
  EXPECT_TRUE(IsLocalFileError(status));
}

// Parse errors are about the content (bad input, as the server would say), not the file system.
TEST(NpyTest, ParseErrorsAreNotLocalFileErrors) {
  EXPECT_FALSE(IsLocalFileError(ReadNpy(TestFile("int32_3.npy")).status()));
  EXPECT_FALSE(IsLocalFileError(absl::NotFoundError("unknown model 'm'")));
}

// The shape in a header can declare any size: nothing is allocated from it before the file is
// known to hold that many bytes.
TEST(NpyTest, AnAbsurdShapeAllocatesNothing) {
  const std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387903,), }\n";
  EXPECT_EQ(ParseNpy(NpyBytes(header, std::string(8, '\0'))).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string huge =
      "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387903, 4), }\n";
  EXPECT_EQ(ParseNpy(NpyBytes(huge, "")).status(),
            absl::InvalidArgumentError("tensor size overflows 63 bits"));
}

TEST(NpyTest, RefusesFewerDataBytesThanTheShapeNeeds) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }\n";
  EXPECT_EQ(ParseNpy(NpyBytes(header, std::string(12, '\0'))).status(),
            absl::InvalidArgumentError(".npy data is 12 bytes, but its shape and dtype need 16"));
  EXPECT_TRUE(ParseNpy(NpyBytes(header, std::string(16, '\0'))).ok());
}

// np.load reads prod(shape) items and ignores what follows (checked with numpy 1.24).
TEST(NpyTest, IgnoresBytesAfterTheDataAsNumpyDoes) {
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n";
  const std::vector<float> values = {1.5f, -2.0f};
  const std::string data(reinterpret_cast<const char*>(values.data()), 8);
  const std::string file = NpyBytes(header, data + "trailing");
  absl::StatusOr<NpyArray> parsed = ParseNpy(file);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(Values<float>(*parsed), values);

  const std::string path = ::testing::TempDir() + "/qcal_npy_trailing.npy";
  std::ofstream(path, std::ios::binary) << file;
  absl::StatusOr<NpyArray> read = ReadNpy(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->data, data);
  std::remove(path.c_str());
}

TEST(NpyTest, BigEndianHintKeepsTheWidth) {
  EXPECT_EQ(ReadNpy(TestFile("bigendian_3.npy")).status().message(),
            TestFile("bigendian_3.npy") +
                ": .npy dtype '>f4' is big-endian: save it little-endian (arr.astype('<f4'))");
  const std::string header = "{'descr': '>f2', 'fortran_order': False, 'shape': (1,), }\n";
  EXPECT_EQ(ParseNpy(NpyBytes(header, "\0\0")).status(),
            absl::InvalidArgumentError(
                ".npy dtype '>f2' is big-endian: save it little-endian (arr.astype('<f2'))"));
}

TEST(NpyTest, MalformedHeaderMessageShowsTheHeaderWithoutPadding) {
  // np.save pads the header with spaces and ends it with a newline.
  const std::string header =
      "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }" + std::string(40, ' ') + "\n";
  EXPECT_EQ(
      ParseNpy(NpyBytes(header, std::string(4, '\0'))).status(),
      absl::InvalidArgumentError("malformed .npy header (expected True or False) at offset 34: "
                                 "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }"));
  // Unprintable bytes are escaped.
  EXPECT_EQ(
      ParseNpy(NpyBytes("{\x01}", "")).status(),
      absl::InvalidArgumentError("malformed .npy header (expected a string) at offset 1: {\\x01}"));
}

TEST(NpyTest, AcceptsAnyKeyOrderAndDoubleQuotes) {
  const std::string header = "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<f2\"}";
  absl::StatusOr<NpyArray> array = ParseNpy(NpyBytes(header, std::string(6, '\0')));
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->dtype, DType::kFloat16);
  EXPECT_EQ(array->shape, (std::vector<int64_t>{3}));
}

TEST(NpyTest, RefusesMalformedHeaders) {
  ExpectRefused(ParseNpy("PK\x03\x04 not numpy"), "not a .npy file");
  ExpectRefused(ParseNpy(std::string("\x93NUMPY\x04\x00", 8) + "xx"), "version 4");
  ExpectRefused(ParseNpy(NpyBytes("{'descr': '<f4', 'shape': (2,), }", "")), "missing");
  ExpectRefused(
      ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", "")),
      "dimension");
  ExpectRefused(ParseNpy(NpyBytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (), }", "")),
                "True or False");
  ExpectRefused(ParseNpy(NpyBytes("{'descr': '<f4'", "")), "expected");
  // The header length points past the end of the file.
  std::string truncated = NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "");
  truncated.resize(20);
  ExpectRefused(ParseNpy(truncated), "ends inside its header");
}

}  // namespace
}  // namespace qcal
