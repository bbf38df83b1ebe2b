// How quant/ reports errors. Like LibTorch itself (and the module forward functions that call
// quant/), every function throws an exception of c10's hierarchy; nothing returns a status. The
// kinds follow pytorch-quantization's Python exceptions, so a reference ValueError is a
// c10::ValueError here:
//
//   c10::ValueError           a bad argument value (num_bits, amax < 0, percentile, axis out of
//                             range, an unknown calibration method); absl INVALID_ARGUMENT
//   c10::TypeError            an argument of the wrong kind (QuantDescriptor::FromJson with a
//                             string num_bits; reference TypeError); absl INVALID_ARGUMENT
//   c10::NotImplementedError  a refused feature (per-channel histograms); absl UNIMPLEMENTED
//   c10::Error (the base)     the state does not allow the call (no calibrator data, amax shape
//                             changed, server unreachable); reference RuntimeError; absl
//                             FAILED_PRECONDITION or the status a kernel or the server returned
//
// Messages name the quantizer, tensor or parameter and carry no C++ backtrace.
//
//   try { quantizer->load_calib_amax({.method = "entropy"}); }
//   catch (const c10::ValueError& e) { ... }   // bad argument
//   catch (const c10::Error& e) { ... }        // anything else quant/ or LibTorch throws
#ifndef QCAL_QUANT_ERRORS_H_
#define QCAL_QUANT_ERRORS_H_

#include <exception>
#include <string>

#include "absl/status/status.h"

namespace qcal::quant {

[[noreturn]] void ThrowValueError(std::string message);
[[noreturn]] void ThrowTypeError(std::string message);
[[noreturn]] void ThrowNotImplemented(std::string message);
[[noreturn]] void ThrowRuntimeError(std::string message);

// Throws the exception of `status`'s kind (INVALID_ARGUMENT and OUT_OF_RANGE: ValueError,
// UNIMPLEMENTED: NotImplementedError, anything else: c10::Error), its message prefixed with
// "context: " when `context` is not empty. Does nothing for an OK status.
void ThrowIfError(const absl::Status& status, const std::string& context = "");

// The inverse, for callers that keep statuses (tests, servers): ValueError, TypeError and
// IndexError give INVALID_ARGUMENT, NotImplementedError UNIMPLEMENTED, any other c10::Error
// FAILED_PRECONDITION, any other exception INTERNAL. The message is the exception's without a
// backtrace.
absl::Status StatusFromException(const std::exception& e);

// Runs `f` and returns OK, or the status of the exception it threw.
template <typename F>
absl::Status CatchAsStatus(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return StatusFromException(e);
  }
  return absl::OkStatus();
}

}  // namespace qcal::quant

#endif  // QCAL_QUANT_ERRORS_H_
