#include "client/send_queue.h"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "absl/time/clock.h"

namespace qcal::internal {
namespace {

Batch BatchOf(const std::string& quantizer, size_t bytes) {
  Batch batch;
  batch.quantizer = quantizer;
  batch.shape = {static_cast<int64_t>(bytes / 4)};
  batch.data.assign(bytes, 'x');
  return batch;
}

// Waits (without a deadline: a hang is the failure) until `condition` holds.
void WaitUntil(const std::function<bool()>& condition) {
  while (!condition()) absl::SleepFor(absl::Milliseconds(1));
}

TEST(SendQueueTest, QueuesWithinCapacityWithoutBlocking) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 40)).ok());
  ASSERT_TRUE(queue.Push(BatchOf("b", 60)).ok());
  const SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.queued_batches, 2u);
  EXPECT_EQ(stats.queued_bytes, 100u);
  EXPECT_EQ(stats.blocked_records, 0u);
}

TEST(SendQueueTest, PushBlocksWhenFullUntilTheSenderTakesABatch) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 80)).ok());
  absl::Status pushed = absl::UnknownError("not returned");
  std::thread producer([&] { pushed = queue.Push(BatchOf("b", 80)); });
  WaitUntil([&] { return queue.Stats().blocked_records == 1; });
  EXPECT_EQ(queue.Stats().queued_batches, 1u);  // "b" waits, nothing dropped

  const SendQueue::Work work = queue.Next();
  ASSERT_EQ(work.kind, SendQueue::Work::kBatch);
  EXPECT_EQ(work.batch->quantizer, "a");
  queue.BatchDone(absl::OkStatus());
  producer.join();
  EXPECT_TRUE(pushed.ok()) << pushed;
  const SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.queued_batches, 1u);
  EXPECT_EQ(stats.queued_bytes, 80u);
  EXPECT_EQ(stats.blocked_records, 0u);
}

TEST(SendQueueTest, ABatchLargerThanCapacityIsAcceptedWhenEmpty) {
  SendQueue queue(10);
  ASSERT_TRUE(queue.Push(BatchOf("big", 1000)).ok());
  EXPECT_EQ(queue.Stats().queued_bytes, 1000u);
}

TEST(SendQueueTest, BatchesComeOutInOrderThenFlushThenClose) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 4)).ok());
  ASSERT_TRUE(queue.Push(BatchOf("b", 4)).ok());
  absl::Status flushed = absl::UnknownError("not returned");
  std::thread flusher([&] { flushed = queue.Flush(); });
  queue.Close();
  SendQueue::Work work = queue.Next();
  ASSERT_EQ(work.kind, SendQueue::Work::kBatch);
  EXPECT_EQ(work.batch->quantizer, "a");
  queue.BatchDone(absl::OkStatus());
  work = queue.Next();
  ASSERT_EQ(work.kind, SendQueue::Work::kBatch);
  EXPECT_EQ(work.batch->quantizer, "b");
  queue.BatchDone(absl::OkStatus());
  // The flush may be asked before or after the batches went; it is served after them.
  WaitUntil([&] { return queue.Next().kind == SendQueue::Work::kFlush; });
  v1::RecordResponse applied;
  applied.set_batches(2);
  applied.set_elements(2);
  applied.set_bytes(8);
  queue.StreamClosed(applied, /*unapplied=*/0);
  queue.FlushDone(absl::OkStatus());
  flusher.join();
  EXPECT_TRUE(flushed.ok()) << flushed;
  EXPECT_EQ(queue.Next().kind, SendQueue::Work::kClose);
  const SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.applied_batches, 2);
  EXPECT_EQ(stats.applied_elements, 2);
  EXPECT_EQ(stats.applied_bytes, 8);
}

TEST(SendQueueTest, SendErrorDropsTheRestAndSurfacesOnceAtTheNextPush) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 4)).ok());
  ASSERT_TRUE(queue.Push(BatchOf("b", 4)).ok());
  ASSERT_TRUE(queue.Push(BatchOf("c", 4)).ok());
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
  queue.BatchDone(absl::InvalidArgumentError("model 'm': bad batch"));
  SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.queued_batches, 0u);
  EXPECT_EQ(stats.queued_bytes, 0u);
  EXPECT_EQ(stats.dropped_batches, 2);

  const absl::Status first = queue.Push(BatchOf("d", 4));
  EXPECT_EQ(first, absl::InvalidArgumentError("model 'm': bad batch"));
  EXPECT_EQ(queue.Stats().queued_batches, 0u);  // "d" was not queued
  EXPECT_TRUE(queue.Push(BatchOf("d", 4)).ok());
  EXPECT_EQ(queue.Stats().queued_batches, 1u);
}

TEST(SendQueueTest, SendErrorSurfacesAtFlush) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 4)).ok());
  absl::Status flushed;
  std::thread flusher([&] { flushed = queue.Flush(); });
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
  queue.BatchDone(absl::NotFoundError("model 'm' not found"));
  WaitUntil([&] { return queue.Next().kind == SendQueue::Work::kFlush; });
  queue.FlushDone(absl::OkStatus());
  flusher.join();
  EXPECT_EQ(flushed, absl::NotFoundError("model 'm' not found"));
  // Returned once.
  std::thread again([&] { flushed = queue.Flush(); });
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kFlush);
  queue.FlushDone(absl::OkStatus());
  again.join();
  EXPECT_TRUE(flushed.ok()) << flushed;
}

TEST(SendQueueTest, AnErrorWakesABlockedPushWithThatError) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 80)).ok());
  absl::Status pushed;
  std::thread producer([&] { pushed = queue.Push(BatchOf("b", 80)); });
  WaitUntil([&] { return queue.Stats().blocked_records == 1; });
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
  queue.BatchDone(absl::ResourceExhaustedError("batch too large"));
  producer.join();
  EXPECT_EQ(pushed, absl::ResourceExhaustedError("batch too large"));
  EXPECT_EQ(queue.Stats().queued_batches, 0u);
}

TEST(SendQueueTest, FlushErrorOfTheStreamIsReturned) {
  SendQueue queue(100);
  absl::Status flushed;
  std::thread flusher([&] { flushed = queue.Flush(); });
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kFlush);
  queue.FlushDone(absl::InvalidArgumentError("the stream ended mid-batch"));
  flusher.join();
  EXPECT_EQ(flushed, absl::InvalidArgumentError("the stream ended mid-batch"));
}

}  // namespace
}  // namespace qcal::internal
