#include "quant/errors.h"

#include <c10/util/Exception.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace qcal::quant {

// The (message, backtrace) constructors keep what() to the message alone.
void ThrowValueError(std::string message) { throw c10::ValueError(std::move(message), ""); }
void ThrowTypeError(std::string message) { throw c10::TypeError(std::move(message), ""); }
void ThrowNotImplemented(std::string message) {
  throw c10::NotImplementedError(std::move(message), "");
}
void ThrowRuntimeError(std::string message) { throw c10::Error(std::move(message), ""); }

void ThrowIfError(const absl::Status& status, const std::string& context) {
  if (status.ok()) return;
  std::string message = context.empty() ? std::string(status.message())
                                        : absl::StrCat(context, ": ", status.message());
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      ThrowValueError(std::move(message));
    case absl::StatusCode::kUnimplemented:
      ThrowNotImplemented(std::move(message));
    default:
      ThrowRuntimeError(absl::StrCat(absl::StatusCodeToString(status.code()), ": ", message));
  }
}

absl::Status StatusFromException(const std::exception& e) {
  const auto* error = dynamic_cast<const c10::Error*>(&e);
  if (error == nullptr) return absl::InternalError(e.what());
  const std::string message = error->what_without_backtrace();
  if (dynamic_cast<const c10::ValueError*>(error) != nullptr ||
      dynamic_cast<const c10::TypeError*>(error) != nullptr ||
      dynamic_cast<const c10::IndexError*>(error) != nullptr) {
    return absl::InvalidArgumentError(message);
  }
  if (dynamic_cast<const c10::NotImplementedError*>(error) != nullptr) {
    return absl::UnimplementedError(message);
  }
  return absl::FailedPreconditionError(message);
}

}  // namespace qcal::quant
