"""Open a model file somewhere it cannot do harm before the serving process does.

A crafted or truncated `.tflite` file can crash the interpreter's C++ core (a segfault takes
the whole process, and with it every model a function serves). So before a process opens a
model file it has not opened before, it checks the file's header and then opens and invokes
it once in a forked child - a copy of this process, ready in milliseconds because everything
is already imported. A child that crashes, raises or hangs makes the file a ModelCrashed
error; the serving process never touches it. The child runs the model as the classifier
will: every file opened, the golden examples and the largest token id read. The sha256 of
every file that passed is remembered for the life of the process.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from maas import errors
from maas.errors import MaasError, ModelCrashed

PROBE_SECONDS = 5.0  # a model opens and runs its samples in ~50 ms; within a cold start
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


def ensure_safe(
    paths: Sequence[Path],
    digests: Sequence[str],
    exercise: Callable[[], Any],
    timeout: float | None = None,
) -> None:
    """Raise ModelCrashed unless `exercise` - which opens the files and runs them on sample
    inputs - succeeds in a child process (files whose sha256 already passed in this process
    are not probed again)."""
    if all(digest in _passed for digest in digests):
        return
    for path in paths:
        check_header(path)
    names = ", ".join(path.name for path in paths)
    if not hasattr(os, "fork"):
        exercise()  # no fork here (not Lambda): in process
    else:
        _run_in_child(names, exercise, PROBE_SECONDS if timeout is None else timeout)
    _passed.update(digests)


def _run_in_child(names: str, exercise: Callable[[], Any], timeout: float) -> None:
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: never returns into the caller's code
        status = 0
        try:
            os.close(reader)
            faulthandler.disable()  # its crash report would reach the parent's stderr
            descriptor = os.open(os.devnull, os.O_WRONLY)
            os.dup2(descriptor, 1)
            os.dup2(descriptor, 2)
            exercise()
        except MaasError as exc:  # a reason worth telling: sent to the parent
            status = 4
            os.write(writer, json.dumps([type(exc).__name__, exc.message]).encode()[:60_000])
        except BaseException:
            status = 3
        os._exit(status)
    os.close(writer)
    try:
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
        said = os.read(reader, 65_536)
    finally:
        os.close(reader)
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise ModelCrashed(f"{names}: the interpreter crashed opening the model ({name})")
    if os.WEXITSTATUS(status) == 4 and said:
        kind, message = json.loads(said)
        error = getattr(errors, kind, None)
        if isinstance(error, type) and issubclass(error, MaasError):
            raise error(message)
    if os.WEXITSTATUS(status) != 0:
        raise ModelCrashed(f"{names}: the interpreter cannot open or run the model")
