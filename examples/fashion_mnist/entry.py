"""The entry point both Fashion-MNIST examples' run.py share: qcal imported from the build
folder, qcal errors and `errors` reported in one line with exit status 1, SIGTERM (e.g. a CI
timeout) unwinding like an exception so the local qcal-server gets stopped, Ctrl-C exit 130."""

import os
import signal
import sys


def import_qcal(build_dir):
    """Imports qcal, from <build>/python when PYTHONPATH does not already provide it."""
    python_dir = os.path.join(build_dir, "python")
    if os.path.isdir(python_dir) and python_dir not in sys.path:
        sys.path.insert(0, python_dir)
    import qcal
    import qcal.torch  # noqa: F401
    return qcal


def main(parse_args, run, errors=(OSError, RuntimeError, TimeoutError)):
    """Exits with run(parse_args(), qcal)'s status; `args.build_dir` locates qcal."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        args = parse_args()
        qcal = import_qcal(args.build_dir)
        try:
            status = run(args, qcal)
        except qcal.QcalError as error:
            print(f"run.py: qcal error {error.code}: {error.message}", file=sys.stderr)
            status = 1
    except KeyboardInterrupt:
        status = 130
    except errors as error:
        print(f"run.py: error: {error}", file=sys.stderr)
        status = 1
    sys.exit(status)
