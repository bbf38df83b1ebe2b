"""Run by test_gil.py in a child process: the qcal client against a fake Calibration service
written in Python, in the same process. The fake can only answer while the qcal call that waits
for it has released the GIL, so with the GIL held this script deadlocks (and the test, which runs
it under a timeout, fails) instead of printing OK.
"""

import sys
import threading
from concurrent import futures

import grpc
import numpy as np

import calibration_pb2 as pb
import calibration_pb2_grpc as pb_grpc
import qcal


class FakeCalibration(pb_grpc.CalibrationServicer):
    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()
        self.bytes = 0
        self.headers = 0

    def ListModels(self, request, context):
        self.entered.set()
        # Released by another Python thread, which needs the GIL to run.
        if not self.release.wait(timeout=300):
            context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "never released")
        return pb.ListModelsResponse(models=[pb.ModelInfo(name="fake")])

    def Record(self, request_iterator, context):
        # A response counts its own stream's batches (the session may open several: it closes
        # one to learn what is applied when its queue is full of sent batches).
        batches = size = 0
        for message in request_iterator:  # Python code for every message
            size += len(message.data)
            batches += message.HasField("header")
        self.bytes += size
        self.headers += batches
        return pb.RecordResponse(batches=batches, bytes=size)


def main():
    fake = FakeCalibration()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_CalibrationServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    client = qcal.Client(f"127.0.0.1:{port}")

    # 1. A unary call waits for a handler that a Python thread releases.
    ran = []

    def releaser():
        fake.entered.wait()
        ran.append(True)
        fake.release.set()

    thread = threading.Thread(target=releaser)
    thread.start()
    models = client.models()
    thread.join()
    assert [m["name"] for m in models] == ["fake"] and ran == [True], models

    # 2. record() blocks on a full queue (64 KiB) while the Python handler drains 16 MiB.
    session = client.model("fake", create=False, max_queue_bytes=64 << 10)
    for i in range(64):
        session.record("x._input_quantizer", np.full(1 << 16, i, np.float32))
    session.flush()
    assert fake.bytes == 64 * (1 << 18) and fake.headers == 64, (fake.bytes, fake.headers)
    assert session.stats()["applied_batches"] == 64
    del session  # closes its stream without the GIL

    server.stop(grace=None)
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
