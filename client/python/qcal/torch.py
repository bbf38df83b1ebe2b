"""PyTorch hooks that stream a model's activations to qcal-server under pytorch-quantization's
quantizer names.

    with qcal.torch.calibrate(model, session):
        for images, _ in loader:
            model(images)
    # the hooks are gone and everything was flushed

    with qcal.torch.calibrate(model, session, aggregate=True, send_every=10):
        ...                    # counts on the trainer; sends a few KB every 10 steps

    with qcal.torch.calibrate(model, session, total=loader):   # on a terminal: a progress bar
        ...                                                    # of batches, "12/100 batch"
"""

import contextlib

import torch
from torch import nn

from qcal import _args
from qcal._errors import QcalError
from qcal._aggregate import Aggregator
from qcal._progress import batch_progress
from qcal._residual import ResidualQuantizer, ResidualTraceWarning, find_residual_sites

__all__ = [
    "calibrate",
    "DEFAULT_MODULES",
    "quantizer_names",
    "ResidualQuantizer",
    "ResidualTraceWarning",
]

# The module types pytorch-quantization replaces with Quant* modules that have an input quantizer
# (quant_modules._DEFAULT_QUANT_MAP: QuantConv*, QuantConvTranspose*, QuantLinear, and the pools
# QuantMaxPool*, QuantAvgPool*, QuantAdaptiveAvgPool*).
DEFAULT_MODULES = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)

_RESIDUAL_CHOICES = (True, False, "explicit")


def _prefix(path):
    return f"{path}." if path else ""


def _residual_mode(call, residual):
    if isinstance(residual, bool) or residual == "explicit":
        return residual
    if not isinstance(residual, str):
        raise TypeError(f"{call}(): residual must be a bool or \"explicit\", got "
                        f"{type(residual).__name__}")
    raise QcalError("INVALID_ARGUMENT",
                    f"residual must be True, False or \"explicit\", got {residual!r}")


def _sites(call, model, modules, residual, stacklevel):
    """[(key, quantizer name, module to hook, positional input index or None for the output)] in
    named_modules() order; a block's automatic residual sites follow the block itself."""
    residual = _residual_mode(call, residual)
    automatic = {}
    if residual is True:
        for block, site in find_residual_sites(model, stacklevel=stacklevel + 1):
            automatic.setdefault(block, []).append(site)
    sites = []
    for path, module in model.named_modules():
        if isinstance(module, tuple(modules)):
            sites.append((path, f"{_prefix(path)}_input_quantizer", module, 0))
        if residual and isinstance(module, ResidualQuantizer):
            sites.append((path, path, module, 0))
        for site in automatic.get(path, ()):
            sites.append((site.name, site.name, site.module, site.index))
    return sites


def quantizer_names(model, modules=DEFAULT_MODULES, residual=True):
    """{path: quantizer name} of what calibrate(model, ..., modules, residual) records, in
    model.named_modules() order:
    - "<module path>" -> "<module path>._input_quantizer" for each module of the given types
      (the root module's path is "", its quantizer "_input_quantizer");
    - with residual=True or "explicit": "<path>" -> "<path>" for each ResidualQuantizer (the
      quantizer is the module, as pytorch-quantization's residual_quantizer TensorQuantizer);
    - with residual=True: "<block>.residual_quantizer" -> the same, for each residual add that
      torch.fx finds (qcal/_residual.py), right after the block.
    Raises as calibrate does for a bad `residual`; warns ResidualTraceWarning as calibrate does."""
    return {key: name for key, name, _, _ in _sites("quantizer_names", model, modules, residual, 3)}


@contextlib.contextmanager
def calibrate(model, session, modules=DEFAULT_MODULES, weights=False, aggregate=False,
              send_every=None, progress=None, total=None, residual=True):
    """Streams the input of each `modules` module of `model` to `session` while in the block,
    and the shortcut of each residual add.

    Registers forward pre-hooks recording input[0] (detached; any device and float dtype that
    ModelSession.record accepts) as "<module path>._input_quantizer", one batch per forward call.
    The default modules are Conv/ConvTranspose 1d-3d, Linear, and the pools MaxPool,
    AvgPool and AdaptiveAvgPool 1d-3d (pytorch-quantization's QuantMaxPool*, QuantAvgPool* and
    QuantAdaptiveAvgPool* input quantizers).
    residual (True, "explicit" or False) records the shortcut (identity) input of residual adds,
    as pytorch-quantization's ResNet example quantizes it (`out +=
    self.residual_quantizer(identity)`), one batch per forward call of the block:
    - "explicit" and True: the input of each qcal.torch.ResidualQuantizer module, under its path
      ("layer1.0.residual_quantizer" for `self.residual_quantizer = ResidualQuantizer()`);
    - True also finds the adds with torch.fx, block by block (the rule: qcal/_residual.py and
      the README, "Residual and pooling quantizers"): each shortcut is recorded as
      "<block>.residual_quantizer" by a forward pre-hook on the block (the shortcut is the
      block's input) or a forward hook on the child that computes it (`downsample`); a block
      owning a ResidualQuantizer is not searched. Blocks fx cannot trace, and shortcuts no
      module boundary carries, are skipped and listed in one ResidualTraceWarning per call
      (Python's default filter shows it once per calling line);
    - False: no residual quantizer.
    quantizer_names(model, modules, residual) lists every name recorded.
    Raises TypeError for a residual that is neither a bool nor a str, QcalError INVALID_ARGUMENT
    for another str.
    weights=True also records each such module's weight once, on entry, as
    "<module path>._weight_quantizer" (normally not needed: the export takes weight amax from
    the ONNX initializers, which an eval-mode export has already folded BatchNorm into).
    On exit the hooks are removed and the session is flushed (so a send error raises QcalError
    here); after an exception in the block, the hooks are removed, what was recorded stays
    queued (aggregate=True: what was counted is queued too, as send_all() does, without a
    flush; an error of that send is dropped so as not to hide the block's), and the exception
    propagates. session.flush() then waits for it.
    aggregate=True counts on the trainer instead of streaming tensors, with exact integer counts
    (the server's histogram and amax come out bit for bit as with streaming): CPU tensors by
    qcal's C++ kernels, CUDA tensors on their GPU with torch ops; each quantizer's state is
    sent every `send_every` forward calls of `model` (None: once, at the end of the block) and
    at the end of the block. The model is read once on entry (one GetModel) for each
    quantizer's calibrator; a reference-layout model with histogram quantizers raises
    QcalError FAILED_PRECONDITION "pre-aggregation needs the mergeable histogram layout".
    Raises TypeError for an aggregate that is not a bool or a send_every that is not an int
    (or is a bool); QcalError INVALID_ARGUMENT for a send_every below 1 or given with
    aggregate=False ("send_every applies only with aggregate=True").
    Progress: the batches (forward calls of `model`) are shown on `progress` (None: sys.stderr;
    or a file object; False: none) only when it is a terminal (isatty()), TERM is not "dumb" and
    QCAL_NO_PROGRESS is unset, "" or "0": scripts see nothing. `total`: the number of batches to
    come, an int or a sized object such as the DataLoader (len()); None or unsized: a count.
    tqdm draws the bar when installed, a plain line otherwise; the block ends with one summary
    line, "qcal MODEL: N batches in T s (R batches/s)", once the session is flushed.
    Yields the session.
    """
    send_every = _args.send_every("calibrate", aggregate, send_every)
    sites = _sites("calibrate", model, modules, residual, 4)
    handles = []
    aggregator = Aggregator(session) if aggregate else None

    def record(quantizer, tensor):
        if aggregator is not None:
            aggregator.add(quantizer, tensor)
        else:
            session.record(quantizer, tensor)

    def pre_hook_for(quantizer, index):
        def hook(module, inputs):
            if len(inputs) > index and isinstance(inputs[index], torch.Tensor):
                record(quantizer, inputs[index].detach())

        return hook

    def output_hook_for(quantizer):
        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor):
                record(quantizer, output.detach())

        return hook

    steps = [0]
    shown = batch_progress(progress, total, f"qcal {getattr(session, 'name', '')}".rstrip())

    def step_done(module, inputs, output):
        steps[0] += 1
        if send_every is not None and steps[0] % send_every == 0:
            aggregator.send_all()

    try:
        selected = [(path, module) for path, module in model.named_modules()
                    if isinstance(module, tuple(modules))]
        if aggregator is not None:
            names = [name for _, name, _, _ in sites]
            if weights:
                names += [f"{_prefix(path)}_weight_quantizer" for path, module in selected
                          if getattr(module, "weight", None) is not None]
            aggregator.prepare(names)
            handles.append(model.register_forward_hook(step_done))
        if shown.active:
            handles.append(model.register_forward_hook(lambda *_: shown.update()))
        for _, name, module, index in sites:
            if index is None:
                handles.append(module.register_forward_hook(output_hook_for(name)))
            else:
                handles.append(module.register_forward_pre_hook(pre_hook_for(name, index)))
        for path, module in selected:
            if weights and getattr(module, "weight", None) is not None:
                record(f"{_prefix(path)}_weight_quantizer", module.weight.detach())
        yield session
    except BaseException:
        if aggregator is not None:
            try:
                aggregator.send_all()
            except Exception:  # the block's exception is the one to report
                pass
        shown.close(summary=False)
        raise
    finally:
        for handle in handles:
            handle.remove()
    try:
        if aggregator is not None:
            aggregator.send_all()
        session.flush()
    except BaseException:
        shown.close(summary=False)
        raise
    shown.close(summary=True)
