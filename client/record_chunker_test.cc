#include "client/record_chunker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace qcal::internal {
namespace {

Batch MakeBatch(size_t bytes) {
  Batch batch;
  batch.quantizer = "conv1._input_quantizer";
  batch.dtype = DType::kFloat32;
  batch.shape = {static_cast<int64_t>(bytes / 4)};
  batch.data.resize(bytes);
  for (size_t i = 0; i < bytes; ++i) batch.data[i] = static_cast<char>((i * 131 + 7) % 251);
  return batch;
}

std::vector<v1::RecordRequest> Collect(const Batch& batch, std::string_view model,
                                       size_t chunk_bytes) {
  std::vector<v1::RecordRequest> messages;
  EXPECT_TRUE(ForEachRecordMessage(batch, model, chunk_bytes, [&](const v1::RecordRequest& m) {
    messages.push_back(m);
    return true;
  }));
  return messages;
}

TEST(RecordChunkerTest, TenMiBBecomesThreeMessagesOfAtMostFourMiB) {
  const Batch batch = MakeBatch(size_t{10} << 20);
  const std::vector<v1::RecordRequest> messages = Collect(batch, "resnet", size_t{4} << 20);
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[0].data().size(), size_t{4} << 20);
  EXPECT_EQ(messages[1].data().size(), size_t{4} << 20);
  EXPECT_EQ(messages[2].data().size(), size_t{2} << 20);
  std::string joined;
  for (const v1::RecordRequest& m : messages) joined += m.data();
  EXPECT_EQ(joined, batch.data);
}

TEST(RecordChunkerTest, OnlyTheFirstMessageCarriesModelQuantizerAndHeader) {
  Batch batch = MakeBatch(40);
  batch.dtype = DType::kFloat16;
  batch.shape = {4, 5};
  const std::vector<v1::RecordRequest> messages = Collect(batch, "resnet", 16);
  ASSERT_EQ(messages.size(), 3u);  // 16 + 16 + 8
  EXPECT_EQ(messages[0].model(), "resnet");
  EXPECT_EQ(messages[0].quantizer(), "conv1._input_quantizer");
  ASSERT_TRUE(messages[0].has_header());
  EXPECT_EQ(messages[0].header().dtype(), v1::DTYPE_FLOAT16);
  EXPECT_EQ(std::vector<int64_t>(messages[0].header().shape().begin(),
                                 messages[0].header().shape().end()),
            (std::vector<int64_t>{4, 5}));
  for (size_t i = 1; i < messages.size(); ++i) {
    EXPECT_TRUE(messages[i].model().empty());
    EXPECT_TRUE(messages[i].quantizer().empty());
    EXPECT_FALSE(messages[i].has_header());
  }
  EXPECT_EQ(messages[2].data().size(), 8u);
}

TEST(RecordChunkerTest, LaterBatchesOfAStreamLeaveTheModelOut) {
  const std::vector<v1::RecordRequest> messages = Collect(MakeBatch(8), "", 16);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_TRUE(messages[0].model().empty());
  EXPECT_EQ(messages[0].quantizer(), "conv1._input_quantizer");
}

TEST(RecordChunkerTest, EmptyTensorIsOneHeaderMessage) {
  Batch batch = MakeBatch(0);
  batch.shape = {0, 3};
  const std::vector<v1::RecordRequest> messages = Collect(batch, "m", 16);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_TRUE(messages[0].has_header());
  EXPECT_TRUE(messages[0].data().empty());
}

TEST(RecordChunkerTest, OneByteChunks) {
  const Batch batch = MakeBatch(12);
  const std::vector<v1::RecordRequest> messages = Collect(batch, "m", 1);
  ASSERT_EQ(messages.size(), 12u);
  std::string joined;
  for (const v1::RecordRequest& m : messages) joined += m.data();
  EXPECT_EQ(joined, batch.data);
}

TEST(RecordChunkerTest, StopsWhenTheStreamBreaks) {
  int calls = 0;
  EXPECT_FALSE(ForEachRecordMessage(MakeBatch(100), "m", 10,
                                    [&](const v1::RecordRequest&) { return ++calls < 3; }));
  EXPECT_EQ(calls, 3);
}

}  // namespace
}  // namespace qcal::internal
