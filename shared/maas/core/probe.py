"""Open a model file somewhere it cannot do harm before the serving process does.

A crafted or truncated `.tflite` file can crash the interpreter's C++ core (a segfault takes
the whole process, and with it every model a function serves). So before a process opens a
model file it has not opened before, it checks the file's header and then opens and invokes
it once in a forked child - a copy of this process, ready in milliseconds because everything
is already imported. A child that crashes, raises or hangs makes the file a ModelCrashed
error; the serving process never touches it. The sha256 of every file that passed is
remembered for the life of the process.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maas.errors import ModelCrashed

PROBE_SECONDS = 20.0
_IDENTIFIER = b"TFL3"  # the TFLite schema's flatbuffer file identifier, bytes 4-8
_passed: set[str] = set()


def check_header(path: Path) -> None:
    """A TFLite flatbuffer: the identifier where it belongs, a root table inside the file."""
    with path.open("rb") as handle:
        head = handle.read(8)
        size = os.fstat(handle.fileno()).st_size
    if len(head) < 8 or head[4:8] != _IDENTIFIER:
        raise ModelCrashed(
            f"{path.name} is not a TFLite model (no TFL3 identifier)", file=path.name
        )
    root = int.from_bytes(head[:4], "little")
    if not 8 <= root < size:
        raise ModelCrashed(f"{path.name} is truncated or corrupt (root table at {root} of {size})")


def _exercise(paths: Sequence[Path], open_interpreter: Callable[[Path], Any]) -> None:
    """Open each model and invoke it once on zeros (what the child does)."""
    import numpy as np

    for path in paths:
        interpreter = open_interpreter(path)
        interpreter.allocate_tensors()
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreter.invoke()
        for detail in interpreter.get_output_details():
            interpreter.get_tensor(detail["index"])


def ensure_safe(
    paths: Sequence[Path],
    digests: Sequence[str],
    open_interpreter: Callable[[Path], Any],
    timeout: float = PROBE_SECONDS,
) -> None:
    """Raise ModelCrashed unless every file opens and runs in a child process (files whose
    sha256 already passed in this process are not probed again)."""
    pending = [(p, d) for p, d in zip(paths, digests, strict=True) if d not in _passed]
    if not pending:
        return
    for path, _ in pending:
        check_header(path)
    files = [path for path, _ in pending]
    if not hasattr(os, "fork"):
        _exercise(files, open_interpreter)  # no fork here (not Lambda): in process
    else:
        _run_in_child(files, open_interpreter, timeout)
    _passed.update(digest for _, digest in pending)


def _run_in_child(
    files: Sequence[Path], open_interpreter: Callable[[Path], Any], timeout: float
) -> None:
    names = ", ".join(path.name for path in files)
    child = os.fork()
    if child == 0:  # the child: never returns into the caller's code
        status = 0
        try:
            descriptor = os.open(os.devnull, os.O_WRONLY)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            _exercise(files, open_interpreter)
        except BaseException:
            status = 3
        os._exit(status)
    deadline = time.monotonic() + timeout
    while True:
        finished, status = os.waitpid(child, os.WNOHANG)
        if finished:
            break
        if time.monotonic() > deadline:
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
            raise ModelCrashed(f"{names}: opening the model did not finish in {timeout:g} s")
        time.sleep(0.002)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise ModelCrashed(f"{names}: the interpreter crashed opening the model ({name})")
    if os.WEXITSTATUS(status) != 0:
        raise ModelCrashed(f"{names}: the interpreter cannot open or run the model")
