"""The check of a partial-state dict (calibration.proto's PartialState as the Python layer sees
it), made before it reaches the C++ layer, so that a malformed dict raises an error naming the
field, never pybind11's "Unable to cast Python instance to C++ type" or a KeyError.

    {"batches": int, "elements": int, "nonfinite": int,      each in [0, 2^63 - 1]
     and exactly one of
     "histogram": {"exponent": int (int32), "counts": 1-D non-negative integers < 2^64,
                   "abs_max": real number, "zeros": int in [0, 2^64 - 1]}
     "max": {"amax": 1-D real numbers (as float32), "axis": int (int32) or None}}

ints are Python ints or numpy integer scalars (bools are refused); counts and amax are
sequences or 1-D numpy arrays (counts of an integer dtype, amax of an integer or float dtype).
TypeError for a value of the wrong type, QcalError INVALID_ARGUMENT for a missing or unknown
key, both or neither of "histogram" and "max", or a value out of range (the rule of _args).
"""

import numbers

import numpy as np

from qcal._errors import QcalError

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1

TOP_KEYS = ("batches", "elements", "nonfinite")
KIND_KEYS = {"histogram": ("exponent", "counts", "abs_max", "zeros"), "max": ("amax", "axis")}


def _type_name(value):
    return type(value).__name__


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


class _Field:
    """Names a field in errors: "record_partial(): partial state field 'histogram.counts' ..."."""

    def __init__(self, call, argument):
        self.call = call
        self.argument = argument

    def type_error(self, field, expected, value):
        return TypeError(f"{self.call}(): {self.argument} field {field!r} must be {expected}, "
                         f"got {_type_name(value)}")

    def value_error(self, message):
        return QcalError("INVALID_ARGUMENT", f"{self.call}(): {self.argument} {message}")

    def keys(self, field, value, required):
        where = f"field {field!r}" if field else ""
        unknown = [key for key in value if key not in required]
        if unknown:
            raise self.value_error(f"{where + ': ' if where else ''}unknown key {unknown[0]!r}; "
                                   f"keys: {', '.join(required)}")
        missing = [key for key in required if key not in value]
        if missing:
            raise self.value_error(f"{where + ': ' if where else ''}missing key {missing[0]!r}; "
                                   f"keys: {', '.join(required)}")

    def integer(self, field, value, low, high, bounds):
        if _is_bool(value) or not isinstance(value, numbers.Integral):
            raise self.type_error(field, "an int", value)
        value = int(value)
        if not low <= value <= high:
            raise self.value_error(f"field {field!r} {value} is outside {bounds}")
        return value


def _counts(field, name, value):
    """counts as a C-contiguous numpy uint64 array."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu":
            raise TypeError(f"{field.call}(): {field.argument} field {name!r} must be an array "
                            f"of integers, got dtype {value.dtype}")
        if value.ndim != 1:
            raise field.value_error(f"field {name!r} must be 1-D, got shape {value.shape}")
        if value.dtype.kind == "i" and value.size and int(value.min()) < 0:
            raise field.value_error(f"field {name!r} has a negative count {int(value.min())}")
        return np.ascontiguousarray(value, dtype=np.uint64)
    if not isinstance(value, (list, tuple)):
        raise field.type_error(name, "a 1-D sequence or numpy array of integers", value)
    for i, count in enumerate(value):
        field.integer(f"{name}[{i}]", count, 0, UINT64_MAX, "[0, 2^64 - 1]")
    return np.array([int(count) for count in value], dtype=np.uint64)


def _amax(field, name, value):
    """amax as a C-contiguous numpy float32 array."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise TypeError(f"{field.call}(): {field.argument} field {name!r} must be an array "
                            f"of real numbers, got dtype {value.dtype}")
        if value.ndim != 1:
            raise field.value_error(f"field {name!r} must be 1-D, got shape {value.shape}")
        return np.ascontiguousarray(value, dtype=np.float32)
    if not isinstance(value, (list, tuple)):
        raise field.type_error(name, "a 1-D sequence or numpy array of real numbers", value)
    for i, item in enumerate(value):
        if _is_bool(item) or not isinstance(item, numbers.Real):
            raise field.type_error(f"{name}[{i}]", "a real number", item)
    return np.array([float(item) for item in value], dtype=np.float32)


def partial_state(call, argument, value):
    """A copy of the partial-state dict `value` in the types the C++ layer takes (ints, numpy
    uint64 counts, float abs_max, numpy float32 amax, int or None axis). Raises TypeError /
    QcalError INVALID_ARGUMENT as in the module docstring; `call` and `argument` name it."""
    field = _Field(call, argument)
    if not isinstance(value, dict):
        raise TypeError(f"{call}(): {argument} must be a dict, got {_type_name(value)}")
    kinds = [kind for kind in KIND_KEYS if kind in value]
    if len(kinds) != 1:
        raise field.value_error(
            "must have exactly one of 'histogram' and 'max', "
            + ("got both" if kinds else "got neither"))
    kind = kinds[0]
    field.keys(None, value, TOP_KEYS + (kind,))
    state = {key: field.integer(key, value[key], 0, INT64_MAX, "[0, 2^63 - 1]")
             for key in TOP_KEYS}
    inner = value[kind]
    if not isinstance(inner, dict):
        raise field.type_error(kind, "a dict", inner)
    field.keys(kind, inner, KIND_KEYS[kind])
    if kind == "histogram":
        abs_max = inner["abs_max"]
        if _is_bool(abs_max) or not isinstance(abs_max, numbers.Real):
            raise field.type_error("histogram.abs_max", "a real number", abs_max)
        state["histogram"] = {
            "exponent": field.integer("histogram.exponent", inner["exponent"], INT32_MIN,
                                      INT32_MAX, "the int32 range"),
            "counts": _counts(field, "histogram.counts", inner["counts"]),
            "abs_max": float(abs_max),
            "zeros": field.integer("histogram.zeros", inner["zeros"], 0, UINT64_MAX,
                                   "[0, 2^64 - 1]"),
        }
    else:
        axis = inner["axis"]
        if axis is not None:
            if _is_bool(axis) or not isinstance(axis, numbers.Integral):
                raise field.type_error("max.axis", "an int or None", axis)
            axis = field.integer("max.axis", axis, INT32_MIN, INT32_MAX, "the int32 range")
        state["max"] = {"amax": _amax(field, "max.amax", inner["amax"]), "axis": axis}
    return state
