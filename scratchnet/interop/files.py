"""Reading and writing the files of other formats: bounded reads, and atomic writes (a temporary file
beside the target, synced, then renamed over it), so that a failed export leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from scratchnet.core.errors import InteropError
from scratchnet.io.model import replace_file

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
    cannot be written is an InteropError naming it, and one that is a link, a device, a FIFO or a socket
    a ModelWriteError naming it (``replace_file`` writes only over a regular file)."""
    if path.is_dir():
        raise InteropError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InteropError(f"cannot write {path}: {error.strerror or error}") from None
    try:
        replace_file(path, lambda f: f.write(data))
    except OSError as error:
        raise InteropError(f"cannot write {path}: {error.strerror or error}") from None
    return path
