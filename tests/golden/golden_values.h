// Reading golden JSON values and comparing them with qcal's (README.md of the golden folder:
// floats are numbers or "nan"/"inf"/"-inf", tensors are {shape, data}), and the per-case report
// the family runners fill.
#ifndef QCAL_TESTS_GOLDEN_GOLDEN_VALUES_H_
#define QCAL_TESTS_GOLDEN_GOLDEN_VALUES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace qcal::golden {

using Json = nlohmann::json;

struct GoldenTensor {
  std::vector<float> data;
  std::vector<int64_t> shape;
};

// A float32 written as a number or as "nan", "inf", "-inf".
float ToFloat(const Json& v);
// A float64 (KL divergences, cdf values) in the same notation.
double ToDouble(const Json& v);
GoldenTensor ToTensor(const Json& t);

// Equal values: both NaN, or ==; with sign_of_zero, -0.0 and +0.0 differ.
bool SameFloat(float a, float b, bool sign_of_zero = true);
// Distance in units in the last place (finite values; huge when signs differ).
int64_t UlpDistance(float a, float b);
// |a - b| <= rel * max(|a|, |b|), or both NaN, or equal infinities.
bool RelClose(double a, double b, double rel);

// What went wrong in one golden case; empty when it passed.
class CaseReport {
 public:
  void Fail(std::string message) { failures_.push_back(std::move(message)); }
  bool ok() const { return failures_.empty(); }
  const std::vector<std::string>& failures() const { return failures_; }

 private:
  std::vector<std::string> failures_;
};

// The status codes a reference exception maps to (README: ValueError/TypeError = invalid
// argument, RuntimeError = failed precondition or shape error; NotImplementedError = a refused
// argument).
bool ErrorKindMatches(const Json& golden_error, const absl::Status& status);

// Records a failure unless `status` is an error of the kind `golden_error` maps to.
void ExpectMappedError(CaseReport& report, const std::string& what, const Json& golden_error,
                       const absl::Status& status);
void ExpectOk(CaseReport& report, const std::string& what, const absl::Status& status);
// Element-wise comparison of float data (same length, SameFloat).
void ExpectSameFloats(CaseReport& report, const std::string& what,
                      const std::vector<float>& expected, const std::vector<float>& actual,
                      bool sign_of_zero = true);

}  // namespace qcal::golden

#endif  // QCAL_TESTS_GOLDEN_GOLDEN_VALUES_H_
