"""Client-side pre-aggregation: the state qcal-server would compute from tensors, computed on the
trainer and sent as a partial state (a few kilobytes of exact counts) instead of the tensors.

A partial state is a dict {"batches", "elements", "nonfinite", and "histogram": {"exponent",
"counts" (numpy uint64), "abs_max", "zeros"} (the mergeable layout, canonical form) or "max":
{"amax" (numpy float32), "axis" (int or None)}}, as in calibration.proto's PartialState. A dict
given to merge_partial or ModelSession.record_partial is checked first (qcal/_partial.py: the
types accepted, TypeError naming a field of the wrong type, QcalError INVALID_ARGUMENT for a
missing or unknown key or a value out of range).

Counting is exact, bit for bit what the server computes from the raw tensors: tensors are decoded
to float32 as the server decodes them (float16/bfloat16 exactly, float64 rounded to nearest),
NaN and +-inf are counted in "nonfinite" and left out. CPU tensors and numpy arrays are counted by
qcal's C++ kernels (the server's own); tensors on another device (CUDA) by torch ops on that
device (count_histogram_torch, count_max_torch), which give the same integers.
"""

import math
import sys
import threading

import numpy as np

from qcal import _args, _qcal
from qcal._errors import QcalError
from qcal._partial import partial_state
from qcal._tensors import tensor_parts

__all__ = [
    "Aggregator",
    "count_histogram_torch",
    "count_max_torch",
    "count_partial",
    "merge_partial",
    "mergeable_exponent",
]

# Bin widths 2^k stay within float32: the smallest subnormal, and the largest power of two.
MIN_EXPONENT = -149
MAX_EXPONENT = 127


def mergeable_exponent(abs_max, num_bins):
    """k of the mergeable layout (kernels::MergeableExponent): the smallest integer in
    [-149, 127] with floor(abs_max / 2^k) + 1 <= 2 * num_bins, for a finite float32 abs_max > 0.
    Exact: abs_max * 2^-k is exact in a Python float (double) over that whole range."""
    limit = 2 * int(num_bins)
    _, e = math.frexp(abs_max)  # abs_max < 2^e
    # 2^(e - k) <= limit guarantees the condition; start one power below that bound.
    k = max(MIN_EXPONENT, e - limit.bit_length() - 1)
    while k < MAX_EXPONENT and math.floor(math.ldexp(abs_max, -k)) + 1 > limit:
        k += 1
    return k


def _empty_tensor_error():
    return QcalError("INVALID_ARGUMENT", "an empty tensor (a dimension of 0) has nothing to count")


def count_histogram_torch(x, num_bins=2048, skip_zeros=False):
    """The histogram partial state of one torch tensor, counted with torch ops on its device
    (CPU or CUDA): |x| as float32, the finite values' max, k = mergeable_exponent, bins
    floor(|x| * 2^-k) in float64 (exact), torch.bincount. Bit for bit the C++ kernels' state."""
    import torch

    values = x.detach().float().abs().reshape(-1)
    elements = values.numel()
    if elements == 0:
        raise _empty_tensor_error()
    finite = torch.isfinite(values)
    values = values[finite]
    nonfinite = elements - values.numel()
    if skip_zeros:
        values = values[values != 0]
    abs_max = float(values.max()) if values.numel() else 0.0
    state = {"batches": 1, "elements": elements, "nonfinite": nonfinite}
    if abs_max == 0.0:
        state["histogram"] = {
            "exponent": 0,
            "counts": np.zeros(0, dtype=np.uint64),
            "abs_max": 0.0,
            "zeros": values.numel(),
        }
        return state
    k = mergeable_exponent(abs_max, num_bins)
    bins = math.floor(math.ldexp(abs_max, -k)) + 1
    index = torch.floor(values.double() * math.ldexp(1.0, -k)).long()
    counts = torch.bincount(index, minlength=bins)
    state["histogram"] = {
        "exponent": k,
        "counts": counts.cpu().numpy().astype(np.uint64),
        "abs_max": abs_max,
        "zeros": 0,
    }
    return state


def count_max_torch(x, axis=None):
    """The max partial state of one torch tensor, counted with torch ops on its device: the max
    of the finite |x| (non-finite values count as 0), per tensor or per index of `axis`."""
    import torch

    values = x.detach().float().abs()
    elements = values.numel()
    if elements == 0:
        raise _empty_tensor_error()
    finite = torch.isfinite(values)
    nonfinite = elements - int(finite.sum())
    values = torch.where(finite, values, torch.zeros_like(values))
    if axis is None:
        amax = values.max().reshape(1)
    else:
        rank = values.dim()
        if not -rank <= axis < rank:
            raise QcalError(
                "INVALID_ARGUMENT", f"axis {axis} is out of range for a tensor of rank {rank}"
            )
        kept = axis % rank
        others = [d for d in range(rank) if d != kept]
        amax = values.amax(dim=others) if others else values
    return {
        "batches": 1,
        "elements": elements,
        "nonfinite": nonfinite,
        "max": {"amax": amax.cpu().numpy().astype(np.float32).reshape(-1), "axis": axis},
    }


def _on_device(tensor):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(tensor, torch.Tensor) and tensor.device.type != "cpu"


def count_partial(tensor, calibrator="histogram", num_bins=2048, skip_zeros=False, axis=None):
    """One tensor's partial state for a quantizer with this calibrator ("histogram" or "max"),
    num_bins and skip_zeros (histogram), axis (max; None per tensor).

    numpy arrays and CPU torch tensors: qcal's C++ kernels (GIL released); torch tensors on
    another device: torch ops on that device. Raises QcalError INVALID_ARGUMENT for an empty
    tensor, an unsupported dtype, an axis outside the rank, num_bins out of range, an axis
    given with "histogram" (axis applies to max only), a num_bins other than 2048 or
    skip_zeros=True given with "max" (they apply to histogram only); TypeError for an argument
    of the wrong type (num_bins=2.0, skip_zeros=1, axis="0")."""
    call = "count_partial"
    _args.utf8_text(call, "calibrator", calibrator)
    if calibrator not in ("histogram", "max"):
        raise QcalError("INVALID_ARGUMENT",
                        f"calibrator must be 'histogram' or 'max', not {calibrator!r}")
    num_bins = _args.optional_int32(call, "num_bins", num_bins)
    if num_bins is None:
        raise TypeError(f"{call}(): num_bins must be an int, got NoneType")
    skip_zeros = _args.boolean(call, "skip_zeros", skip_zeros)
    axis = _args.optional_int32(call, "axis", axis)
    if calibrator == "histogram" and axis is not None:
        raise QcalError("INVALID_ARGUMENT",
                        f"axis {axis} given with calibrator 'histogram': axis applies to max only")
    if calibrator == "max" and (num_bins != 2048 or skip_zeros):
        given = f"num_bins {num_bins}" if num_bins != 2048 else "skip_zeros=True"
        raise QcalError("INVALID_ARGUMENT",
                        f"{given} given with calibrator 'max': num_bins and skip_zeros apply to "
                        "histogram only")
    if _on_device(tensor):
        if calibrator == "histogram":
            return count_histogram_torch(tensor, num_bins, skip_zeros)
        return count_max_torch(tensor, axis)
    dtype, shape, buffer = tensor_parts(tensor, "count_partial")
    if calibrator == "histogram":
        return _qcal.count_histogram(dtype, list(shape), buffer, int(num_bins), bool(skip_zeros))
    return _qcal.count_max(dtype, list(shape), buffer, axis)


def merge_partial(state, other, num_bins=2048):
    """The partial state of both states' tensors (exact; any order gives the same). Raises
    TypeError for a state that is not a partial-state dict or a field of the wrong type (naming
    it, see qcal/_partial.py); QcalError INVALID_ARGUMENT for a missing or unknown key, both or
    neither of "histogram" and "max", a field out of range, a non-canonical histogram, a
    histogram with a max, maxima of other lengths or axes; OUT_OF_RANGE for counts passing
    2^64 - 1."""
    call = "merge_partial"
    num_bins = _args.optional_int32(call, "num_bins", num_bins)
    if num_bins is None:
        raise TypeError(f"{call}(): num_bins must be an int, got NoneType")
    return _qcal.merge_partial(partial_state(call, "state", state),
                               partial_state(call, "other", other), num_bins)


class Aggregator:
    """Per-quantizer partial states of a session, counted on the caller's thread and sent with
    session.record_partial: add() counts a tensor; a quantizer's state is sent after every
    `send_every` add() calls of it (an int >= 1; None: only by send_all()); send_all() sends
    every state. Each quantizer's calibrator, num_bins, skip_zeros and axis come from the model
    (one GetModel, see prepare()). Thread-safe. Raises TypeError for a send_every that is not an
    int (or a bool), QcalError INVALID_ARGUMENT for one below 1."""

    def __init__(self, session, send_every=None):
        send_every = _args.optional_size("Aggregator", "send_every", send_every, 1)
        self._session = session
        self._send_every = send_every or 0
        self._lock = threading.Lock()
        self._targets = {}
        self._states = {}
        self._calls = {}

    def prepare(self, quantizers):
        """Learns the targets of these quantizers in one GetModel (QcalError FAILED_PRECONDITION
        "pre-aggregation needs the mergeable histogram layout" for a histogram quantizer of a
        reference-layout model)."""
        missing = [q for q in quantizers if q not in self._targets]
        if missing:
            self._targets.update(self._session._session.partial_targets(missing))

    def add(self, quantizer, tensor):
        if quantizer not in self._targets:
            self.prepare([quantizer])
        target = self._targets[quantizer]
        if target["calibrator"] == "histogram":
            state = self._add_histogram(quantizer, target, tensor)
        else:
            state = self._add_max(quantizer, target, tensor)
        if state is not None:
            self._session.record_partial(quantizer, state)

    def _add_histogram(self, quantizer, target, tensor):
        # One C++ counter per quantizer, kept across steps: it bins a CPU tensor in one pass
        # while the exponent holds (count_partial must find the max first); states counted on
        # another device merge into it.
        with self._lock:
            counter = self._states.get(quantizer)
            if counter is None:
                counter = _qcal.HistogramCounter(target["num_bins"], target["skip_zeros"])
                self._states[quantizer] = counter
            if _on_device(tensor):
                counter.merge(partial_state("add", "counted state", count_histogram_torch(
                    tensor, target["num_bins"], target["skip_zeros"])))
            else:
                counter.add(*tensor_parts(tensor, "add"))
            return self._sent(quantizer, counter.take)

    def _add_max(self, quantizer, target, tensor):
        state = count_partial(tensor, "max", axis=target["axis"])
        with self._lock:
            previous = self._states.get(quantizer)
            if previous is not None:
                state = merge_partial(previous, state, target["num_bins"])
            self._states[quantizer] = state
            return self._sent(quantizer, lambda: self._states.pop(quantizer))

    def _sent(self, quantizer, take):
        """The quantizer's state to send now (taken by `take`), or None before send_every."""
        self._calls[quantizer] = self._calls.get(quantizer, 0) + 1
        if not self._send_every or self._calls[quantizer] < self._send_every:
            return None
        del self._calls[quantizer]
        return take()

    def send_all(self):
        """Sends every quantizer's state (queued; session.flush() waits for it)."""
        with self._lock:
            states, self._states, self._calls = self._states, {}, {}
            states = {q: s.take() if isinstance(s, _qcal.HistogramCounter) else s
                      for q, s in states.items()}
        for quantizer, state in states.items():
            if state["batches"] > 0:
                self._session.record_partial(quantizer, state)
