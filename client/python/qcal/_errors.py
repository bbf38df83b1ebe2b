"""The exception every qcal call raises on an error."""


class QcalError(Exception):
    """An error reported by qcal-server or by the client.

    Attributes:
        code: the gRPC status code name, e.g. "NOT_FOUND", "INVALID_ARGUMENT",
            "FAILED_PRECONDITION", "RESOURCE_EXHAUSTED", "UNAVAILABLE".
        message: the server's (or client's) message, naming the model, quantizer and
            parameter at fault.
    """

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self):
        return (type(self), (self.code, self.message))


class QcalWarning(UserWarning):
    """A warning of the ONNX export (e.g. an amax of 0 replaced by scale 1)."""
