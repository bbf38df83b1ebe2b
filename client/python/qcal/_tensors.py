"""Turns numpy arrays and torch tensors into what the wire carries: dtype name, shape and
C-order little-endian bytes."""

import sys

import numpy as np

from qcal._errors import QcalError

_NUMPY_DTYPES = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float16): "float16",
    np.dtype(np.float64): "float64",
}
_ACCEPTED = "float32, float16, bfloat16 (torch) or float64"


def _is_torch_tensor(value):
    torch = sys.modules.get("torch")  # only when the caller has imported torch already
    return torch is not None and isinstance(value, torch.Tensor)


def _from_torch(tensor):
    import torch

    names = {
        torch.float32: "float32",
        torch.float16: "float16",
        torch.bfloat16: "bfloat16",
        torch.float64: "float64",
    }
    name = names.get(tensor.dtype)
    if name is None:
        raise QcalError(
            "INVALID_ARGUMENT", f"torch dtype {tensor.dtype} is not supported: expected {_ACCEPTED}"
        )
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.to("cpu")
    tensor = tensor.contiguous()
    shape = tuple(tensor.shape)
    if name == "bfloat16":
        # numpy has no bfloat16: send its raw 16-bit patterns.
        return name, shape, tensor.view(torch.int16).numpy()
    return name, shape, tensor.numpy()


def tensor_parts(tensor, call="record"):
    """(dtype name, shape tuple, C-contiguous buffer) of a numpy array or torch tensor.

    numpy: float32, float16, float64 (any byte order, any strides: copied to C order when
    needed); anything np.asarray turns into a numeric array, e.g. a list of floats (float64).
    torch: float32, float16, bfloat16, float64 on any device (copied to the CPU), any strides.
    Raises TypeError for what is no array of numbers (None, a str, bytes, a dict, a ragged
    list, ...), naming `call`; QcalError("INVALID_ARGUMENT") for a numeric array of another
    dtype (int, bool, complex).
    """
    if _is_torch_tensor(tensor):
        return _from_torch(tensor)
    if isinstance(tensor, np.ndarray):
        array = tensor
    else:
        if tensor is None or isinstance(tensor, (str, bytes, bytearray, dict)):
            array = None
        else:
            try:
                array = np.asarray(tensor)
            except (TypeError, ValueError):  # e.g. a ragged nested list
                array = None
        if array is None or array.dtype.kind not in "biufc":
            raise TypeError(
                f"{call}(): tensor must be a numpy array, a torch tensor or a (nested) sequence "
                f"of numbers, got {type(tensor).__name__}"
            )
    native = array.dtype.newbyteorder("=")
    name = _NUMPY_DTYPES.get(native)
    if name is None:
        raise QcalError(
            "INVALID_ARGUMENT", f"numpy dtype {array.dtype} is not supported: expected {_ACCEPTED}"
        )
    if array.dtype.byteorder == ">" or (array.dtype.byteorder == "=" and sys.byteorder == "big"):
        array = array.astype(native.newbyteorder("<"))
    return name, tuple(array.shape), np.ascontiguousarray(array)
