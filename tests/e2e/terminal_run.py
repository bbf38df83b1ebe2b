"""Runs a command with its stderr on a pseudo-terminal (as a user's shell would) and its stdout on
a pipe (as a script that parses it would), to see what the command draws on a terminal.

    result = run_on_terminal([cli_bin, "record", ...], env)
    result.returncode, result.stdout (bytes), result.stderr (text, "\\r\\n" read as "\\n")
"""

import fcntl
import os
import select
import struct
import subprocess
import termios
from dataclasses import dataclass

# Wide enough that no progress line is shortened.
COLUMNS = 160


@dataclass
class TerminalResult:
    returncode: int
    stdout: bytes
    stderr: str


def run_on_terminal(argv, env, timeout=60):
    controller, terminal = os.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, COLUMNS, 0, 0))
    try:
        process = subprocess.Popen(
            [os.fspath(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=terminal,
            env=env,
        )
    finally:
        os.close(terminal)
    drawn = bytearray()
    try:
        while True:
            ready, _, _ = select.select([controller], [], [], timeout)
            if not ready:
                process.kill()
                raise TimeoutError(f"{argv}: no output for {timeout} s; so far {bytes(drawn)!r}")
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: every holder of the terminal closed it (the command exited)
                break
            if not data:
                break
            drawn += data
        stdout = process.stdout.read()
        process.wait(timeout=timeout)
    finally:
        process.stdout.close()
        os.close(controller)
    # The terminal turns each "\n" into "\r\n" (onlcr).
    return TerminalResult(process.returncode, stdout, drawn.decode().replace("\r\n", "\n"))
