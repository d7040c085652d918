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


class Unreadable(ValueError):
    """A file that cannot be read as what it should be; the message says why, in words."""


def read_bounded(path, limit):
    """The UTF-8 text of ``path``, a regular file of at most ``limit`` bytes (never a FIFO, a device or a
    file that grows without end); Unreadable saying why not, naming the allowed."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except OSError as error:
        raise Unreadable(f"cannot be read ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        raise Unreadable("not a regular file")
    try:
        with open(path, "rb") as file:
            content = file.read(limit + 1)
    except OSError as error:
        raise Unreadable(f"cannot be read ({error.strerror})") from None
    if len(content) > limit:
        raise Unreadable(f"larger than {limit} bytes")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Unreadable(f"not UTF-8 text (byte {error.start} is 0x{content[error.start]:02x})") from None


def read_text(path, what, limit):
    """The UTF-8 text of the user's file ``path`` (``what`` it should be, e.g. "a TOML spec"),
    at most ``limit`` bytes; UsageError in one line naming the file and the problem otherwise."""
    try:
        return read_bounded(path, limit)
    except Unreadable as error:
        size = f" of at most {limit} bytes" if str(error).startswith("larger") else ""
        utf8 = " in UTF-8" if str(error).startswith("not UTF-8") else ""
        raise UsageError(f"{path}: {error}; allowed: {what}{size}{utf8}") from None


def writable(directory, option):
    """UsageError in one line, before any work, where ``directory`` (an output, made if missing) cannot be
    written: it, or its nearest existing parent, is not a writable directory."""
    path = Path(directory)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(
            f"{option} {directory}: {existing} is not a writable directory; allowed: a directory you can write"
        )
