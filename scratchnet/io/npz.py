"""A standard-library codec for NumPy's .npz format: a zip archive of ``NAME.npy`` entries.

numpy.savez writes stored (uncompressed) entries and numpy.savez_compressed deflated
ones; both are read here.  The writer produces stored entries with a fixed timestamp
so that equal arrays give byte-identical files.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Mapping
from typing import BinaryIO

from scratchnet.core.errors import ModelFormatError
from scratchnet.io.npy import NpyArray, format_npy, parse_npy

__all__ = ["check_array_name", "format_npz", "read_npz", "write_npz"]

_SUFFIX = ".npy"
_MAX_NAME_CHARS = 255
# Errors the zipfile/zlib machinery raises on damaged input.  Notes: a CRC mismatch
# surfaces as BadZipFile when the entry is read to its end; NotImplementedError comes
# from unsupported zip features (e.g. "compressed patched data"); RuntimeError from
# encryption; OverflowError/ValueError from absurd offsets and sizes.
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    NotImplementedError,
    RuntimeError,
    OverflowError,
    IndexError,
    KeyError,
)
# Slack allowed beyond max_total_bytes when bounding the archive's size before
# zipfile reads its central directory: per entry, local + central headers (30 + 46
# bytes), a name of up to 255 UTF-8 characters twice, zip64 extras and a data
# descriptor; per archive, the end records and a maximal comment; plus deflate's
# worst-case expansion (5 bytes per stored block of at most 64 KiB).
_PER_ENTRY_SLACK = 4096
_PER_ARCHIVE_SLACK = 128 * 1024


# End-of-central-directory records (APPNOTE.TXT 4.3.14-4.3.16).
_EOCD_SIG = b"PK\x05\x06"
_EOCD_LEN = 22
_EOCD64_LOCATOR_SIG = b"PK\x06\x07"
_EOCD64_LOCATOR_LEN = 20
_EOCD64_SIG = b"PK\x06\x06"
_EOCD64_LEN = 56


def _declared_entry_count(fobj: BinaryIO, size: int) -> int | None:
    """The total entry count the end-of-central-directory record declares, found as zipfile finds it.

    zipfile ignores this count and walks the central directory by its byte size, so
    a damaged name/extra/comment length in one record can silently swallow the next
    record; comparing the count catches that.
    """
    tail_start = max(size - _EOCD_LEN - 0xFFFF, 0)  # the archive comment is at most 64 KiB
    fobj.seek(tail_start)
    tail = fobj.read()
    if tail[-_EOCD_LEN:][:4] == _EOCD_SIG and tail[-2:] == b"\x00\x00":
        pos = len(tail) - _EOCD_LEN
    else:
        pos = tail.rfind(_EOCD_SIG)
        if pos < 0 or len(tail) - pos < _EOCD_LEN:
            return None
    (count,) = struct.unpack_from("<H", tail, pos + 10)
    eocd_at = tail_start + pos
    # A zip64 locator right before the record points at a zip64 record, whose
    # 8-byte count (at offset 32) replaces the 2-byte one.
    if eocd_at >= _EOCD64_LOCATOR_LEN + _EOCD64_LEN:
        fobj.seek(eocd_at - _EOCD64_LOCATOR_LEN)
        if fobj.read(4) == _EOCD64_LOCATOR_SIG:
            fobj.seek(eocd_at - _EOCD64_LOCATOR_LEN - _EOCD64_LEN)
            record = fobj.read(_EOCD64_LEN)
            if len(record) == _EOCD64_LEN and record[:4] == _EOCD64_SIG:
                (count,) = struct.unpack_from("<Q", record, 32)
    return int(count)


def check_array_name(name: str) -> str | None:
    """Return why ``name`` cannot be an array name in an .npz file, or None if it can."""
    if not name:
        return "empty array name"
    if len(name) > _MAX_NAME_CHARS:
        return f"array name longer than {_MAX_NAME_CHARS} characters"
    if "/" in name or "\\" in name or ".." in name:
        return f"array name {name!r} looks like a path"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"array name {name!r} contains control characters"
    return None


def _fail(name: str, problem: str) -> ModelFormatError:
    return ModelFormatError(f"{name}: {problem}".replace("\r", " ").replace("\n", " "))


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if len(text) > 120:
        text = text[:120] + "..."
    return f"{type(exc).__name__}: {text}"


def _read_entries(
    zf: zipfile.ZipFile, name: str, *, max_arrays: int, max_total_bytes: int, max_header: int
) -> dict[str, NpyArray]:
    infos = zf.infolist()
    if len(infos) > max_arrays:
        raise _fail(name, f"npz has {len(infos)} entries, more than the limit of {max_arrays}")
    seen: set[str] = set()
    declared_total = 0
    for info in infos:
        entry = info.orig_filename
        # zipfile cuts names at NUL (info.filename); the original keeps it visible.
        if "\x00" in entry or entry != info.filename:
            raise _fail(name, f"npz entry name {entry!r} is malformed")
        if not entry.endswith(_SUFFIX):
            raise _fail(name, f"npz entry {entry!r} is not a .npy file")
        why = check_array_name(entry[: -len(_SUFFIX)])
        if why is not None:
            raise _fail(name, f"npz entry {entry!r}: {why}")
        if entry in seen:
            raise _fail(name, f"npz entry {entry!r} appears twice")
        seen.add(entry)
        if info.flag_bits & 0x1:
            raise _fail(name, f"npz entry {entry!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _fail(name, f"npz entry {entry!r} uses unsupported compression method {info.compress_type}")
        declared_total += info.file_size
    # Declared sizes are bounded before anything is decompressed.
    if declared_total > max_total_bytes:
        raise _fail(name, f"npz entries declare {declared_total} bytes, more than the limit of {max_total_bytes}")

    arrays: dict[str, NpyArray] = {}
    used = 0
    for info in infos:
        entry = info.orig_filename
        where = f"{name} (entry {entry!r})"
        budget = max_total_bytes - used
        try:
            with zf.open(info) as f:
                # Never trust the declared size alone: read at most budget + 1 bytes.
                raw = f.read(budget + 1)
        except _ZIP_ERRORS as exc:
            raise _fail(where, f"cannot read npz entry ({_describe(exc)})") from None
        if len(raw) > budget:
            raise _fail(where, f"npz data exceeds the limit of {max_total_bytes} bytes")
        if len(raw) != info.file_size:
            raise _fail(where, f"npz entry has {len(raw)} bytes but declares {info.file_size}")
        used += len(raw)
        arrays[entry[: -len(_SUFFIX)]] = parse_npy(raw, where, max_header=max_header, max_bytes=budget)
    return arrays


def read_npz(
    path: str | os.PathLike[str] | BinaryIO,
    name_for_messages: str,
    *,
    max_arrays: int,
    max_total_bytes: int,
    max_header: int,
) -> dict[str, NpyArray]:
    """Read an .npz file (a path, or a seekable binary file holding it from offset 0) into {name: NpyArray}.

    Bounds: ``max_arrays`` entries; ``max_total_bytes`` for the sum of the entries'
    uncompressed sizes (whole .npy files, headers included), checked against the
    declared sizes before reading and against the bytes actually read; ``max_header``
    per .npy header.  The archive itself may be at most ``max_total_bytes`` plus
    per-entry and per-archive zip overhead.  Every problem raises ModelFormatError
    naming ``name_for_messages`` (and the entry, if any).
    """
    name = name_for_messages
    size_limit = max_total_bytes + max_total_bytes // 1024 + max_arrays * _PER_ENTRY_SLACK + _PER_ARCHIVE_SLACK
    try:
        if isinstance(path, (str, os.PathLike)):
            fobj: BinaryIO = open(path, "rb")  # noqa: SIM115 (closed in the finally below when owned)
            owned = True
        else:
            fobj = path
            owned = False
    except OSError as exc:
        raise _fail(name, f"cannot open npz file ({_describe(exc)})") from None
    try:
        try:
            # zipfile reads the whole central directory before entries can be
            # counted, so bound the archive size first.
            size = fobj.seek(0, io.SEEK_END)
            fobj.seek(0)
            if size > size_limit:
                raise _fail(name, f"npz file is {size} bytes, more than the limit of {size_limit}")
            zf = zipfile.ZipFile(fobj, "r")
        except _ZIP_ERRORS as exc:
            raise _fail(name, f"not a readable npz (zip) file ({_describe(exc)})") from None
        with zf:
            try:
                declared = _declared_entry_count(fobj, size)
            except _ZIP_ERRORS as exc:  # pragma: no cover - zipfile has just read the same bytes
                raise _fail(name, f"not a readable npz (zip) file ({_describe(exc)})") from None
            listed = len(zf.infolist())
            if declared != listed:
                raise _fail(name, f"npz central directory lists {listed} entries but declares {declared}")
            return _read_entries(
                zf, name, max_arrays=max_arrays, max_total_bytes=max_total_bytes, max_header=max_header
            )
    finally:
        if owned:
            fobj.close()


def _write(target: str | os.PathLike[str] | BinaryIO, arrays: Mapping[str, NpyArray]) -> None:
    for key, arr in arrays.items():
        why = check_array_name(key)
        if why is not None:
            raise ValueError(why)
        if not isinstance(arr, NpyArray):
            raise TypeError(f"array {key!r} is a {type(arr).__name__}, not an NpyArray")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            # A fixed date (the zip epoch) keeps the output reproducible.
            info = zipfile.ZipInfo(key + _SUFFIX, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, format_npy(arr))


def write_npz(target: str | os.PathLike[str] | BinaryIO, arrays: Mapping[str, NpyArray]) -> None:
    """Write ``arrays`` as a stored (uncompressed) .npz that numpy.load reads.

    ``target`` is a path (written directly, not atomically) or a writable binary file
    object, so callers can write to a temporary file, fsync and rename.  Raises
    ValueError for an array name that check_array_name refuses.
    """
    _write(target, arrays)


def format_npz(arrays: Mapping[str, NpyArray]) -> bytes:
    """The bytes write_npz would write."""
    buf = io.BytesIO()
    _write(buf, arrays)
    return buf.getvalue()
