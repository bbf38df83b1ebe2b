"""The extension releases the GIL while a call waits: gil_scenario.py only finishes if it does
(a fake server written in Python, in the same process, must run while qcal calls wait for it)."""

import os
import pathlib
import subprocess
import sys

from conftest import BUILD, PYPROTO


def test_blocking_calls_release_the_gil():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(BUILD / "python"), str(PYPROTO)]))
    script = pathlib.Path(__file__).with_name("gil_scenario.py")
    # A held GIL deadlocks the child: the timeout turns that into a failure, not a hang.
    result = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"
