"""PyTorch hooks that stream a model's activations to qcal-server under pytorch-quantization's
quantizer names.

    with qcal.torch.calibrate(model, session):
        for images, _ in loader:
            model(images)
    # the hooks are gone and everything was flushed
"""

import contextlib

import torch
from torch import nn

__all__ = ["calibrate", "DEFAULT_MODULES", "quantizer_names"]

# The module types pytorch-quantization replaces with Quant* modules that have an input quantizer.
DEFAULT_MODULES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)


def _prefix(path):
    return f"{path}." if path else ""


def quantizer_names(model, modules=DEFAULT_MODULES):
    """{module path: "<module path>._input_quantizer"} for each module of the given types, in
    model.named_modules() order (the root module's path is "", its quantizer "_input_quantizer")."""
    return {
        path: f"{_prefix(path)}_input_quantizer"
        for path, module in model.named_modules()
        if isinstance(module, tuple(modules))
    }


@contextlib.contextmanager
def calibrate(model, session, modules=DEFAULT_MODULES, weights=False):
    """Streams the input of each `modules` module of `model` to `session` while in the block.

    Registers forward pre-hooks recording input[0] (detached; any device and float dtype that
    ModelSession.record accepts) as "<module path>._input_quantizer", one batch per forward call.
    weights=True also records each such module's weight once, on entry, as
    "<module path>._weight_quantizer" (normally not needed: the export takes weight amax from
    the ONNX initializers, which an eval-mode export has already folded BatchNorm into).
    On exit the hooks are removed and the session is flushed (so a send error raises QcalError
    here); after an exception in the block, the hooks are removed and the exception propagates.
    Yields the session.
    """
    handles = []

    def hook_for(quantizer):
        def hook(module, inputs):
            if inputs and isinstance(inputs[0], torch.Tensor):
                session.record(quantizer, inputs[0].detach())

        return hook

    try:
        for path, module in model.named_modules():
            if not isinstance(module, tuple(modules)):
                continue
            handles.append(
                module.register_forward_pre_hook(hook_for(f"{_prefix(path)}_input_quantizer"))
            )
            if weights and getattr(module, "weight", None) is not None:
                session.record(f"{_prefix(path)}_weight_quantizer", module.weight.detach())
        yield session
    finally:
        for handle in handles:
            handle.remove()
    session.flush()
