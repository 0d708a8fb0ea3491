"""TensorFlow's native start-up lines, kept off the terminal.

`import tensorflow` prints "All log messages before absl::InitializeLog() is called ..." and
a oneDNN notice straight to file descriptor 2, before TF_CPP_MIN_LOG_LEVEL is consulted, so
only redirecting the descriptor itself silences them. What was written meanwhile is shown
after all when the import fails: an error is never hidden.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to a scratch file while the block runs."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))
