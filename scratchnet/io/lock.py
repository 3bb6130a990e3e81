"""An exclusive lock on a model's name: ``NAME.lock`` beside ``NAME.json``, held by one writer at a time.

``scratchnet train`` holds the lock of its output and of its checkpoint for the whole run, so a second
run writing the same files is refused at once (with the first run's process id) instead of both
finishing and sharing one checkpoint. The lock is an ``flock`` on the lock file: the operating system
releases it when its process ends, however it ends, so a lock file left by a killed run is stale, and
the next run takes it over. The file itself is removed when the lock is released.

Where ``flock`` does not exist (Windows), the lock file is created exclusively instead; a stale one
must then be deleted by hand, and the message says so.

The lock file is opened without following a symbolic link (``O_NOFOLLOW``) and without waiting on a
FIFO (``O_NONBLOCK``), and it is written only once ``fstat`` shows a regular file: a link, a device or
a FIFO planted at ``NAME.lock`` is refused with one line naming it, and what it points to is untouched.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from scratchnet.core.jsonread import read_json
from scratchnet.io.model import (
    ModelWriteError,
    check_replaceable,
    kind_of,
    make_folder,
    model_paths,
    remove_empty_folders,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["lock_path_for", "model_lock"]

_MAX_LOCK_BYTES = 4096
# Never through a link, never blocked opening a FIFO (each flag is 0 where the system lacks it).
_SAFE_OPEN = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def lock_path_for(path: str | os.PathLike[str]) -> Path:
    """``models/mnist.lock`` for the model ``models/mnist.json`` (or ``models/mnist``, ``.npz``)."""
    document = model_paths(path)[0]
    return document.with_name(document.stem + ".lock")


@contextmanager
def model_lock(path: str | os.PathLike[str], *, purpose: str = "writing") -> Iterator[Path]:
    """Hold the lock of the model ``path`` while the block runs, creating missing folders.

    ``ModelWriteError`` when another process holds it (naming that process), when the folder cannot
    be made or written, or when the pair's files or the lock are not regular files (a link, a device,
    a FIFO): so an output that cannot be written is found before any work is done. Folders made here
    that are still empty when the lock is released (the run wrote nothing) are removed."""
    document, arrays = model_paths(path)
    for target in (document, arrays):
        check_replaceable(target)
    lock = lock_path_for(document)
    created = make_folder(document)
    try:
        fd = _acquire(lock, document, purpose)
        try:
            yield lock
        finally:
            _release(lock, fd)
    finally:
        remove_empty_folders(created)  # only empty ones: a folder that holds anything stays


def _acquire(lock: Path, document: Path, purpose: str) -> int:
    info = json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "purpose": purpose,
            "command": " ".join(sys.argv)[:1000],
        }
    ).encode()
    while True:
        flags = os.O_RDWR | os.O_CREAT | _SAFE_OPEN | (0 if fcntl is not None else os.O_EXCL)
        try:
            fd = os.open(lock, flags, 0o644)
        except FileExistsError:  # no flock: an existing lock file is a held lock, or a stale one
            raise _in_use(lock, document, _holder(lock), stale_hint=True) from None
        except OSError as error:
            if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
                raise _not_a_lock(lock, document, "a symbolic link") from None
            raise ModelWriteError(f"cannot write {document}: {error.strerror or error}") from None
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or status.st_nlink > 1:  # a hard link would truncate another name
            os.close(fd)
            kind = kind_of(status.st_mode) if not stat.S_ISREG(status.st_mode) else "a hard link of another file"
            raise _not_a_lock(lock, document, kind)
        if fcntl is None:  # pragma: no cover - Windows
            break
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(lock)
            os.close(fd)
            raise _in_use(lock, document, holder, stale_hint=False) from None
        # The previous holder may have removed the file between our open and our flock: then the lock
        # is on a file nobody else can see. Lock the file that is at the path now.
        try:
            same = os.lstat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, info)
    except OSError as error:
        _release(lock, fd)
        raise ModelWriteError(f"cannot write {document}: {error.strerror or error}") from None
    return fd


def _release(lock: Path, fd: int) -> None:
    with suppress(OSError):
        lock.unlink()  # before closing: no other run may take the file over and then lose it
    with suppress(OSError):
        os.close(fd)


def _holder(lock: Path) -> str:
    """Who holds ``lock``, as its file says: ``pid 1234 on host, since ...``."""
    try:
        fd = os.open(lock, os.O_RDONLY | _SAFE_OPEN)
    except OSError:
        return "another process"
    try:
        info = read_json(os.read(fd, _MAX_LOCK_BYTES), "a lock file") if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except (OSError, ValueError):
        info = None
    finally:
        os.close(fd)
    if not isinstance(info, dict):
        return "another process"
    parts = [f"pid {info.get('pid')}"]
    if info.get("host") and info.get("host") != socket.gethostname():
        parts.append(f"on {info['host']}")
    if info.get("started"):
        parts.append(f"since {info['started']}")
    return " ".join(parts)


def _not_a_lock(lock: Path, document: Path, kind: str) -> ModelWriteError:
    return ModelWriteError(
        f"cannot write {document}: its lock file {lock} is {kind}, not a lock file scratchnet made; it is "
        "left as it is: remove it and run again"
    )


def _in_use(lock: Path, document: Path, holder: str, *, stale_hint: bool) -> ModelWriteError:
    advice = f"; if no run is using it, delete {lock}" if stale_hint else ""
    return ModelWriteError(
        f"{document} is being written by another run ({holder}); wait for it to finish or choose another output{advice}"
    )
