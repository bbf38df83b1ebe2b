// torch's printable forms of a tensor, as pytorch-quantization's summaries show them: a 0-d
// tensor formats as its Python float ("48.10606002807617", Tensor.__format__), any other as
// str(tensor) ("tensor([[1.0000], [2.5000]])", torch/_tensor_str.py with the default print
// options: precision 4, line width 80, summarised with "..." beyond 1000 elements). Internal to
// quant/.
#ifndef QCAL_QUANT_TENSOR_FORMAT_H_
#define QCAL_QUANT_TENSOR_FORMAT_H_

#include <ATen/core/Tensor.h>

#include <string>

namespace qcal::quant::internal {

// str(tensor) of a CPU or device tensor of any dtype (copied to the CPU as double or int64).
std::string TorchTensorStr(const at::Tensor& tensor);

// "{}".format(tensor): the Python float (or int) of a 0-d tensor, else TorchTensorStr.
std::string TorchFormat(const at::Tensor& tensor);

}  // namespace qcal::quant::internal

#endif  // QCAL_QUANT_TENSOR_FORMAT_H_
