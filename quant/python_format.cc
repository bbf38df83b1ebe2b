#include "quant/python_format.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace qcal::quant::internal {
namespace {

// The shortest round-trip digits of a finite value: "48106060028", and the position of the
// decimal point relative to them (Python's decpt: 2 for 48.1...). Zero is "0", decpt 1.
struct Digits {
  std::string digits;
  int decpt = 1;
  bool negative = false;
};

template <typename T>
Digits ShortestDigits(T value) {
  Digits d;
  d.negative = std::signbit(value);
  char buf[64];
  const auto result =
      std::to_chars(buf, buf + sizeof(buf), std::abs(value), std::chars_format::scientific);
  const std::string_view text(buf, result.ptr - buf);  // "4.8106e+01"
  const size_t e = text.find('e');
  for (char c : text.substr(0, e)) {
    if (c != '.') d.digits.push_back(c);
  }
  int exponent = 0;
  std::from_chars(text.data() + e + 1 + (text[e + 1] == '+' ? 1 : 0), text.data() + text.size(),
                  exponent);
  d.decpt = exponent + 1;
  return d;
}

std::string NonFinite(double value) {
  if (std::isnan(value)) return "nan";
  return value > 0 ? "inf" : "-inf";
}

// Python's repr rule (float_repr_style 'short'): exponent form when decpt <= -4 or decpt > 16.
std::string ReprFromDigits(const Digits& d) {
  std::string out = d.negative ? "-" : "";
  const int n = static_cast<int>(d.digits.size());
  if (d.decpt <= -4 || d.decpt > 16) {
    out += d.digits[0];
    if (n > 1) absl::StrAppend(&out, ".", d.digits.substr(1));
    const int exponent = d.decpt - 1;
    absl::StrAppend(&out, absl::StrFormat("e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent)));
  } else if (d.decpt <= 0) {
    absl::StrAppend(&out, "0.", std::string(-d.decpt, '0'), d.digits);
  } else if (d.decpt >= n) {
    absl::StrAppend(&out, d.digits, std::string(d.decpt - n, '0'), ".0");
  } else {
    absl::StrAppend(&out, d.digits.substr(0, d.decpt), ".", d.digits.substr(d.decpt));
  }
  return out;
}

// numpy's dragon4 forms of one float32 with unique digits: positional "12.5" / "3." (int and
// fraction parts), or scientific mantissa "1.5" and exponent.
struct NumpyParts {
  std::string int_part;   // with sign
  std::string frac_part;  // digits after the point, possibly empty
  int exponent = 0;       // scientific only
};

NumpyParts Positional(float value) {
  const Digits d = ShortestDigits(value);
  NumpyParts p;
  const int n = static_cast<int>(d.digits.size());
  std::string int_digits, frac_digits;
  if (d.decpt <= 0) {
    int_digits = "0";
    frac_digits = std::string(-d.decpt, '0') + d.digits;
  } else if (d.decpt >= n) {
    int_digits = d.digits + std::string(d.decpt - n, '0');
  } else {
    int_digits = d.digits.substr(0, d.decpt);
    frac_digits = d.digits.substr(d.decpt);
  }
  // numpy's default precision (8 fractional digits) caps the unique digits.
  if (frac_digits.size() > 8) {
    const std::string rounded = absl::StrFormat("%.8f", std::abs(static_cast<double>(value)));
    const size_t dot = rounded.find('.');
    int_digits = rounded.substr(0, dot);
    frac_digits = rounded.substr(dot + 1);
    while (!frac_digits.empty() && frac_digits.back() == '0') frac_digits.pop_back();
  }
  if (frac_digits == "0") frac_digits.clear();  // zero: "0."
  p.int_part = (d.negative ? "-" : "") + int_digits;
  p.frac_part = frac_digits;
  return p;
}

NumpyParts Scientific(float value) {
  const Digits d = ShortestDigits(value);
  NumpyParts p;
  p.int_part = (d.negative ? "-" : "") + d.digits.substr(0, 1);
  p.frac_part = d.digits.size() > 1 ? d.digits.substr(1) : "";
  if (value == 0.0f) p.frac_part.clear();
  p.exponent = value == 0.0f ? 0 : d.decpt - 1;
  return p;
}

std::string PadLeft(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

// Formats every element of a float32 array the way numpy's FloatingFormat does.
std::vector<std::string> NumpyElements(std::span<const float> values) {
  std::vector<float> finite_nonzero;
  bool any_finite = false;
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    any_finite = true;
    if (v != 0.0f) finite_nonzero.push_back(std::abs(v));
  }
  bool sci = false;
  if (!finite_nonzero.empty()) {
    const float max = *std::max_element(finite_nonzero.begin(), finite_nonzero.end());
    const float min = *std::min_element(finite_nonzero.begin(), finite_nonzero.end());
    sci = max >= 1e8f || min < 1e-4f || max / min > 1000.0f;
  }
  std::vector<NumpyParts> parts(values.size());
  size_t pad_left = 0, pad_right = 0, exp_size = 2;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) continue;
    parts[i] = sci ? Scientific(values[i]) : Positional(values[i]);
    pad_left = std::max(pad_left, parts[i].int_part.size());
    pad_right = std::max(pad_right, parts[i].frac_part.size());
    if (sci) exp_size = std::max(exp_size, std::to_string(std::abs(parts[i].exponent)).size());
  }
  if (!any_finite) pad_left = 0;
  std::vector<std::string> out;
  const size_t width_after = sci ? pad_right + 1 + 2 + exp_size : pad_right + 1;
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      out.push_back(NonFinite(values[i]));
      continue;
    }
    const NumpyParts& p = parts[i];
    std::string s = PadLeft(p.int_part, pad_left) + ".";
    if (sci) {
      // Scientific mode keeps every mantissa at the same number of digits (trim 'k').
      s += p.frac_part + std::string(pad_right - p.frac_part.size(), '0');
      const std::string exponent = std::to_string(std::abs(p.exponent));
      s += absl::StrCat("e", p.exponent < 0 ? "-" : "+",
                        std::string(exp_size - exponent.size(), '0'), exponent);
    } else {
      s += p.frac_part + std::string(pad_right - p.frac_part.size(), ' ');
    }
    out.push_back(std::move(s));
  }
  // Non-finite entries are right-aligned to the common width.
  const size_t width = pad_left + width_after;
  for (std::string& s : out) s = PadLeft(s, width);
  return out;
}

void NestedArray(const std::vector<std::string>& elements, std::span<const int64_t> shape,
                 size_t dim, size_t& next, int indent, std::string& out) {
  out += "[";
  const int64_t n = shape[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (i > 0) {
      if (dim + 1 == shape.size()) {
        out += " ";
      } else {
        out += std::string(shape.size() - dim - 1, '\n') + std::string(indent + 1, ' ');
      }
    }
    if (dim + 1 == shape.size()) {
      out += elements[next++];
    } else {
      NestedArray(elements, shape, dim + 1, next, indent + 1, out);
    }
  }
  out += "]";
}

}  // namespace

std::string PyFloatRepr(double value) {
  if (!std::isfinite(value)) return NonFinite(value);
  return ReprFromDigits(ShortestDigits(value));
}

std::string PyFixed(double value, int decimals) {
  if (!std::isfinite(value)) return NonFinite(value);
  return absl::StrFormat("%.*f", decimals, value);
}

std::string PyScientific(double value, int decimals) {
  if (!std::isfinite(value)) return NonFinite(value);
  return absl::StrFormat("%.*e", decimals, value);
}

const char* PyBool(bool value) { return value ? "True" : "False"; }

std::string NumpyFloat32Str(std::span<const float> values, std::span<const int64_t> shape) {
  if (shape.empty()) {
    if (values.empty()) return "[]";
    const float v = values[0];
    return std::isfinite(v) ? ReprFromDigits(ShortestDigits(v)) : NonFinite(v);
  }
  if (values.empty()) return "[]";
  const std::vector<std::string> elements = NumpyElements(values);
  std::string out;
  size_t next = 0;
  NestedArray(elements, shape, 0, next, 0, out);
  return out;
}

}  // namespace qcal::quant::internal
