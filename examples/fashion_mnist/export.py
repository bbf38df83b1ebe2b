"""Float ONNX export of the trained network (eval mode, so BatchNorm folds into the convs)."""

import torch


def export_float_onnx(net, path):
    """Writes net as opset-13 ONNX with input "images" [batch, 1, 28, 28] and output "logits"
    [batch, 10]; the batch dimension is dynamic so the evaluator can pick its batch size."""
    net.eval()
    dummy = torch.zeros(1, 1, 28, 28)
    torch.onnx.export(net, dummy, path, opset_version=13, input_names=["images"],
                      output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    return path
