#include "quant/tensor_format.h"

#include <c10/core/ScalarType.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "quant/python_format.h"

namespace qcal::quant::internal {
namespace {

// torch's default print options.
constexpr int kPrecision = 4;
constexpr int64_t kThreshold = 1000;
constexpr int64_t kEdgeItems = 3;
constexpr int kLineWidth = 80;

// The tensor's values on the CPU, row-major, as doubles (floating) or int64 (integral).
struct Values {
  std::vector<double> real;
  std::vector<int64_t> integral;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements, row-major
  bool floating = true;
};

Values ValuesOf(const at::Tensor& tensor) {
  Values v;
  v.floating = at::isFloatingType(tensor.scalar_type());
  v.shape.assign(tensor.sizes().begin(), tensor.sizes().end());
  v.strides.assign(v.shape.size(), 1);
  for (int64_t d = static_cast<int64_t>(v.shape.size()) - 2; d >= 0; --d) {
    v.strides[d] = v.strides[d + 1] * v.shape[d + 1];
  }
  const at::Tensor cpu =
      tensor.detach().to(at::kCPU, v.floating ? at::kDouble : at::kLong).contiguous();
  if (v.floating) {
    const double* p = cpu.data_ptr<double>();
    v.real.assign(p, p + cpu.numel());
  } else {
    const int64_t* p = cpu.data_ptr<int64_t>();
    v.integral.assign(p, p + cpu.numel());
  }
  return v;
}

// Indices along one dimension that get printed: all, or the first and last kEdgeItems.
std::vector<int64_t> Shown(int64_t size, bool summarize) {
  std::vector<int64_t> idx;
  if (summarize && size > 2 * kEdgeItems) {
    for (int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
    for (int64_t i = size - kEdgeItems; i < size; ++i) idx.push_back(i);
  } else {
    for (int64_t i = 0; i < size; ++i) idx.push_back(i);
  }
  return idx;
}

// Offsets of the printed elements (get_summarized_data).
void ShownOffsets(const Values& v, size_t dim, int64_t base, bool summarize,
                  std::vector<int64_t>& out) {
  if (dim == v.shape.size()) {
    out.push_back(base);
    return;
  }
  for (int64_t i : Shown(v.shape[dim], summarize)) {
    ShownOffsets(v, dim + 1, base + i * v.strides[dim], summarize, out);
  }
}

// torch/_tensor_str.py's _Formatter.
class Formatter {
 public:
  Formatter(const Values& v, const std::vector<int64_t>& offsets) : floating_(v.floating) {
    if (!floating_) {
      for (int64_t o : offsets) {
        max_width_ = std::max<size_t>(max_width_, std::to_string(v.integral[o]).size());
      }
      return;
    }
    std::vector<double> nonzero_finite;
    for (int64_t o : offsets) {
      const double x = v.real[o];
      if (std::isfinite(x) && x != 0.0) nonzero_finite.push_back(x);
    }
    if (nonzero_finite.empty()) return;
    double min = INFINITY, max = 0.0;
    for (double x : nonzero_finite) {
      min = std::min(min, std::abs(x));
      max = std::max(max, std::abs(x));
      if (x != std::ceil(x)) int_mode_ = false;
    }
    if (int_mode_) {
      sci_mode_ = max / min > 1000.0 || max > 1e8;
    } else {
      sci_mode_ = max / min > 1000.0 || max > 1e8 || min < 1e-4;
    }
    for (double x : nonzero_finite) {
      if (sci_mode_) {
        max_width_ = std::max(max_width_, PyScientific(x, kPrecision).size());
      } else if (int_mode_) {
        max_width_ = std::max(max_width_, PyFixed(x, 0).size() + 1);
      } else {
        max_width_ = std::max(max_width_, PyFixed(x, kPrecision).size());
      }
    }
  }

  size_t width() const { return max_width_; }

  std::string Format(const Values& v, int64_t offset) const {
    std::string s;
    if (!floating_) {
      s = std::to_string(v.integral[offset]);
    } else {
      const double x = v.real[offset];
      if (sci_mode_) {
        s = PyScientific(x, kPrecision);
      } else if (int_mode_) {
        s = PyFixed(x, 0);
        if (std::isfinite(x)) s += ".";
      } else {
        s = PyFixed(x, kPrecision);
      }
    }
    return s.size() >= max_width_ ? s : std::string(max_width_ - s.size(), ' ') + s;
  }

 private:
  bool floating_;
  bool int_mode_ = true;
  bool sci_mode_ = false;
  size_t max_width_ = 1;
};

std::string VectorStr(const Values& v, int64_t base, int indent, bool summarize,
                      const Formatter& f) {
  const int64_t size = v.shape.back();
  const int64_t element_length = static_cast<int64_t>(f.width()) + 2;
  const int64_t per_line = std::max<int64_t>(1, (kLineWidth - indent) / element_length);
  std::vector<std::string> data;
  const std::vector<int64_t> shown = Shown(size, summarize);
  for (size_t k = 0; k < shown.size(); ++k) {
    if (summarize && size > 2 * kEdgeItems && k == static_cast<size_t>(kEdgeItems)) {
      data.push_back(" ...");
    }
    data.push_back(f.Format(v, base + shown[k] * v.strides.back()));
  }
  std::vector<std::string> lines;
  for (size_t i = 0; i < data.size(); i += per_line) {
    const size_t end = std::min(data.size(), i + static_cast<size_t>(per_line));
    lines.push_back(absl::StrJoin(data.begin() + i, data.begin() + end, ", "));
  }
  return absl::StrCat("[", absl::StrJoin(lines, absl::StrCat(",\n", std::string(indent + 1, ' '))),
                      "]");
}

std::string TensorStr(const Values& v, size_t dim, int64_t base, int indent, bool summarize,
                      const Formatter& f) {
  const size_t rank = v.shape.size();
  if (dim + 1 == rank) return VectorStr(v, base, indent, summarize, f);
  std::vector<std::string> slices;
  const int64_t size = v.shape[dim];
  const std::vector<int64_t> shown = Shown(size, summarize);
  for (size_t k = 0; k < shown.size(); ++k) {
    if (summarize && size > 2 * kEdgeItems && k == static_cast<size_t>(kEdgeItems)) {
      slices.push_back("...");
    }
    slices.push_back(
        TensorStr(v, dim + 1, base + shown[k] * v.strides[dim], indent + 1, summarize, f));
  }
  const std::string separator =
      absl::StrCat(",", std::string(rank - dim - 1, '\n'), std::string(indent + 1, ' '));
  return absl::StrCat("[", absl::StrJoin(slices, separator), "]");
}

const char* DtypeName(at::ScalarType t) {
  switch (t) {
    case at::kDouble:
      return "torch.float64";
    case at::kHalf:
      return "torch.float16";
    case at::kBFloat16:
      return "torch.bfloat16";
    case at::kInt:
      return "torch.int32";
    case at::kShort:
      return "torch.int16";
    case at::kChar:
      return "torch.int8";
    case at::kByte:
      return "torch.uint8";
    case at::kBool:
      return "torch.bool";
    default:
      return "";
  }
}

}  // namespace

std::string TorchTensorStr(const at::Tensor& tensor) {
  const Values v = ValuesOf(tensor);
  constexpr int kPrefix = 7;  // "tensor("
  std::string body;
  std::vector<std::string> suffixes;
  if (tensor.numel() == 0) {
    body = "[]";
    if (tensor.dim() != 1) {
      suffixes.push_back(
          absl::StrCat("size=(", absl::StrJoin(v.shape, ", "), v.shape.size() == 1 ? ",)" : ")"));
    }
  } else if (tensor.dim() == 0) {
    body = Formatter(v, {0}).Format(v, 0);
  } else {
    const bool summarize = tensor.numel() > kThreshold;
    std::vector<int64_t> offsets;
    ShownOffsets(v, 0, 0, summarize, offsets);
    body = TensorStr(v, 0, 0, kPrefix, summarize, Formatter(v, offsets));
  }
  if (!tensor.device().is_cpu())
    suffixes.push_back(absl::StrCat("device='", tensor.device().str(), "'"));
  const std::string dtype = DtypeName(tensor.scalar_type());
  if (!dtype.empty()) suffixes.push_back(absl::StrCat("dtype=", dtype));
  if (tensor.requires_grad()) suffixes.push_back("requires_grad=True");
  std::string out = absl::StrCat("tensor(", body);
  for (const std::string& s : suffixes) absl::StrAppend(&out, ", ", s);
  return out + ")";
}

std::string TorchFormat(const at::Tensor& tensor) {
  if (tensor.dim() == 0) {
    const Values v = ValuesOf(tensor);
    return v.floating ? PyFloatRepr(v.real[0]) : std::to_string(v.integral[0]);
  }
  return TorchTensorStr(tensor);
}

}  // namespace qcal::quant::internal
