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

v1::RecordResponse Applied(int64_t batches, int64_t applied, int64_t durable) {
  v1::RecordResponse response;
  response.set_batches(batches);
  response.set_applied_sequence(applied);
  response.set_durable_sequence(durable);
  return response;
}

// Writes the next `count` batches (Next, Written), as the sender does.
void WriteAll(SendQueue& queue, int count) {
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
    queue.Written();
  }
}

TEST(SendQueueTest, EachBatchCountsAppliedOnceWhicheverStreamReportsIt) {
  SendQueue queue(1000);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.Push(BatchOf("a", 40)).ok());
  WriteAll(queue, 3);
  // An idle stream closed with CANCELLED and no details: nothing known.
  queue.StreamClosed(v1::RecordResponse(), false);
  EXPECT_EQ(queue.Stats().applied_batches, 0);
  // Resent: the server drops all three as duplicates; they were applied, and count now.
  queue.Rewind();
  ASSERT_TRUE(queue.Push(BatchOf("b", 8)).ok());
  WriteAll(queue, 4);
  v1::RecordResponse resent = Applied(1, 4, 2);
  resent.set_duplicates(3);
  queue.StreamClosed(resent, true);
  SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.applied_batches, 4);
  EXPECT_EQ(stats.applied_elements, 3 * 10 + 2);
  EXPECT_EQ(stats.applied_bytes, 3 * 40 + 8);
  EXPECT_EQ(stats.duplicate_batches, 3);
  // A server that lost 3 and 4 (applied, not durable) applies them again: still counted once.
  queue.Rewind();
  WriteAll(queue, 2);
  queue.StreamClosed(Applied(2, 4, 4), true);
  stats = queue.Stats();
  EXPECT_EQ(stats.applied_batches, 4);
  EXPECT_EQ(stats.applied_bytes, 3 * 40 + 8);
  EXPECT_EQ(stats.queued_bytes, 0u);
  // A partial state counts the tensors it stands for, as the server does.
  Batch partial;
  partial.quantizer = "p";
  partial.partial.emplace();
  partial.partial->set_batches(5);
  partial.partial->set_elements(50);
  partial.partial->mutable_max()->add_amax(1.0f);
  const int64_t partial_bytes = static_cast<int64_t>(partial.partial->ByteSizeLong());
  ASSERT_TRUE(queue.Push(std::move(partial)).ok());
  WriteAll(queue, 1);
  queue.Committed(5, 0);
  stats = queue.Stats();
  EXPECT_EQ(stats.applied_batches, 4 + 5);
  EXPECT_EQ(stats.applied_elements, 3 * 10 + 2 + 50);
  EXPECT_EQ(stats.applied_bytes, 3 * 40 + 8 + partial_bytes);
  EXPECT_EQ(stats.applied_partials, 1);
}

TEST(SendQueueTest, NumbersBatchesAndHoldsThemUntilDurable) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 40)).ok());
  ASSERT_TRUE(queue.Push(BatchOf("b", 40)).ok());
  SendQueue::Work work = queue.Next();
  ASSERT_EQ(work.kind, SendQueue::Work::kBatch);
  EXPECT_EQ(work.batch->sequence, 1);
  queue.Written();
  work = queue.Next();
  EXPECT_EQ(work.batch->sequence, 2);
  queue.Written();
  SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.queued_batches, 0u);
  EXPECT_EQ(stats.unconfirmed_batches, 2u);
  EXPECT_EQ(stats.queued_bytes, 80u);  // held until durable
  EXPECT_EQ(stats.last_sequence, 2);
  // Applied 2, durable 1: batch 2 stays held.
  queue.StreamClosed(Applied(2, 2, 1), true);
  stats = queue.Stats();
  EXPECT_EQ(stats.unconfirmed_batches, 1u);
  EXPECT_EQ(stats.queued_bytes, 40u);
  EXPECT_EQ(stats.applied_sequence, 2);
  EXPECT_EQ(stats.durable_sequence, 1);
  queue.Committed(2, 2);
  EXPECT_EQ(queue.Stats().queued_bytes, 0u);
  EXPECT_EQ(queue.held_batches(), 0);
}

TEST(SendQueueTest, RewindResendsEveryHeldBatchInOrder) {
  SendQueue queue(100);
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(queue.Push(BatchOf(name, 4)).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
    queue.Written();
  }
  // The stream broke after the server applied and made durable batch 1.
  queue.StreamClosed(Applied(1, 1, 1), false);
  queue.Rewind();
  std::vector<int64_t> resent;
  for (int i = 0; i < 2; ++i) {
    SendQueue::Work work = queue.Next();
    ASSERT_EQ(work.kind, SendQueue::Work::kBatch);
    resent.push_back(work.batch->sequence);
    queue.Written();
  }
  EXPECT_EQ(resent, (std::vector<int64_t>{2, 3}));
  const SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.resent_batches, 2);
  EXPECT_EQ(stats.reconnects, 1);
}

TEST(SendQueueTest, PushBlocksWhenFullAndAsksForASyncOnceAllIsWritten) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 80)).ok());
  absl::Status pushed;
  std::thread producer([&] { pushed = queue.Push(BatchOf("b", 80)); });
  WaitUntil([&] { return queue.Stats().blocked_records == 1; });
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
  queue.Written();
  // "a" is written but not durable: it still takes the room, so the sender must sync.
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kSync);
  queue.StreamClosed(Applied(1, 1, 1), false);
  queue.SyncDone();
  producer.join();
  EXPECT_TRUE(pushed.ok()) << pushed;
  EXPECT_EQ(queue.Stats().queued_batches, 1u);
}

TEST(SendQueueTest, AServerWithoutSessionsHasItsWrittenBatchesFreedAtAnOkClose) {
  SendQueue queue(100);
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(queue.Push(BatchOf(name, 4)).ok());
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
    queue.Written();
  }
  // Applied both, but no sequences: nothing can be resent safely, so nothing is kept.
  queue.StreamClosed(Applied(2, 0, 0), true);
  EXPECT_TRUE(queue.legacy());
  EXPECT_EQ(queue.held_batches(), 1);  // "c", not yet written
  EXPECT_EQ(queue.Stats().queued_bytes, 4u);
}

TEST(SendQueueTest, ABatchLargerThanCapacityIsAcceptedWhenEmpty) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("big", 1000)).ok());
  EXPECT_EQ(queue.Stats().queued_bytes, 1000u);
}

TEST(SendQueueTest, FailDropsWhatWasNotAppliedAndSurfacesOnceAtTheNextPush) {
  SendQueue queue(100);
  for (const char* name : {"a", "b", "c"}) ASSERT_TRUE(queue.Push(BatchOf(name, 4)).ok());
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
  queue.Written();
  queue.StreamClosed(Applied(1, 1, 0), false);  // applied, not durable: not dropped
  queue.Fail(absl::InvalidArgumentError("model 'm': bad batch"));
  SessionStats stats = queue.Stats();
  EXPECT_EQ(stats.queued_batches, 0u);
  EXPECT_EQ(stats.queued_bytes, 0u);
  EXPECT_EQ(stats.dropped_batches, 2);

  const absl::Status first = queue.Push(BatchOf("d", 4));
  EXPECT_EQ(first, absl::InvalidArgumentError("model 'm': bad batch"));
  EXPECT_EQ(queue.Stats().queued_batches, 0u);  // "d" was not queued
  EXPECT_TRUE(queue.Push(BatchOf("d", 4)).ok());
  EXPECT_EQ(queue.Stats().queued_batches, 1u);
  EXPECT_EQ(queue.Stats().last_sequence, 1);  // numbering starts again (a new session id)
}

TEST(SendQueueTest, FlushWaitsForItsTicketAndReturnsTheErrorOnce) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 4)).ok());
  absl::StatusOr<CommitResult> flushed;
  std::thread flusher([&] { flushed = queue.Flush(/*commit=*/true); });
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
  queue.Fail(absl::NotFoundError("model 'm' not found"));
  SendQueue::Work work{SendQueue::Work::kClose};
  WaitUntil([&] {
    work = queue.Next();
    return work.kind == SendQueue::Work::kFlush;
  });
  EXPECT_TRUE(work.commit);
  queue.FlushDone(absl::OkStatus());
  flusher.join();
  EXPECT_EQ(flushed.status(), absl::NotFoundError("model 'm' not found"));
  // Returned once; a later flush reports the sequences.
  std::thread again([&] { flushed = queue.Flush(); });
  work = queue.Next();
  ASSERT_EQ(work.kind, SendQueue::Work::kFlush);
  EXPECT_FALSE(work.commit);
  queue.Committed(0, 0);
  queue.FlushDone(absl::OkStatus());
  again.join();
  ASSERT_TRUE(flushed.ok()) << flushed.status();
  EXPECT_EQ(flushed->applied_sequence, 0);
}

TEST(SendQueueTest, AFailWakesABlockedPushWithThatError) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 80)).ok());
  absl::Status pushed;
  std::thread producer([&] { pushed = queue.Push(BatchOf("b", 80)); });
  WaitUntil([&] { return queue.Stats().blocked_records == 1; });
  queue.Fail(absl::ResourceExhaustedError("batch too large"));
  producer.join();
  EXPECT_EQ(pushed, absl::ResourceExhaustedError("batch too large"));
  EXPECT_EQ(queue.Stats().queued_batches, 0u);
}

TEST(SendQueueTest, CloseComesAfterBatchesAndFlushes) {
  SendQueue queue(100);
  ASSERT_TRUE(queue.Push(BatchOf("a", 4)).ok());
  queue.Close();
  ASSERT_EQ(queue.Next().kind, SendQueue::Work::kBatch);
  queue.Written();
  EXPECT_EQ(queue.Next().kind, SendQueue::Work::kClose);
}

}  // namespace
}  // namespace qcal::internal
