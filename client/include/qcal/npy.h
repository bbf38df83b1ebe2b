// Reads NumPy .npy files (format versions 1.0, 2.0 and 3.0) holding float32, float16 or float64
// little-endian data in C order: the tensors `qcal record` sends.
//
//   absl::StatusOr<qcal::NpyArray> array = qcal::ReadNpy("activations.npy");
//   if (array.ok()) session->Record("conv1._input_quantizer", array->view());
//
// Why not xtensor's xt::load_npy: it needs the element type at compile time and has no float16,
// while the client only forwards raw bytes whatever their type.
#ifndef QCAL_CLIENT_NPY_H_
#define QCAL_CLIENT_NPY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "qcal/tensor.h"

namespace qcal {

struct NpyArray {
  DType dtype = DType::kFloat32;
  // Rank 0 (empty) is a scalar. Dimensions may be 0 (an empty array).
  std::vector<int64_t> shape;
  // prod(shape) * DTypeSize(dtype) bytes, little-endian, C order.
  std::string data;

  TensorView view() const;
};

// Parses the bytes of a whole .npy file. INVALID_ARGUMENT, with the reason, for: a bad magic
// string or version, a malformed header, a dtype other than '<f4', '<f2', '<f8' (big-endian,
// integer, complex, bfloat16-as-void, object arrays...), fortran_order True, or fewer data bytes
// than prod(shape) * itemsize. Bytes after the data are ignored, as np.load ignores them
// (numpy 1.24 reads a file's data with np.fromfile, which stops after the array's size).
absl::StatusOr<NpyArray> ParseNpy(std::string_view file);

// Reads and parses `path`. Errors reading the file are ReadLocalFile's (qcal/local_file.h:
// "cannot read 'PATH': REASON", marked as local-file errors): NOT_FOUND when it does not exist,
// PERMISSION_DENIED when it cannot be read, FAILED_PRECONDITION for a directory or anything else
// that is not a regular file. Parse errors are ParseNpy's, with the path in front of the message.
// Nothing is allocated from the header's shape: the data must be in the file first.
absl::StatusOr<NpyArray> ReadNpy(const std::string& path);

}  // namespace qcal

#endif  // QCAL_CLIENT_NPY_H_
