#include "server/rpc/idle_stream.h"

#include <grpc/grpc.h>

#include "absl/strings/str_cat.h"
#include "server/base/names.h"
#include "spdlog/spdlog.h"

namespace qcal::server {

IdleStream::IdleStream(StreamWatchdog& watchdog, grpc::ServerContext* context,
                       absl::string_view call, absl::string_view dropped)
    : context_(context),
      call_(call),
      dropped_(dropped),
      idle_seconds_(absl::ToInt64Seconds(watchdog.idle())),
      watch_(
          watchdog.Add(absl::StrCat(call, " stream from ", context->peer()), [this] { End(); })) {}

void IdleStream::Model(absl::string_view model) {
  if (model.empty()) return;
  {
    absl::MutexLock lock(&mu_);
    if (!model_.empty()) return;
    model_ = ShortForMessage(model);
  }
  // Outside mu_: End() takes mu_ under the watchdog's lock, which Describe takes.
  watch_.Describe(absl::StrCat(call_, " stream of model '", ShortForMessage(model), "' from ",
                               context_->peer()));
}

bool IdleStream::EndReading() {
  watch_.Busy();  // from here on the watchdog never ends the call
  absl::MutexLock lock(&mu_);
  return ended_;
}

bool IdleStream::EndReadingWhole() {
  if (EndReading()) return true;
  if (!context_->IsCancelled()) return false;
  absl::MutexLock lock(&mu_);
  client_cancelled_ = true;
  return true;
}

grpc::Status IdleStream::status() const {
  absl::MutexLock lock(&mu_);
  if (client_cancelled_ && !ended_) {
    return grpc::Status(grpc::StatusCode::CANCELLED,
                        absl::StrCat(model_.empty() ? "" : absl::StrCat("model '", model_, "', "),
                                     call_, ": the client cancelled the stream; ", dropped_));
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, Message());
}

std::string IdleStream::Message() const {
  return absl::StrCat(model_.empty() ? "" : absl::StrCat("model '", model_, "', "), call_,
                      ": the server received nothing on this stream for --stream-idle-seconds ",
                      idle_seconds_, " and ended it; ", dropped_);
}

void IdleStream::End() {
  std::string message;
  {
    absl::MutexLock lock(&mu_);
    ended_ = true;
    message = Message();
  }
  // What ServerContext::TryCancel does, with a status of our own: the client sees this code and
  // message (grpc_call_cancel_with_status is thread-safe, and copies the message). The handler's
  // pending Read() returns false.
  const grpc_call_error error = grpc_call_cancel_with_status(
      context_->c_call(), GRPC_STATUS_CANCELLED, message.c_str(), nullptr);
  if (error != GRPC_CALL_OK) {
    spdlog::warn("{}: ending the idle stream failed (grpc_call_error {})", call_,
                 static_cast<int>(error));
  }
}

}  // namespace qcal::server
