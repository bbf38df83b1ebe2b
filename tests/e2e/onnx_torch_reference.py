"""Runs a (QDQ) ONNX graph in torch, float32, with each QuantizeLinear -> DequantizeLinear pair
computed as fake quant: the oracle the e2e tests hold ONNX Runtime's int8 execution against.

    logits = run_graph(onnx.load(path), images)   # torch.Tensor

QuantizeLinear is x / scale rounded half to even, plus the zero point, clamped to the zero
point's type (int8 [-128, 127], uint8 [0, 255]); DequantizeLinear is (q - zero point) * scale
(ONNX's definitions, opset 13; per-tensor, or per channel along `axis`). Covers the ops that
torch.onnx (opset 13, eval mode) writes for torchvision's ResNets and qcal's demo CNNs: Conv,
Relu, Add, Concat, MaxPool, AveragePool, GlobalAveragePool, Flatten, Gemm, MatMul, Reshape; any
other op raises NotImplementedError naming it.
"""

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

_RANGES = {onnx.TensorProto.INT8: (-128, 127), onnx.TensorProto.UINT8: (0, 255)}


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _padding(attrs, spatial):
    pads = list(attrs.get("pads", [0] * (2 * spatial)))
    if pads[:spatial] != pads[spatial:]:
        raise NotImplementedError(f"asymmetric pads {pads}")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad")
    return pads[:spatial]


def _per_axis(t, axis, rank):
    shape = [1] * rank
    shape[axis] = -1
    return t.reshape(shape)


def _quantize(x, scale, zero_point, axis, dtype):
    lo, hi = _RANGES[dtype]
    if scale.dim() == 1:  # per axis (a per-tensor scale is a scalar)
        scale = _per_axis(scale, axis % x.dim(), x.dim())
        zero_point = _per_axis(zero_point, axis % x.dim(), x.dim())
    return torch.clamp(torch.round(x / scale) + zero_point, lo, hi)


def _dequantize(q, scale, zero_point, axis):
    if scale.dim() == 1:
        scale = _per_axis(scale, axis % q.dim(), q.dim())
        zero_point = _per_axis(zero_point, axis % q.dim(), q.dim())
    return (q - zero_point) * scale


def run_graph(model, x):
    """The first output of `model` for the input batch x (torch float32), as a torch.Tensor."""
    graph = model.graph
    values = {}
    dtypes = {}
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        dtypes[init.name] = init.data_type
        keep = np.int64 if array.dtype == np.int64 else np.float32  # Reshape's shape stays int
        values[init.name] = torch.from_numpy(np.array(array, dtype=keep))
    values[graph.input[0].name] = x
    for node in graph.node:
        a = _attrs(node)
        ins = [values[name] if name else None for name in node.input]
        op = node.op_type
        if op == "QuantizeLinear":
            zp_type = dtypes.get(node.input[2], onnx.TensorProto.UINT8)
            out = _quantize(ins[0], ins[1], ins[2], a.get("axis", 1), zp_type)
        elif op == "DequantizeLinear":
            out = _dequantize(ins[0], ins[1], ins[2], a.get("axis", 1))
        elif op == "Conv":
            spatial = ins[1].dim() - 2
            conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
            out = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None,
                       stride=a.get("strides", [1] * spatial), padding=_padding(a, spatial),
                       dilation=a.get("dilations", [1] * spatial), groups=a.get("group", 1))
        elif op == "Relu":
            out = torch.relu(ins[0])
        elif op == "Add":
            out = ins[0] + ins[1]
        elif op == "Concat":
            out = torch.cat(ins, dim=a["axis"])
        elif op in ("MaxPool", "AveragePool"):
            spatial = ins[0].dim() - 2
            kwargs = dict(kernel_size=a["kernel_shape"], stride=a.get("strides", a["kernel_shape"]),
                          padding=_padding(a, spatial), ceil_mode=bool(a.get("ceil_mode", 0)))
            if op == "MaxPool":
                pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
                if a.get("dilations", [1] * spatial) != [1] * spatial:
                    kwargs["dilation"] = a["dilations"]
            else:
                pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
                kwargs["count_include_pad"] = bool(a.get("count_include_pad", 0))
            out = pool(ins[0], **kwargs)
        elif op == "GlobalAveragePool":
            out = ins[0].mean(dim=tuple(range(2, ins[0].dim())), keepdim=True)
        elif op == "Flatten":
            axis = a.get("axis", 1)
            out = ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
        elif op == "Reshape":
            shape = [int(s) for s in ins[1].tolist()]
            shape = [ins[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            out = ins[0].reshape(shape)
        elif op == "Gemm":
            A = ins[0].t() if a.get("transA", 0) else ins[0]
            B = ins[1].t() if a.get("transB", 0) else ins[1]
            out = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                out = out + a.get("beta", 1.0) * ins[2]
        elif op == "MatMul":
            out = ins[0] @ ins[1]
        else:
            raise NotImplementedError(f"op {op} (node {node.name})")
        values[node.output[0]] = out
    return values[graph.output[0].name]
