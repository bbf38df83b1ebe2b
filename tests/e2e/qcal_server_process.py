"""Starts the real qcal-server on free loopback ports for a test and stops it afterwards.

    with QcalServerProcess(server_bin, "--max-batch-bytes", "1048576") as server:
        client = qcal.Client(server.address)

The server picks its ports (--listen 127.0.0.1:0 --http-listen 127.0.0.1:0) and announces them on
one stdout line, `qcal-server listening on HOST:PORT http HOST:PORT`, which is parsed here.
"""

import os
import re
import subprocess
import tempfile

READY_LINE = re.compile(r"^qcal-server listening on (\S+) http (\S+)$")


class QcalServerProcess:
    def __init__(self, server_bin, *extra_args):
        self.args = [
            os.fspath(server_bin),
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            *extra_args,
        ]
        self.address = None
        self.http_address = None
        self._process = None
        self._stderr = None

    def start(self):
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=self._stderr, text=True
        )
        line = self._process.stdout.readline().strip()  # blocks until ready, or exit
        match = READY_LINE.match(line)
        if match is None:
            self.stop()
            raise RuntimeError(
                f"qcal-server did not print its ready line; got {line!r}; stderr:\n{self.stderr()}"
            )
        self.address, self.http_address = match.group(1), match.group(2)
        return self

    def stderr(self):
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self):
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None:
            self._process.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False
