"""Checks of the public API's arguments, made before anything reaches the C++ layer, so that a
wrong argument raises an error naming it (and never pybind11's "incompatible function arguments"
with the internal signatures).

The rule, for every public call:
    TypeError                      an argument of the wrong Python type (None or a float where an
                                   int is expected, bytes where a name is expected, ...);
    QcalError("INVALID_ARGUMENT")  a value of the right type that qcal refuses (an empty name, a
                                   percentile of 150, a start_bin that does not fit the wire's
                                   int32, ...): the code the server gives the same mistake, so one
                                   `except qcal.QcalError` catches a bad value whichever side
                                   finds it.
Names are checked fully by the C++ client (qcal/names.h: 1 to 1024 bytes of UTF-8 without
control characters); here only what cannot cross into C++: a str that is not encodable as UTF-8
(lone surrogates such as "\\udcff").
"""

import math
import numbers
import os

from qcal._errors import QcalError

INT32_MAX = 2**31 - 1
NAME_RULE = "names are 1 to 1024 bytes of UTF-8 without control characters"


def _type_name(value):
    return type(value).__name__


def utf8_text(call, argument, value, what=None):
    """`value` if it is a str that encodes as UTF-8; TypeError / QcalError otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{call}(): {argument} must be a str, got {_type_name(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise QcalError(
            "INVALID_ARGUMENT",
            f"{what or argument} {value!r} is not valid UTF-8 (character "
            f"U+{ord(value[error.start]):04X} at index {error.start} is a lone surrogate)"
            + (f"; {NAME_RULE}" if what else ""),
        ) from None
    return value


def name(call, argument, value, what):
    """A model / quantizer / ONNX tensor name (`what`, e.g. "model name") as a str."""
    return utf8_text(call, argument, value, what)


def optional_int32(call, argument, value):
    """None, or an int that fits the wire's int32 (its range is the C++ client's to check)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{call}(): {argument} must be an int or None, got {_type_name(value)}")
    value = int(value)
    if not -INT32_MAX - 1 <= value <= INT32_MAX:
        raise QcalError(
            "INVALID_ARGUMENT",
            f"{argument} {value} does not fit the wire's int32 (at most {INT32_MAX})",
        )
    return value


def optional_real(call, argument, value):
    """None, or a real number as a float (its range is the C++ client's to check)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{call}(): {argument} must be a number or None, got {_type_name(value)}")
    return float(value)


def optional_size(call, argument, value, low, high=None):
    """None, or an int in [low, high] (high None: no upper bound)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{call}(): {argument} must be an int or None, got {_type_name(value)}")
    value = int(value)
    if value < low or (high is not None and value > high):
        if high is None:
            raise QcalError("INVALID_ARGUMENT", f"{argument} must be >= {low}, got {value}")
        raise QcalError("INVALID_ARGUMENT", f"{argument} {value} is outside [{low}, {high}]")
    return value


def at_most(value, argument, high, high_text):
    """Refuses an int above what the C++ layer holds, before anything is created."""
    if value is not None and value > high:
        raise QcalError("INVALID_ARGUMENT", f"{argument} must be <= {high_text}, got {value}")


def send_every(call, aggregate, value):
    """The send_every of an aggregating call: None (only at the end / flush) or an int >= 1;
    `aggregate` must be a bool, and send_every applies only with aggregate=True."""
    boolean(call, "aggregate", aggregate)
    value = optional_size(call, "send_every", value, 1)
    at_most(value, "send_every", 2**63 - 1, "2^63 - 1")  # the C++ session counts in int64
    if value is not None and not aggregate:
        raise QcalError("INVALID_ARGUMENT", "send_every applies only with aggregate=True")
    return value


def timeout(call, value):
    """None, or a finite number of seconds > 0."""
    value = optional_real(call, "timeout", value)
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise QcalError(
            "INVALID_ARGUMENT", f"timeout {value!r} must be a finite number of seconds > 0"
        )
    return value


def seconds(call, argument, value):
    """None, or a finite number of seconds > 0 for `argument`."""
    value = optional_real(call, argument, value)
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise QcalError(
            "INVALID_ARGUMENT", f"{argument} {value!r} must be a finite number of seconds > 0"
        )
    return value


def string_map(call, argument, value):
    """{quantizer name: ONNX tensor name} as a dict of str (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{call}(): {argument} must be a dict or None, got {_type_name(value)}")
    return {
        name(call, f"{argument} key", key, "quantizer name"): name(
            call, f"{argument}[{key!r}]", tensor, "ONNX tensor name"
        )
        for key, tensor in value.items()
    }


def path(call, argument, value):
    """A filesystem path (str or os.PathLike)."""
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{call}(): {argument} must be a path (str or os.PathLike), got "
                        f"{_type_name(value)}")
    return value


def histogram_layout(call, value):
    """None (the server's default layout) or a str; which strs are layouts ("mergeable",
    "reference") is the C++ client's to check (QcalError INVALID_ARGUMENT)."""
    if value is None:
        return None
    return utf8_text(call, "histogram_layout", value)


def boolean(call, argument, value):
    """`value` if it is a bool (1 and None are not)."""
    if not isinstance(value, bool):
        raise TypeError(f"{call}(): {argument} must be a bool, got {_type_name(value)}")
    return value


DESCRIPTOR_KEYS = ("name", "num_bits", "unsigned", "axis", "calibrator", "num_bins", "skip_zeros",
                   "format")

# pytorch-quantization's spelling of FP8 E4M3: num_bits=(exponent bits, mantissa bits).
FP8_E4M3_NUM_BITS = (4, 3)


def _num_bits_and_format(call, argument, value):
    """(num_bits, format) of a descriptor dict: num_bits=(4, 3) (pytorch-quantization's FP8 E4M3)
    is format "fp8_e4m3" with num_bits unset (8); "format" is "int" or "fp8_e4m3" (the C++ client
    checks the text and the num_bits and unsigned that FP8 allows)."""
    num_bits = value.get("num_bits")
    fmt = value.get("format")
    if fmt is not None:
        fmt = utf8_text(call, f"{argument}['format']", fmt)
    if isinstance(num_bits, (tuple, list)):
        if tuple(num_bits) != FP8_E4M3_NUM_BITS or not all(
                isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in num_bits):
            raise QcalError(
                "INVALID_ARGUMENT",
                f"{argument}['num_bits'] {tuple(num_bits)!r}: the only (exponent, mantissa) form "
                "is (4, 3), FP8 E4M3",
            )
        if fmt not in (None, "fp8_e4m3"):
            raise QcalError(
                "INVALID_ARGUMENT",
                f"{argument}: num_bits (4, 3) is FP8 E4M3, but format is {fmt!r}",
            )
        return None, "fp8_e4m3"
    if num_bits is not None and (not isinstance(num_bits, numbers.Integral)
                                 or isinstance(num_bits, bool)):
        raise TypeError(f"{call}(): {argument}['num_bits'] must be an int, (4, 3) (FP8 E4M3) or "
                        f"None, got {_type_name(num_bits)}")
    return optional_int32(call, f"{argument}['num_bits']", num_bits), fmt


def _optional_bool(call, argument, value):
    if value is None:
        return None
    if not isinstance(value, bool):
        raise TypeError(f"{call}(): {argument} must be a bool, got {_type_name(value)}")
    return value


def descriptor(call, argument, value, named):
    """A descriptor dict ({"num_bits": 8 or (4, 3), "unsigned": False, "axis": 0 or None,
    "calibrator": "max" | "histogram", "num_bins": 2048, "skip_zeros": False, "format": "int" |
    "fp8_e4m3"}, plus "name" when `named`) as the C++ layer's tuple (name, num_bits, unsigned,
    axis given, axis, calibrator, num_bins, skip_zeros, format). Keys left out stay None (the
    role's default); "axis": None is per-tensor; num_bits=(4, 3) is format "fp8_e4m3".
    TypeError for a value of the wrong type; QcalError INVALID_ARGUMENT for an unknown key, a
    missing or forbidden name (ranges are the C++ client's to check)."""
    if not isinstance(value, dict):
        raise TypeError(f"{call}(): {argument} must be a dict or None, got {_type_name(value)}")
    allowed = DESCRIPTOR_KEYS if named else DESCRIPTOR_KEYS[1:]
    unknown = [key for key in value if key not in allowed]
    if unknown:
        raise QcalError(
            "INVALID_ARGUMENT",
            f"{argument}: unknown key {unknown[0]!r}"
            + (" (a default descriptor has no name)" if unknown[0] == "name" else "")
            + f"; keys: {', '.join(allowed)}",
        )
    if named and "name" not in value:
        raise QcalError("INVALID_ARGUMENT", f"{argument}: 'name' (the quantizer) is required")
    name_value = name(call, f"{argument}['name']", value["name"], "quantizer name") if named else ""
    calibrator = value.get("calibrator")
    if calibrator is not None:
        calibrator = utf8_text(call, f"{argument}['calibrator']", calibrator)
    num_bits, fmt = _num_bits_and_format(call, argument, value)
    return (
        name_value,
        num_bits,
        _optional_bool(call, f"{argument}['unsigned']", value.get("unsigned")),
        "axis" in value,
        optional_int32(call, f"{argument}['axis']", value.get("axis")),
        calibrator,
        optional_int32(call, f"{argument}['num_bins']", value.get("num_bins")),
        _optional_bool(call, f"{argument}['skip_zeros']", value.get("skip_zeros")),
        fmt,
    )


def descriptors(call, default_input, default_weight, quantizers):
    """The three descriptor arguments of Client.model / Client.create, checked (descriptor())."""
    if quantizers is not None and not isinstance(quantizers, (list, tuple)):
        raise TypeError(
            f"{call}(): quantizers must be a list of dicts or None, got {_type_name(quantizers)}"
        )
    return (
        None if default_input is None else descriptor(call, "default_input", default_input, False),
        None if default_weight is None
        else descriptor(call, "default_weight", default_weight, False),
        [descriptor(call, f"quantizers[{i}]", q, True) for i, q in enumerate(quantizers or [])],
    )
