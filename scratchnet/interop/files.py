"""Reading and writing the files of other formats: bounded reads, and atomic writes (a temporary file
beside the target, synced, then renamed over it), so that a failed export leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from scratchnet.core.errors import InteropError

MAX_FILE_BYTES = 2**31  # 2 GiB, the most a protobuf message (an ONNX model) can hold


def first_line(error: Exception) -> str:
    """The first line of an exception's message (a library's may run to several), or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_bounded(path: Path, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of ``path``; InteropError naming it when it cannot be read or holds more than ``limit``."""
    if path.is_dir():
        raise InteropError(f"{path}: is a directory, not {what}")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as error:
        raise InteropError(f"{path}: cannot read {what} ({error.strerror or error})") from None
    if len(data) > limit:
        raise InteropError(f"{path}: larger than the limit of {limit} bytes for {what}")
    return data


def write_atomically(path: Path, data: bytes) -> Path:
    """Replace ``path`` by ``data`` in one rename (creating missing folders); return ``path``.

    Either the old file (or none) or the new one is there afterwards, never a part of it; a path that
    cannot be written is an InteropError naming it."""
    if path.is_dir():
        raise InteropError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InteropError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)  # a replaced file keeps its permissions
    except OSError:
        mode = _new_file_mode()
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name[:200]}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise InteropError(f"cannot write {path}: {error.strerror or error}") from None
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise InteropError(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return path


def _new_file_mode() -> int:
    """0o666 less the umask, as open() gives a new file (mkstemp gives 0o600); the umask is read from
    /proc where it can be, because os.umask() reads it only by changing it."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o644
