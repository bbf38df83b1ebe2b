"""numpy arrays and torch tensors of every accepted dtype and layout reach the server with the
right values, checked through the model's statistics, histogram and per-channel max."""

import numpy as np
import pytest
import torch

Q = "x._input_quantizer"
W = "w._weight_quantizer"  # weight defaults: per-channel max on axis 0


def stats(session, quantizer=Q):
    return session.info()["quantizers"][quantizer]


@pytest.mark.parametrize("dtype, itemsize", [(np.float32, 4), (np.float16, 2), (np.float64, 8)])
def test_numpy_dtypes(session, dtype, itemsize):
    values = np.array([[0.5, -6.25, 3.0], [1.0, 2.0, -0.125]], dtype=dtype)
    session.record(Q, values)
    s = stats(session)
    assert (s["batches"], s["elements"], s["bytes"]) == (1, 6, 6 * itemsize)
    assert session.histogram(Q)["abs_max"] == 6.25


@pytest.mark.parametrize(
    "dtype, itemsize",
    [(torch.float32, 4), (torch.float16, 2), (torch.bfloat16, 2), (torch.float64, 8)],
)
def test_torch_dtypes(session, dtype, itemsize):
    # Exactly representable in every dtype, bfloat16 included.
    values = torch.tensor([[0.5, -6.25, 3.0], [1.0, 2.0, -0.125]], dtype=dtype, requires_grad=True)
    session.record(Q, values)
    s = stats(session)
    assert (s["batches"], s["elements"], s["bytes"]) == (1, 6, 6 * itemsize)
    assert session.histogram(Q)["abs_max"] == 6.25


def test_bfloat16_bits_are_sent_as_they_are(session):
    # 1 + 2^-7 is a bfloat16 value that float16 rounding or a float32 reinterpretation would change.
    value = 1.0 + 2.0**-7
    session.record(Q, torch.tensor([value, -0.0078125], dtype=torch.bfloat16))
    assert session.histogram(Q)["abs_max"] == np.float32(value)


def test_strided_numpy_and_torch_are_copied_in_logical_order(session):
    # The skipped elements are larger: reading the raw buffer would see them.
    base = np.array([1.0, 100.0, 2.0, 100.0, -3.0, 100.0], np.float32)
    session.record(Q, base[::2])
    session.record(Q, torch.from_numpy(base.copy())[::2])
    s = stats(session)
    assert s["elements"] == 6
    assert session.histogram(Q)["abs_max"] == 3.0


def test_transposed_tensor_keeps_its_channel_order(session):
    # Per-channel max on axis 0 depends on element order: rows of t = columns of the original.
    original = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    t = original.t()  # [4, 3], not contiguous
    assert not t.is_contiguous()
    session.record(W, t)
    table = session.compute_amax(method="max")
    assert table["quantizers"][W]["amax"] == [8.0, 9.0, 10.0, 11.0]
    assert table["quantizers"][W]["axis"] == 0
    session.record(W, np.asfortranarray(original.t().numpy()))
    assert session.compute_amax(method="max")["quantizers"][W]["amax"] == [8.0, 9.0, 10.0, 11.0]


def test_big_endian_numpy_is_converted(session):
    session.record(Q, np.array([1.5, -2.5], dtype=">f4"))
    assert session.histogram(Q)["abs_max"] == 2.5
    assert stats(session)["bytes"] == 8


def test_scalars_and_lists(session):
    session.record(Q, np.float32(-4.0))  # rank 0: one element
    session.record(Q, [0.25, 1.0])  # float64 via np.asarray
    s = stats(session)
    assert (s["batches"], s["elements"], s["bytes"]) == (2, 3, 4 + 16)
    assert session.histogram(Q)["abs_max"] == 4.0


def test_tensor_on_another_device_or_with_grad_is_detached_and_copied(session):
    x = torch.tensor([1.0, -7.0], requires_grad=True)
    y = x * 2  # part of an autograd graph
    session.record(Q, y)
    assert session.histogram(Q)["abs_max"] == 14.0
    if torch.cuda.is_available():  # pragma: no cover - no GPU on the CI machines
        session.record(Q, torch.tensor([20.0], device="cuda"))
        assert session.histogram(Q)["abs_max"] == 20.0


def test_record_copies_the_tensor(session):
    values = np.array([1.0, 2.0], np.float32)
    session.record(Q, values)
    values[:] = 1000.0  # after record() returned: must not matter
    assert session.histogram(Q)["abs_max"] == 2.0


def test_nonfinite_values_are_counted_not_refused(session):
    session.record(Q, np.array([1.0, np.nan, -np.inf, 3.0], np.float32))
    s = stats(session)
    assert s["elements"] == 4 and s["nonfinite"] == 2
    assert session.histogram(Q)["abs_max"] == 3.0
    assert session.stats()["applied_nonfinite"] == 2
