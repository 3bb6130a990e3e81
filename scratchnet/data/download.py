"""Download one dataset file from a list of mirrors (standard library ``urllib`` only).

A file only appears under its final name once its decompressed sha256 has been
verified: it is written to a temporary file in the same directory, checked,
fsynced and renamed with :func:`os.replace` (atomic on one file system). The
temporary file is removed on every failure, including Ctrl-C.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, TextIO

from scratchnet.core.errors import DatasetError
from scratchnet.data.idx import decompressed_sha256

__all__ = ["DEFAULT_TIMEOUT", "MAX_DOWNLOAD_BYTES", "download_file"]

#: Seconds a connection or a single read may stall before the mirror is abandoned.
DEFAULT_TIMEOUT = 30.0
#: The largest file we expect is Fashion-MNIST's 26 MB training images; refuse
#: anything far bigger rather than fill the disk from a misbehaving mirror.
MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
_CHUNK = 64 * 1024
_USER_AGENT = "scratchnet-dataset-downloader"


class _Progress:
    """A one-line progress display on stderr, redrawn in place; silent unless stderr is a terminal."""

    def __init__(self, label: str, total: int | None, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and _isatty(self.stream)
        self.label = label
        self.total = total
        self.last = 0.0
        self.drawn = False

    def update(self, done: int, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self.last < 0.1:  # redrawing on every chunk would flood slow terminals
            return
        self.last = now
        if self.total:
            text = f"{self.label}: {100 * done // self.total:3d}% ({_mb(done)} of {_mb(self.total)})"
        else:
            text = f"{self.label}: {_mb(done)}"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.enabled and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _reason(exc: BaseException) -> str:
    """A short, one-line description of why a mirror failed."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        if isinstance(inner, BaseException):
            return _reason(inner)
        return str(inner)
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).replace("\n", " ").strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fetch(url: str, out: BinaryIO, label: str, *, progress: bool, timeout: float, limit: int) -> None:
    """Stream ``url`` into ``out``; raise on any network problem or if the size exceeds ``limit``."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):  # urllib would also open file:// and ftp:// URLs
        raise DatasetError(f"unsupported URL scheme {scheme!r}")
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length_header = response.headers.get("Content-Length")
        total: int | None = None
        if length_header is not None and length_header.strip().isdigit():
            total = int(length_header)
            if total > limit:
                raise DatasetError(f"size {total:,} bytes exceeds the {limit:,}-byte limit")
        bar = _Progress(label, total, progress)
        done = 0
        try:
            while chunk := response.read(_CHUNK):
                done += len(chunk)
                if done > limit:  # Content-Length can be absent or wrong
                    raise DatasetError(f"more than {limit:,} bytes received")
                out.write(chunk)
                bar.update(done)
            bar.update(done, force=True)
        finally:
            bar.finish()
        if total is not None and done != total:
            raise DatasetError(f"incomplete download ({done:,} of {total:,} bytes)")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible (or needed) on every platform.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def download_file(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: Path,
    sha256_decompressed: str,
    *,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
) -> Path:
    """Download ``filename`` into ``dest_dir`` from the first mirror that serves a correct copy.

    Each mirror is a base URL; the file's URL is the base joined with ``filename``.
    Any failure (HTTP error, refused connection, timeout, oversize, checksum mismatch)
    moves on to the next mirror. Returns the path of the verified file; raises
    :class:`DatasetError` naming every mirror's failure if none worked.
    """
    dest_dir = Path(dest_dir)
    if not mirrors:
        raise DatasetError(f"{filename}: no download mirrors configured")
    created = [folder for folder in reversed((dest_dir / filename).parents) if not folder.exists()]
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"{dest_dir}: cannot create the download directory ({_reason(exc)})") from None
    try:
        return _download_into(dest_dir, filename, mirrors, sha256_decompressed, progress, timeout, max_bytes)
    except BaseException:
        # A failed first download leaves no empty cache folders behind (Ctrl-C included).
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def _download_into(
    dest_dir: Path,
    filename: str,
    mirrors: Sequence[str],
    sha256_decompressed: str,
    progress: bool,
    timeout: float,
    max_bytes: int,
) -> Path:
    final = dest_dir / filename
    failures: list[str] = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + urllib.parse.quote(filename)
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=dest_dir)
        except OSError as exc:
            raise DatasetError(f"{dest_dir}: cannot write a temporary file ({_reason(exc)})") from None
        tmp = Path(tmp_name)
        ok = False
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    _fetch(url, out, f"Downloading {filename}", progress=progress, timeout=timeout, limit=max_bytes)
                    out.flush()
                    os.fsync(out.fileno())
                except (DatasetError, OSError, http.client.HTTPException, ValueError) as exc:
                    # OSError covers URLError, HTTPError, timeouts and refused connections.
                    failures.append(f"{url} ({_reason(exc)})")
                    continue
            try:
                actual = decompressed_sha256(tmp)
            except DatasetError as exc:
                failures.append(f"{url} (bad data: {str(exc).removeprefix(str(tmp) + ': ')})")
                continue
            if actual != sha256_decompressed.lower():
                failures.append(f"{url} (checksum mismatch: decompressed sha256 {actual})")
                continue
            try:
                os.replace(tmp, final)
            except OSError as exc:
                raise DatasetError(f"{final}: cannot move the downloaded file into place ({_reason(exc)})") from None
            ok = True
            _fsync_dir(dest_dir)
            return final
        finally:
            # Runs on every exit path, KeyboardInterrupt included, so no .part file is left behind.
            if not ok:
                with contextlib.suppress(OSError):
                    tmp.unlink()
    raise DatasetError(f"could not download {filename} from any mirror: " + "; ".join(failures))
