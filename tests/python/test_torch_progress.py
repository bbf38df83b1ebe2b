"""qcal.torch.calibrate's progress: batches shown on a terminal (tqdm's bar, or a plain line
without tqdm), ending with one summary line; nothing on a stream that is no terminal or with an
opt-out."""

import io
import sys

import pytest
import torch
from torch import nn

import qcal.torch


class Terminal(io.StringIO):
    """What a terminal receives (a StringIO that says it is one)."""

    def isatty(self):
        return True


class Batches(torch.utils.data.IterableDataset):
    """A dataset without len(): its loader's length is unknown."""

    def __iter__(self):
        return iter(torch.ones(3, 2, 4))


def calibrate(session, batches, **kwargs):
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad(), qcal.torch.calibrate(net, session, **kwargs):
        for batch in batches:
            net(batch)
    return session.info()["quantizers"]["0._input_quantizer"]["batches"]


def summary(text):
    """The last line drawn, without its erase-to-end."""
    return text.rsplit("\r", 1)[-1].replace("\x1b[K", "")


@pytest.fixture(autouse=True)
def progress_on(monkeypatch):
    monkeypatch.delenv("QCAL_NO_PROGRESS", raising=False)
    monkeypatch.setenv("TERM", "xterm")


def test_tqdm_bar_with_the_loader_length_then_a_summary(session):
    import tqdm  # noqa: F401 (python3-tqdm, scripts/install-deps.sh): this test needs it

    terminal = Terminal()
    loader = [torch.ones(2, 4)] * 4
    assert calibrate(session, loader, progress=terminal, total=loader) == 4
    text = terminal.getvalue()
    # tqdm draws its bar as it starts, of the loader's 4 batches.
    assert f"qcal {session.name}:   0%|" in text and "| 0/4 [" in text, text
    assert summary(text).startswith(f"qcal {session.name}: 4 batches in "), text
    assert text.endswith(" batches/s)\n"), text


def test_plain_line_without_tqdm_counts_batches_of_an_unsized_loader(session, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    terminal = Terminal()
    loader = torch.utils.data.DataLoader(Batches(), batch_size=None)
    assert calibrate(session, loader, progress=terminal, total=loader) == 3
    text = terminal.getvalue()
    # The first batch draws at once; no total is known, so no "1/N" and no ETA.
    assert text.startswith(f"\rqcal {session.name}: 1 batch "), text
    assert "ETA" not in text
    assert summary(text).startswith(f"qcal {session.name}: 3 batches in "), text


def test_plain_line_shows_the_total(session, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    terminal = Terminal()
    assert calibrate(session, [torch.ones(2, 4)] * 2, progress=terminal, total=2) == 2
    text = terminal.getvalue()
    assert text.startswith(f"\rqcal {session.name}: 1/2 batches"), text


def test_a_stream_that_is_no_terminal_gets_nothing(session, monkeypatch):
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert calibrate(session, [torch.ones(2, 4)] * 2, total=2) == 2  # progress=None: stderr
    assert calibrate(session, [torch.ones(2, 4)] * 2, progress=io.StringIO()) == 4
    assert piped.getvalue() == ""


@pytest.mark.parametrize("env", [("QCAL_NO_PROGRESS", "1"), ("TERM", "dumb")])
def test_opt_outs_draw_nothing_on_a_terminal(session, monkeypatch, env):
    monkeypatch.setenv(*env)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert calibrate(session, [torch.ones(2, 4)] * 2) == 2
    assert calibrate(session, [torch.ones(2, 4)] * 2, progress=terminal) == 4
    assert terminal.getvalue() == ""


def test_progress_false_draws_nothing(session, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert calibrate(session, [torch.ones(2, 4)], progress=False) == 1
    assert terminal.getvalue() == ""


def test_an_error_in_the_block_leaves_no_summary(session):
    terminal = Terminal()
    with pytest.raises(RuntimeError, match="boom"):
        with qcal.torch.calibrate(nn.Linear(4, 3), session, progress=terminal):
            raise RuntimeError("boom")
    assert " batches in " not in terminal.getvalue()
