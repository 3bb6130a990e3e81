"""Issue 15, items 5, 6 and 15: model files as a user handles them.

Stale temporary files of a killed save are removed by the next save of that model (those of a save
still running are kept); a pair renamed together loads; a directory, a long name, a missing folder,
an unwritable place and suffixes in any case all behave.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import ROOT, run_scratchnet

import scratchnet
from scratchnet.builders import build_network
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ModelFormatError, ScratchnetError
from scratchnet.io.model import ModelWriteError, load_model, model_paths, read_model

SIZES = [6, 5, 3]


def net(seed: int = 0) -> Any:
    return build_network(mlp(SIZES), backend="vectorized", dtype="float64", seed=seed)


def built(seed: int) -> dict[str, np.ndarray]:
    """The parameters of ``net(seed)``: what a saved model of it loads as."""
    return {k: np.asarray(v) for k, v in net(seed).params().items()}


def params(path: Path) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in load_model(path).network.params().items()}


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# ---- item 5: temporary files of a killed save ----

# Writes both temporary files of a save of argv[1] as a save does, then (argv[2]) dies at once
# without cleaning up, as a SIGKILL leaves them, or sleeps, as a save still running.
WRITE_TEMPS = """
import os, signal, sys, time
from pathlib import Path
import scratchnet.io.atomic as atomic
import scratchnet.io.model as model_io
json_path, npz_path = model_io.model_paths(sys.argv[1])
for target in (npz_path, json_path):
    atomic._write_temp(target, lambda f: f.write(b"x" * 1000))
print("written", flush=True)
if sys.argv[2] == "die":
    os.kill(os.getpid(), signal.SIGKILL)
time.sleep(600)
"""


def write_temps(path: Path, then: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", WRITE_TEMPS, str(path), then], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    if then == "sleep":
        assert child.stdout.readline().strip() == "written"
    else:
        child.wait(timeout=60)
    return child


def temps(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.endswith(".tmp")}


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and process ids as on POSIX")
def test_a_save_removes_the_temporary_files_a_killed_save_left(tmp_path: Path) -> None:
    scratchnet.save(net(1), tmp_path / "m")
    write_temps(tmp_path / "m", "die")
    killed = temps(tmp_path)
    assert len(killed) == 2 and all(name.startswith((".m.json.", ".m.npz.")) for name in killed)
    running = write_temps(tmp_path / "m", "sleep")
    try:
        alive = temps(tmp_path) - killed
        old_style, recent_old_style = tmp_path / ".m.json.abcd_123.tmp", tmp_path / ".m.npz.zz9x8y7w.tmp"
        for legacy in (old_style, recent_old_style):
            legacy.write_bytes(b"left by an older scratchnet")
        two_hours_ago = time.time() - 7200
        os.utime(old_style, (two_hours_ago, two_hours_ago))
        other = tmp_path / ".m.json.backup.json.1-abc.tmp"  # another model's name that begins alike
        other.write_bytes(b"not ours")

        scratchnet.save(net(2), tmp_path / "m")
        left = temps(tmp_path)
        assert left == alive | {recent_old_style.name, other.name}
        assert not (killed & left) and old_style.name not in left
        assert same(params(tmp_path / "m"), built(2))
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()


# ---- item 6: a renamed pair ----


@pytest.mark.parametrize("how", ["copy", "move"])
def test_a_pair_renamed_together_loads(tmp_path: Path, how: str) -> None:
    scratchnet.save(net(3), tmp_path / "m")
    want = params(tmp_path / "m")
    for suffix in (".json", ".npz"):
        (shutil.copy if how == "copy" else shutil.move)(tmp_path / f"m{suffix}", tmp_path / f"renamed{suffix}")
    assert same(params(tmp_path / "renamed.json"), want)
    files = read_model(tmp_path / "renamed")
    assert files.npz_path == tmp_path / "renamed.npz"
    done = run_scratchnet("inspect", str(tmp_path / "renamed.json"))
    assert done.returncode == 0 and done.stdout.startswith(f"model: {tmp_path / 'renamed.json'} + renamed.npz")


def test_a_renamed_document_beside_other_arrays_is_refused_by_the_checksums(tmp_path: Path) -> None:
    scratchnet.save(net(3), tmp_path / "m")
    scratchnet.save(net(4), tmp_path / "other")
    shutil.copy(tmp_path / "m.json", tmp_path / "a.json")
    shutil.copy(tmp_path / "other.npz", tmp_path / "a.npz")  # arrays of another model under the new name
    with pytest.raises(ModelFormatError, match=r"a\.npz: checksum mismatch"):
        load_model(tmp_path / "a.json")


def test_a_renamed_document_alone_still_finds_the_arrays_it_names(tmp_path: Path) -> None:
    scratchnet.save(net(3), tmp_path / "m")
    shutil.copy(tmp_path / "m.json", tmp_path / "a.json")  # only the document: its own arrays are m.npz
    assert same(params(tmp_path / "a.json"), params(tmp_path / "m.json"))
    (tmp_path / "m.npz").unlink()
    with pytest.raises(ModelFormatError) as caught:
        load_model(tmp_path / "a.json")
    assert str(caught.value) == (
        f"{tmp_path / 'a.npz'}: the arrays file beside a.json is missing (nor m.npz, the name it records)"
    )


# ---- item 15: paths ----


def test_a_directory_is_not_a_model_and_the_message_lists_the_models_in_it(tmp_path: Path) -> None:
    scratchnet.save(net(), tmp_path / "models" / "a")
    with pytest.raises(ModelFormatError) as caught:
        read_model(tmp_path / "models")
    assert str(caught.value) == f"{tmp_path / 'models'}: is a directory, not a model (models in it: a.json)"
    done = run_scratchnet("evaluate", str(tmp_path / "models"))
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and "is a directory, not a model" in done.stderr
    with pytest.raises(ModelWriteError, match="it is a directory"):
        scratchnet.save(net(), tmp_path / "models")


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    scratchnet.save(net(5), tmp_path / "new" / "deeper" / "m")
    assert same(params(tmp_path / "new" / "deeper" / "m"), built(5))


def test_a_save_that_fails_removes_the_folders_it_made_and_keeps_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scratchnet.io.model as model_module

    def disk_full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model_module, "write_pair", disk_full)
    (tmp_path / "kept").mkdir()
    with pytest.raises(ModelWriteError, match="No space left on device"):
        scratchnet.save(net(), tmp_path / "kept" / "new" / "deeper" / "m")
    assert not (tmp_path / "kept" / "new").exists() and (tmp_path / "kept").is_dir()
    (tmp_path / "kept" / "new").mkdir()
    (tmp_path / "kept" / "new" / "other.txt").write_text("someone else's")
    with pytest.raises(ModelWriteError):
        scratchnet.save(net(), tmp_path / "kept" / "new" / "deeper" / "m")
    assert not (tmp_path / "kept" / "new" / "deeper").exists()  # made by the save: removed
    assert (tmp_path / "kept" / "new" / "other.txt").read_text() == "someone else's"


def test_save_where_nothing_can_be_written_is_a_scratchnet_error_naming_the_model(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ModelWriteError) as caught:
        scratchnet.save(net(), tmp_path / "a-file" / "m")
    assert (
        str(caught.value)
        == f"cannot save {tmp_path / 'a-file' / 'm.json'}: {tmp_path / 'a-file'} is a file, not a folder"
    )
    if Path("/proc/self").is_dir():  # Linux: a folder that takes no new files
        with pytest.raises(ScratchnetError) as refused:
            scratchnet.save(net(), "/proc/x")
        assert str(refused.value).startswith("cannot save /proc/x.json: ") and ".tmp" not in str(refused.value)


def test_a_name_as_long_as_the_file_system_allows_saves(tmp_path: Path) -> None:
    name = "m" * (255 - len(".json"))  # NAME.json is exactly 255 bytes; its temporary name would be longer
    scratchnet.save(net(6), tmp_path / name)
    assert same(params(tmp_path / f"{name}.json"), built(6))
    assert temps(tmp_path) == set()


@pytest.mark.parametrize(
    "given, name", [("x.npz", "x"), ("x.NPZ", "x"), ("x.Json", "x"), ("x.npz.json", "x"), ("a.b", "a.b"), ("x", "x")]
)
def test_model_paths_strip_the_pair_suffixes_in_any_case(given: str, name: str) -> None:
    assert model_paths(given) == (Path(f"{name}.json"), Path(f"{name}.npz"))


def test_inspect_on_a_file_that_is_no_model_names_that_file(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# not a model\n")
    done = run_scratchnet("inspect", str(readme))
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and f"{readme}: is not a scratchnet model" in lines[0], done.stderr
    assert "README.md.json" not in done.stderr
