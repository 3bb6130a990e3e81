"""Writing a file so that a crash, a kill or a full disk leaves the old file or the new one, never a
mixture, and never writing through what a neighbour planted (spec/model-format.md section 4;
docs/errors.md, "Files scratchnet writes").

A file is written to a temporary file beside it (made with O_EXCL, synced), then renamed over it; a
model pair's .npz is renamed first and its .json, which holds the checksums, last. Only a missing
path or a regular file is ever replaced. Temporary files that a killed writer left are recognised by
the process id in their name and removed by the next write of the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from scratchnet.core.errors import ScratchnetError

__all__ = [
    "ModelWriteError",
    "check_replaceable",
    "kind_of",
    "make_folder",
    "remove_empty_folders",
    "remove_stale_temporary_files",
    "replace_file",
    "write_pair",
]

_NEW_FILE_MODE = 0o644  # where the umask cannot be read
# A temporary file is ".<target name>.<pid>-<random>.tmp" (spec/model-format.md section 4): the
# process id tells a later save whether its writer still runs. The name is cut (and a hash of it
# added) where the whole would pass the file system's limit on a name.
_TEMP_SUFFIX = ".tmp"
_TEMP_ROOM = 32  # the pid (up to 10 digits), "-", mkstemp's random part (8), ".tmp", and spare
_TEMP_TAIL = re.compile(r"(?:(\d+)-)?[a-z0-9_]+")
_LEGACY_TEMP_AGE = 3600.0  # seconds: a temporary file without a pid (older scratchnet) is stale after an hour


class ModelWriteError(ScratchnetError):
    """A model pair that cannot be written where it was asked for: a folder that cannot be made or
    written, a path that is a directory, a name too long, a full disk. Nothing is left half-written."""


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (outermost first, as :func:`make_folder` returns them) innermost first,
    each only if it is empty; one that cannot be removed, and the ones around it, stay."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return


def make_folder(path: Path, verb: str = "write") -> list[Path]:
    """Create the missing folders of the file ``path`` and return them, outermost first;
    ModelWriteError ("cannot save PATH: ...") when that fails, naming the part of the path that is a
    file rather than a folder, if one is."""
    missing = [folder for folder in reversed(path.parents) if not folder.exists()]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
        reason = f"{blocking} is a file, not a folder" if blocking is not None else os_reason(error)
        raise ModelWriteError(f"cannot {verb} {path}: {reason}") from None
    return missing


_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def kind_of(mode: int) -> str:
    """What a file of ``st_mode`` is, in words: ``a symbolic link``, ``a named pipe (FIFO)``, ..."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def check_replaceable(target: str | os.PathLike[str]) -> None:
    """ModelWriteError naming ``target`` when it exists and is not a regular file.

    Every file scratchnet writes is replaced by renaming a new file over it: that would turn a device
    or a FIFO into a regular file, and a symbolic link (which a neighbour sharing the folder may have
    planted) into a file of its own. So only a missing path or a regular file is written; anything
    else is refused before any work is done (docs/errors.md, "Files scratchnet writes")."""
    try:
        mode = os.lstat(target).st_mode
    except OSError:  # missing (it will be created), or unreadable: the write itself then says why
        return
    if not stat.S_ISREG(mode):
        raise ModelWriteError(
            f"cannot write {os.fspath(target)}: it is {kind_of(mode)}, not a regular file; scratchnet replaces "
            "only regular files: remove it or choose another path"
        )


def os_reason(error: OSError) -> str:
    """Why an OS call failed, without the temporary file name it may carry."""
    return error.strerror or str(error) or type(error).__name__


def write_pair(npz_path: Path, json_path: Path, write_npz_to: Callable[[BinaryIO], None], json_bytes: bytes) -> None:
    """Replace both files atomically, .npz first and .json last: the .json (which holds the checksums)
    is the commit point.

    Until the .npz rename the old pair is untouched. A crash (not Ctrl-C, see below) between the two
    renames leaves the new .npz beside the old .json; the checksums in the old .json then fail and
    the reader refuses the pair instead of mixing two models.
    """
    directory = json_path.parent
    for target in (npz_path, json_path):
        remove_stale_temporary_files(target)
    temps: dict[str, Path] = {}
    try:
        temps["npz"] = _write_temp(npz_path, write_npz_to)
        temps["json"] = _write_temp(json_path, lambda f: f.write(json_bytes))
        os.replace(temps["npz"], npz_path)
        _fsync_directory(directory)  # the .npz rename is durable before the .json can be
        os.replace(temps["json"], json_path)
        _fsync_directory(directory)
    except BaseException as error:
        # Ctrl-C after the .npz rename: finish the commit (the .json is written and synced) rather
        # than leave a mismatched pair. Decided by the files, not by a flag the interrupt could skip.
        if (
            isinstance(error, KeyboardInterrupt)
            and "json" in temps
            and not temps["npz"].exists()
            and temps["json"].exists()
        ):
            try:
                os.replace(temps["json"], json_path)
                _fsync_directory(directory)
            except OSError:
                pass
        for temp in temps.values():
            with contextlib.suppress(OSError):
                temp.unlink()
        raise


def replace_file(target: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Replace ``target`` by what ``write`` writes, in one rename of a synced temporary file beside it
    (the old file, or none, stays until then; a replaced file keeps its permissions); OSError as the
    system gives it. Temporary files that killed writers left beside ``target`` are removed first."""
    remove_stale_temporary_files(target)
    temp = _write_temp(target, write)
    try:
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_directory(target.parent)


def _write_temp(target: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a temporary file beside ``target`` (same file system, so the rename is atomic), synced.

    ``target`` must be missing or a regular file (:func:`check_replaceable`). The temporary file is
    made with O_EXCL (mkstemp), so it is never a link someone planted, and its mode is set through
    its descriptor, never through the name another process could have swapped for a link."""
    check_replaceable(target)
    try:
        mode = stat.S_IMODE(os.lstat(target).st_mode)  # replacing a file keeps its permissions
    except OSError:
        mode = _new_file_mode()  # mkstemp makes files 0600; give what open() would have given
    fd, name = tempfile.mkstemp(prefix=f"{_temp_prefix(target)}{os.getpid()}-", suffix=_TEMP_SUFFIX, dir=target.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if hasattr(os, "fchmod"):
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        if not hasattr(os, "fchmod"):  # pragma: no cover - Windows, where modes are only read-only or not
            os.chmod(temp, mode)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _temp_prefix(target: Path) -> str:
    """``.NAME.json.`` for ``NAME.json``; a name so long that the temporary file's would pass the file
    system's limit is cut, and 8 hex digits of its sha256 keep it apart from other cut names."""
    prefix = f".{target.name}."
    limit = _name_max(target.parent)
    if len(prefix.encode()) + _TEMP_ROOM <= limit:
        return prefix
    digest = hashlib.sha256(target.name.encode()).hexdigest()[:8]
    keep = target.name.encode()[: max(limit - _TEMP_ROOM - len(digest) - 3, 1)].decode(errors="ignore")
    return f".{keep}~{digest}."


def _name_max(directory: Path) -> int:
    """The longest file name (in bytes) the file system of ``directory`` allows; 255 where unknown."""
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # Windows has no pathconf; a missing folder fails too
        return 255


def remove_stale_temporary_files(target: Path) -> list[Path]:
    """Delete the temporary files of ``target`` that a killed save left behind, and return them.

    A temporary file is stale when the process named in it no longer runs (one without a process id,
    from an older scratchnet, when it is more than an hour old). Those of a save still running in
    another process are kept, and so are this process's own."""
    prefix = _temp_prefix(target)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_TEMP_SUFFIX)):
            continue
        tail = _TEMP_TAIL.fullmatch(name[len(prefix) : -len(_TEMP_SUFFIX)])
        if tail is None:  # another file's name that begins the same way
            continue
        try:
            if tail.group(1) is not None:
                pid = int(tail.group(1))
                stale = pid != os.getpid() and not _process_runs(pid)
            else:
                stale = time.time() - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_TEMP_AGE
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _process_runs(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (True where that cannot be told)."""
    if os.name != "posix":
        return True  # os.kill(pid, 0) would end the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # it exists, under another user (or the number is no pid: keep the file)
    return True


def _new_file_mode() -> int:
    """0o666 less the umask, as for a file made by open(); the umask is read from /proc where possible,
    because os.umask() can only read it by changing it, which races with other threads."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _NEW_FILE_MODE


def _fsync_directory(directory: Path) -> None:
    """Make renames in ``directory`` durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename itself is still atomic
    finally:
        os.close(fd)
