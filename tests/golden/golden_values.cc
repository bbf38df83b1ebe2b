#include "tests/golden/golden_values.h"

#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace qcal::golden {

double ToDouble(const Json& v) {
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<double>::infinity();
    if (s == "-inf") return -std::numeric_limits<double>::infinity();
    throw std::invalid_argument("golden value " + v.dump() + " is not a number");
  }
  return v.get<double>();
}

float ToFloat(const Json& v) { return static_cast<float>(ToDouble(v)); }

GoldenTensor ToTensor(const Json& t) {
  GoldenTensor out;
  for (const Json& d : t.at("shape")) out.shape.push_back(d.get<int64_t>());
  for (const Json& v : t.at("data")) out.data.push_back(ToFloat(v));
  return out;
}

bool SameFloat(float a, float b, bool sign_of_zero) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (sign_of_zero) return std::bit_cast<uint32_t>(a) == std::bit_cast<uint32_t>(b);
  return a == b;
}

int64_t UlpDistance(float a, float b) {
  auto ordered = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::abs(ordered(a) - ordered(b));
}

bool RelClose(double a, double b, double rel) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b));
}

bool ErrorKindMatches(const Json& golden_error, const absl::Status& status) {
  const std::string type = golden_error.at("type").get<std::string>();
  const absl::StatusCode code = status.code();
  if (type == "ValueError" || type == "TypeError")
    return code == absl::StatusCode::kInvalidArgument;
  if (type == "RuntimeError") {
    return code == absl::StatusCode::kFailedPrecondition ||
           code == absl::StatusCode::kInvalidArgument;
  }
  if (type == "NotImplementedError") {
    return code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kUnimplemented;
  }
  return false;
}

void ExpectMappedError(CaseReport& report, const std::string& what, const Json& golden_error,
                       const absl::Status& status) {
  if (status.ok()) {
    report.Fail(absl::StrCat(what, ": reference raised ", golden_error.at("type").dump(),
                             ", qcal accepted"));
  } else if (!ErrorKindMatches(golden_error, status)) {
    report.Fail(absl::StrCat(what, ": reference raised ", golden_error.at("type").dump(),
                             ", qcal returned ", status.ToString()));
  }
}

void ExpectOk(CaseReport& report, const std::string& what, const absl::Status& status) {
  if (!status.ok()) report.Fail(absl::StrCat(what, ": ", status.ToString()));
}

void ExpectSameFloats(CaseReport& report, const std::string& what,
                      const std::vector<float>& expected, const std::vector<float>& actual,
                      bool sign_of_zero) {
  if (expected.size() != actual.size()) {
    report.Fail(absl::StrCat(what, ": ", actual.size(), " values, expected ", expected.size()));
    return;
  }
  for (size_t i = 0; i < expected.size(); ++i) {
    if (!SameFloat(expected[i], actual[i], sign_of_zero)) {
      report.Fail(absl::StrCat(what, "[", i, "] = ", actual[i], ", expected ", expected[i]));
      return;
    }
  }
}

}  // namespace qcal::golden
