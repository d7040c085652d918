"""Files: written so that a reader never sees half of one, whatever happens to the writer, and
read from the user with one line saying what is wrong when they cannot be."""

import os
import stat
import tempfile
from pathlib import Path

from harness.errors import UsageError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def write_atomically(path, content):
    """Write ``content`` (str or bytes) to ``path`` through a temporary file in the same
    directory, flushed to disk, then renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if isinstance(content, bytes) else "w") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_text(path, what, limit):
    """The UTF-8 text of the user's file ``path`` (``what`` it should be, e.g. "a TOML spec"),
    at most ``limit`` bytes; UsageError in one line naming the file and the problem otherwise."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; allowed: {what}") from None
    except OSError as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror}); allowed: {what}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: not a regular file; allowed: {what}")
    try:
        with open(path, "rb") as file:
            content = file.read(limit + 1)
    except OSError as error:
        raise UsageError(f"{path}: cannot be read ({error.strerror}); allowed: {what}") from None
    if len(content) > limit:
        raise UsageError(f"{path}: larger than {limit} bytes; allowed: {what} of at most {limit} bytes")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path}: not UTF-8 text (byte {error.start} is 0x{content[error.start]:02x}); allowed: {what} in UTF-8"
        ) from None
