"""Paths a model file records: hints for your own runs, read only while they still hold what was recorded.

A model file may come from anyone, so a data path it records (``metadata.source.path``, ``.test``;
later a remembered data directory or a text file) is never an instruction to read that path. When a
model is trained on your own data, :func:`fingerprint` records what each data path held:

* a file: ``{"size": BYTES, "sha256": HEX}``;
* a folder of class folders: ``{"pictures": N, "entries": E, "size": BYTES, "sha256": HEX}``, the
  SHA-256 of a manifest, one line per picture sorted by relative path (its path, size and SHA-256),
  ``E`` the names (files and folders) the walk listed.

:func:`check_recorded` is the one rule for reading a recorded path: it is read only if it is still a
regular file (or a folder) whose fingerprint matches. A folder's walk stops at the number of names it
listed when recorded (and at :data:`MAX_FOLDER_ENTRIES`), so a recorded ``/`` is not walked. Anything
else, a model without a fingerprint (saved before they were recorded) included, is one
:class:`~scratchnet.core.errors.DatasetError` saying which path the model names and asking for
``--data``. MNIST and Fashion-MNIST in a recorded data directory are read by :func:`recorded_dataset`
only through their fixed IDX file names, checked against their published SHA-256 sums, and never
downloaded into it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from scratchnet.core.errors import DatasetError

if TYPE_CHECKING:  # datasets and folders import NumPy: a recorded text file is checked without it (sample --new)
    from scratchnet.data.datasets import Dataset

__all__ = [
    "MAX_FOLDER_ENTRIES",
    "check_recorded",
    "escaped",
    "excerpt",
    "fingerprint",
    "recorded_dataset",
    "shown_path",
]

#: A recorded folder is walked again only up to this many names (files and folders): a model whose
#: folder had more must be given its test data with ``--data``.
MAX_FOLDER_ENTRIES = 1_000_000
_BLOCK = 1 << 20
_PATH_CHARS = 160  # a recorded path is shown escaped, cut to this many characters


def excerpt(text: str, limit: int = 40) -> str:
    """``text`` as a short escaped excerpt for a message: ``repr`` of its first ``limit`` characters
    (control characters, quotes and line breaks escaped), with ``...`` when it was cut."""
    shown = repr(text[:limit])
    return shown + "..." if len(text) > limit else shown


def escaped(text: str, limit: int = 40) -> str:
    """``text`` escaped as :func:`excerpt` does, without the quotes: for names in a list."""
    shown = repr(text[:limit])[1:-1]
    return shown + "..." if len(text) > limit else shown


def shown_path(path: object) -> str:
    """A path read from a model file, as a message shows it: escaped and cut (see :func:`excerpt`)."""
    return excerpt(os.fspath(path) if isinstance(path, (str, os.PathLike)) else str(path), _PATH_CHARS)


def _open_regular(path: str) -> int:
    """A read-only descriptor of ``path`` if it is a regular file (never blocking on a FIFO or a
    device: it is opened non-blocking and checked before it is read)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise DatasetError(f"{shown_path(path)}: cannot read it ({error.strerror or error})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise DatasetError(f"{shown_path(path)}: not a regular file")
    return fd


def _file_digest(path: str, limit: int | None = None) -> tuple[int, str]:
    """The size and SHA-256 of the regular file ``path``; reading stops past ``limit`` bytes."""
    fd = _open_regular(path)
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "rb", buffering=0) as handle:
            while block := handle.read(_BLOCK):
                size += len(block)
                if limit is not None and size > limit:
                    break
                digest.update(block)
    except OSError as error:
        raise DatasetError(f"{shown_path(path)}: cannot read it ({error.strerror or error})") from None
    return size, digest.hexdigest()


def _pictures(folder: str, max_entries: int, max_pictures: int) -> tuple[list[str], int] | None:
    """The relative paths of the pictures a folder of class folders holds, as
    :func:`~scratchnet.data.folders.class_folders` finds them (hidden names left out, sub-folders
    walked, symbolic links to folders below a class folder not followed), and the number of names
    listed; None once more than ``max_entries`` names or ``max_pictures`` pictures are listed."""
    from scratchnet.data.folders import IMAGE_SUFFIXES

    found: list[str] = []
    entries = 0
    pending = [""]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(os.path.join(folder, relative) if relative else folder) as listing:
                for entry in listing:
                    entries += 1
                    if entries > max_entries:
                        return None
                    if entry.name.startswith("."):
                        continue
                    name = f"{relative}/{entry.name}" if relative else entry.name
                    if entry.is_dir():  # a class folder may be a link; a link to a folder below one is not walked
                        if not relative or not entry.is_symlink():
                            pending.append(name)
                    elif relative and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES:
                        found.append(name)
                        if len(found) > max_pictures:
                            return None
        except OSError as error:
            raise DatasetError(f"{shown_path(folder)}: cannot list it ({error.strerror or error})") from None
    return sorted(found), entries


def _folder_fingerprint(folder: str, max_entries: int, within: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The fingerprint of a folder of class folders, or None once it is known not to match ``within``
    (more names or pictures than recorded, or a larger size)."""
    most = max_entries if within is None else int(within.get("pictures", 0))
    listed = _pictures(folder, max_entries, most)
    if listed is None:
        return None
    names, entries = listed
    if within is not None and (len(names) != within.get("pictures") or entries != within.get("entries")):
        return None
    manifest = hashlib.sha256()
    total = 0
    for name in names:
        room = None if within is None else int(within.get("size", 0)) - total
        size, digest = _file_digest(os.path.join(folder, *name.split("/")), room)
        total += size
        if room is not None and size > room:
            return None
        manifest.update(name.encode("utf-8", "surrogateescape") + b"\0" + str(size).encode() + b"\0")
        manifest.update(digest.encode() + b"\n")
    return {"pictures": len(names), "entries": entries, "size": total, "sha256": manifest.hexdigest()}


def fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``path`` holds, to record beside it: a regular file's size and SHA-256, or a folder's
    pictures, names listed, total size and manifest SHA-256 (see the module's text)."""
    name = os.fspath(path)
    if os.path.isdir(name):
        found = _folder_fingerprint(name, MAX_FOLDER_ENTRIES * 1000, None)
        assert found is not None
        return found
    size, digest = _file_digest(name)
    return {"size": size, "sha256": digest}


def _matches(path: str, record: Mapping[str, Any]) -> str | None:
    """Why ``path`` does not hold what ``record`` says it held, or None when it does."""
    try:
        info = os.stat(path)
    except OSError:
        return "is not there any more"
    if "pictures" in record:
        if not stat.S_ISDIR(info.st_mode):
            return "is not a folder any more"
        entries = record.get("entries")
        if not isinstance(entries, int) or entries > MAX_FOLDER_ENTRIES:
            return f"it records as a folder of more than {MAX_FOLDER_ENTRIES:,} names (too many to walk again)"
        found = _folder_fingerprint(path, entries, record)
        return None if found is not None and found == dict(record) else "has changed since the model was trained on it"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_size != record.get("size"):
        return "has changed since the model was trained on it"
    size, digest = _file_digest(path, info.st_size)
    if size != record.get("size") or digest != record.get("sha256"):
        return "has changed since the model was trained on it"
    return None


def check_recorded(path: object, record: object, what: str) -> str:
    """``path``, a path a model file records as ``what`` (``its test data``), if it may be read: it
    is still a regular file (a folder) whose fingerprint is ``record``. Otherwise a DatasetError
    that names the path (escaped) and asks for ``--data``."""
    if not isinstance(path, str) or not path:
        raise DatasetError(f"the model records no path for {what}; give the test data with --data")
    ask = "give the test data with --data"
    if not isinstance(record, Mapping) or not _well_formed(record):
        raise DatasetError(
            f"the model names {shown_path(path)} as {what}, but records no size and SHA-256 for it (a model saved "
            f"before they were recorded, or not by scratchnet), so it is not read; {ask}"
        )
    why = _matches(path, record)
    if why is not None:
        raise DatasetError(f"the model names {shown_path(path)} as {what}, which {why}; {ask}")
    return path


def _well_formed(record: Mapping[str, Any]) -> bool:
    digest = record.get("sha256")
    sizes = [record.get(key) for key in ("size", "pictures", "entries") if key == "size" or "pictures" in record]
    return (
        isinstance(digest, str)
        and len(digest) == 64
        and all(c in "0123456789abcdef" for c in digest)
        and all(type(n) is int and n >= 0 for n in sizes)
    )


def recorded_dataset(name: str, data_dir: str | os.PathLike[str], splits: Sequence[str] = ("test",)) -> Dataset:
    """MNIST or Fashion-MNIST (``name``) from a data directory a model or a setting records: read only
    through the dataset's fixed IDX file names (in ``DIR/NAME/`` or ``DIR/``), each checked against
    its published SHA-256 sum before its contents are used, and never downloaded into that directory;
    a DatasetError asking for ``--data-dir`` otherwise."""
    from scratchnet.data.datasets import load_dataset

    try:
        return load_dataset(name, data_dir, download=False, progress=False, splits=splits)
    except DatasetError as error:
        raise DatasetError(
            f"the recorded data directory {shown_path(data_dir)} does not hold {name}'s files as published "
            f"({str(error)[:200]}); give the data directory with --data-dir"
        ) from None
