// Python's and numpy's printable forms of numbers, so the summaries quant/ prints read like
// pytorch-quantization's (its __str__/__repr__ use Python's format() on floats, numpy's str() on
// a descriptor's amax, and torch's str() on tensors; see tensor_format.h). Internal to quant/.
#ifndef QCAL_QUANT_PYTHON_FORMAT_H_
#define QCAL_QUANT_PYTHON_FORMAT_H_

#include <cstdint>
#include <span>
#include <string>

namespace qcal::quant::internal {

// repr(float): the shortest decimal that round-trips, "1.0", "48.10606002807617", "1e-05",
// "1e+16", "nan", "inf", "-inf".
std::string PyFloatRepr(double value);

// format(value, ".Nf"): "2.6400", "nan", "inf", "-inf" (never "-nan").
std::string PyFixed(double value, int decimals);

// format(value, ".Ne"): "1.5041e+01", "nan", "inf".
std::string PyScientific(double value, int decimals);

// "True" / "False".
const char* PyBool(bool value);

// str() of a float32 numpy array (numpy's defaults: shortest round-trip digits padded to a
// common width, "[1. 2.]", "[1.5 2. ]"; a 0-d array prints as its scalar, "2.0"). Scientific
// notation is used as numpy does (a value >= 1e8 or a non-zero value < 1e-4, or a ratio above
// 1000 between the largest and smallest non-zero magnitude).
std::string NumpyFloat32Str(std::span<const float> values, std::span<const int64_t> shape);

}  // namespace qcal::quant::internal

#endif  // QCAL_QUANT_PYTHON_FORMAT_H_
