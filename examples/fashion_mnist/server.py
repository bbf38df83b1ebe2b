"""Starts a local qcal-server for the run and stops it again, whatever happens."""

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import threading

_READY = re.compile(r"qcal-server listening on (\S+) http (\S+)")


def server_address(stack, address, build_dir, log=print):
    """`address` (a running server, --server), or a local qcal-server from `build_dir` started
    on `stack` (a contextlib.ExitStack) and stopped when it closes. Logs step 4's header."""
    if address:
        log(f"[4/6] calibrating through qcal-server at {address}")
        return address
    log("[4/6] starting qcal-server and calibrating")
    return stack.enter_context(local_server(os.path.join(build_dir, "qcal-server"), log=log))


@contextlib.contextmanager
def local_server(binary, timeout_s=30.0, log=print):
    """Runs `binary --listen 127.0.0.1:0 --http-listen 127.0.0.1:0` and yields its gRPC address
    (HOST:PORT from the ready line); terminates it on exit, also on an exception."""
    if not os.path.exists(binary):
        raise FileNotFoundError(f"{binary} not found: build the target qcal-server first")
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_stop_with_parent)
    try:
        grpc_addr, http_addr = _wait_ready(proc, timeout_s)
        log(f"started {binary} (pid {proc.pid}): grpc {grpc_addr}, http {http_addr}")
        yield grpc_addr
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_with_parent():
    """In the child: ask Linux to send SIGTERM when this process's parent dies, so even a killed
    run (SIGKILL, where no finally block runs) leaves no server behind."""
    try:
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the context manager's cleanup still stops the server


def _wait_ready(proc, timeout_s):
    """Reads the server's output until the ready line; afterwards the output is passed on to
    stderr (so the pipe never fills up and server warnings stay visible)."""
    found = {}
    seen = []
    ready = threading.Event()

    def pump():
        for line in proc.stdout:
            if not ready.is_set():
                seen.append(line)
                match = _READY.search(line)
                if match:
                    found["addrs"] = match.groups()
                    ready.set()
                continue
            sys.stderr.write("[qcal-server] " + line)
        ready.set()  # output closed: the server exited

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(timeout_s):
        raise TimeoutError(f"qcal-server printed no ready line within {timeout_s:.0f} s:\n"
                           + "".join(seen))
    if "addrs" not in found:
        raise RuntimeError(f"qcal-server exited (code {proc.wait()}) before it was ready:\n"
                           + "".join(seen))
    return found["addrs"]
