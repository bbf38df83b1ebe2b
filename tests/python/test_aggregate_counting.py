"""Pre-aggregation counting without a server: the torch-ops counter (used for CUDA tensors) equals
qcal's C++ kernels bit for bit on CPU tensors, over many seeds and awkward values; merging is
exact and order-free; the CUDA run itself needs a GPU."""

import math

import numpy as np
import pytest
import torch

import qcal
from qcal import _aggregate


def awkward(seed, n, scale):
    """Normal values times 2^scale, with NaN, +-inf, zeros, -0, subnormals and (every 4th seed)
    a huge outlier."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * 2.0**scale
    x[seed % n] = float("nan")
    x[(seed * 7) % n] = float("-inf")
    x[(seed * 3) % n] = 0.0
    x[(seed * 5) % n] = -0.0
    x[(seed * 11) % n] = 1.4e-45 * (seed + 1)
    if seed % 4 == 0:
        x[(seed * 13) % n] = 3.0e38
    return x


def same(a, b):
    """Partial state dicts equal field by field, counts and amax bit for bit."""
    assert a.keys() == b.keys()
    for key in ("batches", "elements", "nonfinite"):
        assert a[key] == b[key], key
    if "histogram" in a:
        ha, hb = a["histogram"], b["histogram"]
        assert ha["exponent"] == hb["exponent"]
        assert np.float32(ha["abs_max"]).tobytes() == np.float32(hb["abs_max"]).tobytes()
        assert ha["zeros"] == hb["zeros"]
        np.testing.assert_array_equal(ha["counts"], hb["counts"])
        assert ha["counts"].dtype == hb["counts"].dtype == np.uint64
    else:
        assert a["max"]["axis"] == b["max"]["axis"]
        assert a["max"]["amax"].tobytes() == b["max"]["amax"].tobytes()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_torch_ops_histogram_equals_the_kernels(dtype):
    for seed in range(16):
        x = awkward(seed, 101 + 37 * seed, seed % 9 * 10 - 40).to(dtype)
        for num_bins in (1, 7, 2048):
            for skip_zeros in (False, True):
                same(_aggregate.count_histogram_torch(x, num_bins, skip_zeros),
                     qcal.count_partial(x, "histogram", num_bins, skip_zeros))


def test_torch_ops_histogram_edges_equal_the_kernels():
    tiny = 1.4e-45
    cases = [
        torch.zeros(5),
        torch.full((3,), float("nan")),
        torch.full((4,), tiny),
        torch.tensor([3.4028234663852886e38, -1.0]),
        torch.tensor([1.0, 1.0, 2.0, 4.0, 0.5, 0.25]),  # exact bin edges
        torch.tensor([1e300, -1e-300, 2.0], dtype=torch.float64),  # beyond float32 both ways
    ]
    for x in cases:
        for num_bins in (1, 2, 16, 2048):
            same(_aggregate.count_histogram_torch(x, num_bins),
                 qcal.count_partial(x, "histogram", num_bins))


def test_torch_ops_max_equals_the_kernels():
    for seed in range(8):
        x = awkward(seed, 120, seed - 4).reshape(4, 5, 6)
        for axis in (None, 0, 1, -1):
            same(_aggregate.count_max_torch(x, axis), qcal.count_partial(x, "max", axis=axis))


def test_mergeable_exponent_matches_the_layout_rule():
    for abs_max, num_bins in [(1.0, 2048), (1.4e-45, 2048), (3.4028234663852886e38, 1),
                              (12.5, 7), (2.0**-130, 3)]:
        abs_max = float(np.float32(abs_max))
        k = _aggregate.mergeable_exponent(abs_max, num_bins)
        assert -149 <= k <= 127
        assert math.floor(math.ldexp(abs_max, -k)) + 1 <= 2 * num_bins or k == 127
        assert k == -149 or math.floor(math.ldexp(abs_max, -(k - 1))) + 1 > 2 * num_bins


def test_merging_is_exact_and_order_free():
    parts = [awkward(seed, 200, seed * 6 - 20) for seed in range(6)]
    whole = qcal.count_partial(torch.cat(parts), "histogram", 64)
    for order in (range(6), reversed(range(6)), [3, 0, 5, 1, 4, 2]):
        state = None
        for i in order:
            counted = (_aggregate.count_histogram_torch(parts[i], 64) if i % 2
                       else qcal.count_partial(parts[i], "histogram", 64))
            state = counted if state is None else qcal.merge_partial(state, counted, 64)
        assert state["batches"] == 6
        state["batches"] = 1
        same(state, whole)


def test_mixing_kinds_is_refused():
    h = qcal.count_partial(torch.ones(3), "histogram", 8)
    m = qcal.count_partial(torch.ones(3), "max")
    with pytest.raises(qcal.QcalError) as error:
        qcal.merge_partial(h, m, 8)
    assert error.value.code == "INVALID_ARGUMENT"


def test_cuda_tensors_count_on_their_gpu_like_the_kernels():
    if not torch.cuda.is_available():
        pytest.skip("NO GPU HERE: the CUDA run of the torch-ops counter was not tested "
                    "(the same code is compared with the kernels on CPU tensors above)")
    for seed in range(8):
        x = awkward(seed, 4099, seed * 5 - 20)
        for dtype in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
            typed = x.to(dtype)
            same(qcal.count_partial(typed.cuda(), "histogram", 2048),
                 qcal.count_partial(typed, "histogram", 2048))
            same(qcal.count_partial(typed.reshape(1, -1).cuda(), "max", axis=0),
                 qcal.count_partial(typed.reshape(1, -1), "max", axis=0))
