#include "server/core/batch_assembler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace qcal::server {
namespace {

using kernels::DType;
using ::testing::HasSubstr;

std::string FloatBytes(const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// Feeds `bytes` in chunks of `chunk` bytes (the first one with the header) and takes the batch.
Batch Assemble(const std::string& bytes, size_t chunk, std::vector<int64_t> shape) {
  BatchAssembler assembler(1 << 20);
  EXPECT_TRUE(assembler.Start("q._input_quantizer", {DType::kFloat32, std::move(shape)}).ok());
  for (size_t offset = 0; offset < bytes.size(); offset += chunk) {
    EXPECT_FALSE(assembler.complete());
    EXPECT_TRUE(assembler.Append(bytes.substr(offset, chunk)).ok());
  }
  EXPECT_TRUE(assembler.complete());
  Batch batch = assembler.Take();
  EXPECT_FALSE(assembler.in_progress());
  EXPECT_TRUE(assembler.Finish().ok());
  return batch;
}

TEST(BatchAssemblerTest, ChunkSizeDoesNotChangeTheBatch) {
  std::vector<float> values(15);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i) - 1.0f;
  const std::string bytes = FloatBytes(values);
  for (size_t chunk : {size_t{1}, size_t{7}, bytes.size()}) {
    SCOPED_TRACE(chunk);
    const Batch batch = Assemble(bytes, chunk, {3, 5});
    EXPECT_EQ(batch.quantizer, "q._input_quantizer");
    EXPECT_EQ(batch.header.dtype, DType::kFloat32);
    EXPECT_EQ(batch.header.shape, (std::vector<int64_t>{3, 5}));
    EXPECT_EQ(batch.elements, 15);
    EXPECT_EQ(batch.bytes, bytes);
  }
}

TEST(BatchAssemblerTest, OneMessageBatchKeepsItsBuffer) {
  std::string bytes = FloatBytes(std::vector<float>(64, 1.5f));
  const char* buffer = bytes.data();
  BatchAssembler assembler(1 << 20);
  ASSERT_TRUE(assembler.Start("q", {DType::kFloat32, {64}}).ok());
  ASSERT_TRUE(assembler.Append(std::move(bytes)).ok());
  ASSERT_TRUE(assembler.complete());
  EXPECT_EQ(assembler.Take().bytes.data(), buffer);
}

// Feeds `bytes` to `assembler` in two chunks and takes the batch.
Batch AssembleInTwo(BatchAssembler& assembler, const std::string& bytes) {
  EXPECT_TRUE(
      assembler.Start("q", {DType::kFloat32, {static_cast<int64_t>(bytes.size() / 4)}}).ok());
  EXPECT_TRUE(assembler.Append(bytes.substr(0, 8)).ok());
  EXPECT_TRUE(assembler.Append(bytes.substr(8)).ok());
  EXPECT_TRUE(assembler.complete());
  return assembler.Take();
}

TEST(BatchAssemblerTest, RecycledBufferAssemblesTheNextBatch) {
  const std::string first = FloatBytes(std::vector<float>(64, 1.5f));
  const std::string second = FloatBytes(std::vector<float>(48, -2.0f));
  BatchAssembler assembler(1 << 20);
  Batch batch = AssembleInTwo(assembler, first);
  EXPECT_EQ(batch.bytes, first);
  const char* buffer = batch.bytes.data();
  assembler.Recycle(std::move(batch.bytes));
  // A smaller batch fits the recycled buffer: same memory, only the new bytes.
  const Batch next = AssembleInTwo(assembler, second);
  EXPECT_EQ(next.bytes.data(), buffer);
  EXPECT_EQ(next.bytes, second);
}

TEST(BatchAssemblerTest, BufferOfADroppedBatchIsReused) {
  const std::string bytes = FloatBytes(std::vector<float>(64, 0.5f));
  BatchAssembler assembler(1 << 20);
  ASSERT_TRUE(assembler.Start("q", {DType::kFloat32, {64}}).ok());
  ASSERT_TRUE(assembler.Append(bytes.substr(0, 100)).ok());
  EXPECT_FALSE(assembler.Finish().ok());  // cut off: dropped
  const Batch batch = AssembleInTwo(assembler, bytes);
  EXPECT_EQ(batch.bytes, bytes);
}

TEST(BatchAssemblerTest, LaterAssemblerTakesTheBufferOfAnEarlierOne) {
  const std::string bytes = FloatBytes(std::vector<float>(1000, 3.0f));
  const char* buffer = nullptr;
  {
    BatchAssembler assembler(1 << 20);
    Batch batch = AssembleInTwo(assembler, bytes);
    buffer = batch.bytes.data();
    assembler.Recycle(std::move(batch.bytes));
  }  // its buffer goes to the process-wide pool
  BatchAssembler later(1 << 20);
  const Batch batch = AssembleInTwo(later, FloatBytes(std::vector<float>(1000, -1.0f)));
  EXPECT_EQ(batch.bytes.data(), buffer);
  EXPECT_EQ(batch.bytes, FloatBytes(std::vector<float>(1000, -1.0f)));
}

TEST(BatchAssemblerTest, ScalarAndOtherDtypes) {
  BatchAssembler assembler(1 << 20);
  ASSERT_TRUE(assembler.Start("q", {DType::kFloat64, {}}).ok());
  ASSERT_TRUE(assembler.Append(std::string(8, '\0')).ok());
  EXPECT_EQ(assembler.Take().elements, 1);
  ASSERT_TRUE(assembler.Start("q", {DType::kBFloat16, {2, 3}}).ok());
  ASSERT_TRUE(assembler.Append(std::string(11, '\0')).ok());
  EXPECT_FALSE(assembler.complete());
  ASSERT_TRUE(assembler.Append(std::string(1, '\0')).ok());
  EXPECT_TRUE(assembler.complete());
}

TEST(BatchAssemblerTest, CutOffBatchIsRefusedAtTheEnd) {
  BatchAssembler assembler(1 << 20);
  ASSERT_TRUE(assembler.Start("q", {DType::kFloat32, {4}}).ok());
  ASSERT_TRUE(assembler.Append(std::string(12, '\0')).ok());
  const absl::Status status = assembler.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("12 of 16 bytes"));
  EXPECT_FALSE(assembler.in_progress());
}

TEST(BatchAssemblerTest, MoreBytesThanDeclaredIsRefused) {
  BatchAssembler assembler(1 << 20);
  ASSERT_TRUE(assembler.Start("q", {DType::kFloat32, {4}}).ok());
  ASSERT_TRUE(assembler.Append(std::string(12, '\0')).ok());
  const absl::Status status = assembler.Append(std::string(8, '\0'));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("20 bytes"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("declare 16 bytes"));
  EXPECT_FALSE(assembler.in_progress());
  EXPECT_FALSE(assembler.complete());
}

TEST(BatchAssemblerTest, NewHeaderMidBatchIsRefused) {
  BatchAssembler assembler(1 << 20);
  ASSERT_TRUE(assembler.Start("a", {DType::kFloat32, {4}}).ok());
  ASSERT_TRUE(assembler.Append(std::string(4, '\0')).ok());
  const absl::Status status = assembler.Start("b", {DType::kFloat32, {4}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("quantizer 'a'"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("4 of 16 bytes"));
  EXPECT_FALSE(assembler.in_progress());
}

TEST(BatchAssemblerTest, DataWithoutHeaderIsRefused) {
  BatchAssembler assembler(1 << 20);
  EXPECT_EQ(assembler.Append(std::string(4, '\0')).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(assembler.Append("").ok());  // an empty chunk carries nothing
}

TEST(BatchAssemblerTest, OversizeHeaderIsRefusedAtOnce) {
  BatchAssembler assembler(100);
  const absl::Status status = assembler.Start("q", {DType::kFloat32, {26}});
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("104 bytes"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("--max-batch-bytes 100"));
  EXPECT_FALSE(assembler.in_progress());
  EXPECT_TRUE(assembler.Start("q", {DType::kFloat32, {25}}).ok());
}

TEST(BatchAssemblerTest, BadShapesAreRefused) {
  BatchAssembler assembler(int64_t{1} << 40);
  absl::Status status = assembler.Start("q", {DType::kFloat32, {3, 0}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("dimension 1 is 0"));
  EXPECT_EQ(assembler.Start("q", {DType::kFloat32, {-2}}).code(),
            absl::StatusCode::kInvalidArgument);
  status = assembler.Start("q", {DType::kFloat16, {int64_t{1} << 32, int64_t{1} << 31}});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("overflows"));
  EXPECT_EQ(assembler.Start("", {DType::kFloat32, {1}}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CheckedElementCountTest, CountsAndOverflow) {
  EXPECT_EQ(*CheckedElementCount({}, 4), 1);
  EXPECT_EQ(*CheckedElementCount({2, 3, 4}, 4), 24);
  // 2^61 elements of 4 bytes overflow int64 bytes; of 2 bytes they do not.
  EXPECT_FALSE(CheckedElementCount({int64_t{1} << 61}, 4).ok());
  EXPECT_EQ(*CheckedElementCount({int64_t{1} << 61}, 2), int64_t{1} << 61);
}

}  // namespace
}  // namespace qcal::server
