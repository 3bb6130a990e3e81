"""Reader for IDX files (the MNIST format), plain or gzipped, with strict checks.

An IDX file is: two zero bytes, a type code, the number of dimensions ``ndim``,
then ``ndim`` big-endian uint32 sizes, then the payload in C order. Only type
code 0x08 (unsigned bytes) is supported, which is all MNIST-style data uses.

Everything except :func:`read_idx` is standard library only, so the format
checks can be used (and tested) without numpy.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from scratchnet.core.errors import DatasetError
from scratchnet.data.byte_arrays import ByteArray

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "GZIP_MAGIC",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_NDIM",
    "decompress",
    "decompressed_sha256",
    "read_decompressed",
    "read_idx",
    "read_idx_bytes",
    "read_idx_plain",
]

GZIP_MAGIC = b"\x1f\x8b"
UINT8_TYPE_CODE = 0x08
#: IDX allows up to 255 dimensions; nothing real uses more than a few, so a large
#: count means the header is garbage.
MAX_NDIM = 8
#: Upper bound on the decompressed size, so a gzip bomb (or a garbage header
#: that claims terabytes) cannot exhaust memory. Fashion-MNIST's largest file
#: is 47 MB decompressed.
MAX_DECOMPRESSED_BYTES = 100 * 1024 * 1024
_CHUNK = 1 << 20


def _too_large(name: str, limit: int) -> DatasetError:
    return DatasetError(f"{name}: decompressed data exceeds the {limit:,}-byte limit")


def _iter_decompressed(read: Callable[[int], bytes], name: str, limit: int) -> Iterator[bytes]:
    """Yield the decompressed contents of a stream, gunzipping it if it starts with the gzip magic."""
    head = read(2)
    while 0 < len(head) < 2:  # a short read is not end of stream
        more = read(2 - len(head))
        if not more:
            break
        head += more
    if head[:2] != GZIP_MAGIC:
        total = len(head)
        if head:
            yield head
        while chunk := read(_CHUNK):
            total += len(chunk)
            if total > limit:
                raise _too_large(name, limit)
            yield chunk
        return

    pending = head
    at_end = False
    total = 0
    members = 0
    while True:  # one gzip member per iteration (concatenated gzip files are valid gzip)
        members += 1
        decomp = zlib.decompressobj(wbits=31)  # 31 = gzip wrapper; zlib checks the CRC and length
        while not decomp.eof:
            if not pending and not at_end:
                pending = read(_CHUNK)
                at_end = not pending
            try:
                # max_length bounds each output chunk: this is what makes the cap effective.
                out = decomp.decompress(pending, _CHUNK)
            except zlib.error as exc:
                raise DatasetError(f"{name}: corrupt gzip data ({exc})") from None
            pending = decomp.unconsumed_tail
            if out:
                total += len(out)
                if total > limit:
                    raise _too_large(name, limit)
                yield out
            elif at_end and not pending and not decomp.eof:
                raise DatasetError(f"{name}: truncated gzip stream (the file ends before the compressed data does)")
        pending = decomp.unused_data
        while len(pending) < 2 and not at_end:
            more = read(_CHUNK)
            at_end = not more
            pending += more
        if not pending:
            return
        if pending[:2] != GZIP_MAGIC:
            raise DatasetError(f"{name}: unexpected bytes after the end of the gzip data (member {members})")


def _bytes_reader(data: bytes | bytearray) -> Callable[[int], bytes]:
    view = memoryview(data)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = bytes(view[pos : pos + n])
        pos += len(chunk)
        return chunk

    return read


def decompress(data: bytes | bytearray, name: str, *, limit: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Return ``data`` gunzipped if it starts with the gzip magic, else unchanged; at most ``limit`` bytes."""
    return b"".join(_iter_decompressed(_bytes_reader(data), name, limit))


def read_decompressed(path: str | os.PathLike[str], *, limit: int = MAX_DECOMPRESSED_BYTES) -> bytearray:
    """Read a file, gunzipping it if its content is gzip (whatever its name); at most ``limit`` bytes."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            # bytearray so that numpy can wrap it as a writable array without a copy.
            return bytearray().join(_iter_decompressed(f.read, name, limit))
    except OSError as exc:
        raise DatasetError(f"{name}: cannot read ({exc.strerror or exc})") from None


def decompressed_sha256(path: str | os.PathLike[str], *, limit: int = MAX_DECOMPRESSED_BYTES) -> str:
    """The sha256 (hex) of a file's decompressed contents, computed in a streaming way."""
    name = os.fspath(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in _iter_decompressed(f.read, name, limit):
                digest.update(chunk)
    except OSError as exc:
        raise DatasetError(f"{name}: cannot read ({exc.strerror or exc})") from None
    return digest.hexdigest()


def _parse(data: bytes | bytearray, name: str) -> tuple[tuple[int, ...], int]:
    """Check an uncompressed IDX file; return its dimensions and the payload offset."""
    if len(data) < 4:
        raise DatasetError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise DatasetError(
            f"{name}: not an IDX file (magic number 0x{bytes(data[:4]).hex()} does not start with two zero bytes)"
        )
    if data[2] != UINT8_TYPE_CODE:
        raise DatasetError(
            f"{name}: unsupported IDX type code 0x{data[2]:02x} (only 0x08, unsigned bytes, is supported)"
        )
    ndim = data[3]
    if not 1 <= ndim <= MAX_NDIM:
        raise DatasetError(
            f"{name}: implausible number of dimensions {ndim} in the IDX header (expected 1..{MAX_NDIM})"
        )
    offset = 4 + 4 * ndim
    if len(data) < offset:
        raise DatasetError(f"{name}: truncated IDX header ({len(data)} bytes, {ndim} dimensions need {offset})")
    dims: tuple[int, ...] = struct.unpack(f">{ndim}I", bytes(data[4:offset]))
    shape = "x".join(map(str, dims))
    if 0 in dims:
        raise DatasetError(f"{name}: IDX header has a zero dimension ({shape})")
    expected = math.prod(dims)
    actual = len(data) - offset
    if actual < expected:
        raise DatasetError(
            f"{name}: truncated payload (dimensions {shape} need {expected:,} bytes, file has {actual:,})"
        )
    if actual > expected:
        raise DatasetError(
            f"{name}: {actual - expected:,} trailing bytes after the payload "
            f"(dimensions {shape} need {expected:,} bytes)"
        )
    return dims, offset


def read_idx_bytes(data: bytes, name: str) -> tuple[tuple[int, ...], bytes]:
    """Parse IDX ``data`` (plain or gzipped); return ``(dims, payload)``. Standard library only.

    ``name`` is used in error messages; every problem raises :class:`DatasetError`.
    """
    raw = decompress(data, name)
    dims, offset = _parse(raw, name)
    return dims, raw[offset:]


def read_idx(path: str | os.PathLike[str], *, sha256: str | None = None) -> NDArray[np.uint8]:
    """Read an IDX file (plain or gzipped) as a uint8 array of the header's shape.

    If ``sha256`` is given, the sha256 of the decompressed contents must equal it,
    so recompressed and uncompressed copies of the same data are accepted alike.
    """
    import numpy as np  # here, not at module level: the parser must work without numpy

    raw, dims, offset = _verified(path, sha256)
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def read_idx_plain(path: str | os.PathLike[str], *, sha256: str | None = None) -> ByteArray:
    """:func:`read_idx` without NumPy: the same bytes as a :class:`~scratchnet.data.byte_arrays.ByteArray`."""
    raw, dims, offset = _verified(path, sha256)
    return ByteArray(memoryview(raw)[offset:], dims)


def _verified(path: str | os.PathLike[str], sha256: str | None) -> tuple[bytearray, tuple[int, ...], int]:
    """The decompressed file, checked against ``sha256`` and parsed: (contents, dims, payload offset)."""
    name = os.fspath(path)
    raw = read_decompressed(path)
    if sha256 is not None:  # first: nothing of a file that is not the published one is looked at
        actual = hashlib.sha256(raw).hexdigest()
        if actual != sha256.lower():
            raise DatasetError(
                f"{name}: checksum mismatch (sha256 of the decompressed data is {actual}, expected {sha256}); "
                "the file is damaged or is not the file its name says"
            )
    dims, offset = _parse(raw, name)
    return raw, dims, offset
