"""The progress line of qcal.torch.calibrate: batches streamed, drawn on a terminal and nowhere
else, so scripts and logs piped to a file see nothing.

tqdm draws it when installed (python3-tqdm); without tqdm a small line of our own does. Either
way it redraws at most 10 times a second and ends with one summary line:

    qcal resnet18: 100 batches in 3.2 s (31.2 batches/s)
"""

import os
import sys
import time

# At most 10 redraws a second: a hook per forward call must not slow training.
_REDRAW_EVERY = 0.1


def _stream_for(progress):
    """The stream to draw on, or None. progress: None (sys.stderr), False (none), or a file
    object. Drawn only on a terminal whose TERM is not "dumb" (which cannot redraw in place),
    and not with QCAL_NO_PROGRESS set to anything but "" or "0"."""
    if progress is False or os.environ.get("QCAL_NO_PROGRESS", "") not in ("", "0"):
        return None
    stream = sys.stderr if progress is None or progress is True else progress
    if stream is None or os.environ.get("TERM") == "dumb":
        return None
    isatty = getattr(stream, "isatty", None)
    return stream if isatty is not None and isatty() else None


def _total_of(total):
    """An int, or len() of a sized object (a DataLoader); None when unknown (an iterable
    dataset's loader raises TypeError on len())."""
    if total is None or isinstance(total, int):
        return total
    try:
        return len(total)
    except TypeError:
        return None


class _Line:
    """tqdm's place when it is not installed: "qcal m: 12/100 batches  30.1 batches/s  ETA 3s"."""

    def __init__(self, stream, total, desc):
        self._stream, self._total, self._desc = stream, total, desc
        self._start = time.monotonic()
        self._last = None
        self.n = 0

    def update(self, n=1):
        self.n += n
        now = time.monotonic()
        if self._last is not None and now - self._last < _REDRAW_EVERY:
            return
        self._last = now
        elapsed = now - self._start
        noun = "batch" if self.n == 1 and not self._total else "batches"
        line = f"{self._desc}: {self.n}" + (f"/{self._total}" if self._total else "") + f" {noun}"
        if elapsed > 0:
            rate = self.n / elapsed
            line += f"  {rate:.1f} batches/s"
            if self._total and rate > 0 and self.n <= self._total:
                line += f"  ETA {(self._total - self.n) / rate:.0f}s"
        self._stream.write("\r" + line + "\x1b[K")
        self._stream.flush()

    def close(self):
        if self._last is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()


class BatchProgress:
    """Counts batches (one per forward call) and draws them on `stream`; a no-op when stream is
    None."""

    def __init__(self, stream, total, desc):
        self._stream, self._desc = stream, desc
        self._start = time.monotonic()
        self._bar = None
        self.count = 0
        if stream is None:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            self._bar = _Line(stream, total, desc)
        else:
            # leave=False: the summary line below replaces the bar, with or without tqdm.
            self._bar = tqdm(total=total, file=stream, desc=desc, unit="batch", leave=False,
                             mininterval=_REDRAW_EVERY, dynamic_ncols=True)

    @property
    def active(self):
        return self._bar is not None

    def update(self):
        if self._bar is not None:
            self.count += 1
            self._bar.update(1)

    def close(self, summary):
        """Removes the bar; with `summary` writes the summary line (not after an error)."""
        if self._bar is None:
            return
        self._bar.close()
        self._bar = None
        if summary:
            seconds = time.monotonic() - self._start
            plural = "" if self.count == 1 else "es"
            line = f"{self._desc}: {self.count} batch{plural} in {seconds:.1f} s"
            if seconds > 0:
                line += f" ({self.count / seconds:.1f} batches/s)"
            self._stream.write(line + "\n")
            self._stream.flush()


def batch_progress(progress, total, desc):
    return BatchProgress(_stream_for(progress), _total_of(total), desc)
