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
from qcal._aggregate import Aggregator
from qcal._progress import batch_progress

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
def calibrate(model, session, modules=DEFAULT_MODULES, weights=False, aggregate=False,
              send_every=None, progress=None, total=None):
    """Streams the input of each `modules` module of `model` to `session` while in the block.

    Registers forward pre-hooks recording input[0] (detached; any device and float dtype that
    ModelSession.record accepts) as "<module path>._input_quantizer", one batch per forward call.
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
    handles = []
    aggregator = Aggregator(session) if aggregate else None

    def record(quantizer, tensor):
        if aggregator is not None:
            aggregator.add(quantizer, tensor)
        else:
            session.record(quantizer, tensor)

    def hook_for(quantizer):
        def hook(module, inputs):
            if inputs and isinstance(inputs[0], torch.Tensor):
                record(quantizer, inputs[0].detach())

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
            names = [f"{_prefix(path)}_input_quantizer" for path, _ in selected]
            if weights:
                names += [f"{_prefix(path)}_weight_quantizer" for path, module in selected
                          if getattr(module, "weight", None) is not None]
            aggregator.prepare(names)
            handles.append(model.register_forward_hook(step_done))
        if shown.active:
            handles.append(model.register_forward_hook(lambda *_: shown.update()))
        for path, module in selected:
            handles.append(
                module.register_forward_pre_hook(hook_for(f"{_prefix(path)}_input_quantizer"))
            )
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
