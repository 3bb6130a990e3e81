"""Atomic saves: a save killed or interrupted part-way leaves the previous model loadable and unchanged.

The save runs in a subprocess whose file operations are patched to stop it at a named stage (just
before the call that follows that stage), so the kill lands at a known point every time.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import scratchnet
import scratchnet.io.model as model_io
from scratchnet.builders import build_network
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ModelFormatError
from scratchnet.io import load_model
from scratchnet.io.model import ModelWriteError

ROOT = Path(__file__).resolve().parent.parent
SIZES = [784, 256, 10]  # about 1.6 MB of float64 parameters

# argv: path, seed, stage. Each stage ends where write_pair makes its next call: "npz-written" at the
# .json's _write_temp, "json-written" at the .npz's os.replace, "npz-renamed" at the .json's os.replace
# (after the directory fsync). The child pauses there once; the handler of an interrupt may rename again.
SAVER = f"""
import os
import sys
import time
from pathlib import Path
import scratchnet
import scratchnet.io.atomic as atomic
from scratchnet.builders import build_network
from scratchnet.core.architecture import mlp
path, seed, stage = sys.argv[1], int(sys.argv[2]), sys.argv[3]
paused = []

def pause_at(reached):
    if reached == stage and not paused:
        paused.append(stage)
        print(f"scratchnet.save paused at {{stage}}", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)

real_write_temp, real_replace = atomic._write_temp, os.replace

def write_temp(target, write):
    if Path(target).suffix == ".json":
        pause_at("npz-written")
    return real_write_temp(target, write)

def replace(source, destination):
    pause_at({{".npz": "json-written", ".json": "npz-renamed"}}.get(Path(destination).suffix))
    return real_replace(source, destination)

atomic._write_temp = write_temp
os.replace = replace
net = build_network(mlp({SIZES!r}), backend="vectorized", seed=seed)
scratchnet.save(net, path, metadata={{"training": {{"seed": seed}}}})
"""

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and SIGINT are POSIX")


def save_model(path: Path, seed: int) -> dict[str, bytes]:
    net = build_network(mlp(SIZES), backend="vectorized", seed=seed)
    scratchnet.save(net, path, metadata={"training": {"seed": seed}})
    return snapshot(path.parent)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def assert_loads_as(path: Path, seed: int) -> None:
    expected = build_network(mlp(SIZES), backend="vectorized", seed=seed).params()
    loaded = load_model(path, "vectorized")
    assert loaded.metadata["training"]["seed"] == seed
    for name, value in loaded.network.params().items():
        assert value.tobytes() == expected[name].tobytes()


def start_paused_save(path: Path, seed: int, stage: str) -> subprocess.Popen[str]:
    """Start a save of model ``seed`` over ``path`` and return once it reports being paused at ``stage``."""
    process = subprocess.Popen(
        [sys.executable, "-c", SAVER, str(path), str(seed), stage], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stderr, selectors.EVENT_READ)
        if not selector.select(timeout=60):
            process.kill()
            pytest.fail(f"the save never reached {stage}")
        line = process.stderr.readline()
    if line.strip() != f"scratchnet.save paused at {stage}":
        process.kill()
        pytest.fail(f"the save did not pause at {stage}: {line!r} {process.stderr.read()}")
    return process


@pytest.mark.parametrize("stage", ["npz-written", "json-written"])
def test_a_save_killed_before_the_renames_leaves_the_previous_model(tmp_path: Path, stage: str) -> None:
    before = save_model(tmp_path / "m", seed=1)
    process = start_paused_save(tmp_path / "m", seed=2, stage=stage)
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the new bytes were on disk
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    after = snapshot(tmp_path)
    assert {name: after[name] for name in before} == before
    assert all(name.startswith(".m.") and name.endswith(".tmp") for name in set(after) - set(before))
    assert_loads_as(tmp_path / "m", seed=1)
    # The next save succeeds beside the stale temporary files.
    save_model(tmp_path / "m", seed=3)
    assert_loads_as(tmp_path / "m", seed=3)


def test_a_save_killed_between_the_renames_is_refused_not_mixed(tmp_path: Path) -> None:
    """The one window rename cannot close: the new .npz beside the old .json. The old .json's checksums
    (the commit point) refuse the pair rather than load a mixture."""
    save_model(tmp_path / "m", seed=1)
    process = start_paused_save(tmp_path / "m", seed=2, stage="npz-renamed")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with pytest.raises(ModelFormatError, match=r"m\.npz: checksum mismatch"):
        load_model(tmp_path / "m", "loops")


def test_ctrl_c_before_the_renames_keeps_the_previous_model_and_cleans_up(tmp_path: Path) -> None:
    before = save_model(tmp_path / "m", seed=1)
    process = start_paused_save(tmp_path / "m", seed=2, stage="json-written")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode != 0 and "KeyboardInterrupt" in err
    assert snapshot(tmp_path) == before  # no temporary files left
    assert_loads_as(tmp_path / "m", seed=1)


def test_ctrl_c_between_the_renames_completes_the_save(tmp_path: Path) -> None:
    save_model(tmp_path / "m", seed=1)
    process = start_paused_save(tmp_path / "m", seed=2, stage="npz-renamed")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode != 0 and "KeyboardInterrupt" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.npz"]
    assert_loads_as(tmp_path / "m", seed=2)


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_an_error_while_writing_leaves_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    before = save_model(tmp_path / "m", seed=1)
    original = model_io.write_npz  # type: ignore[attr-defined]  # the name model.py calls, patched there

    def fail_half_way(target: Any, arrays: Any) -> None:
        original(target, arrays)
        target.write(b"half of something more")
        raise error("simulated")

    monkeypatch.setattr(model_io, "write_npz", fail_half_way)
    net = build_network(mlp(SIZES), backend="vectorized", seed=2)
    # An OS error is a ModelWriteError (a ScratchnetError) naming the model, not the temporary file.
    with pytest.raises(ModelWriteError if error is OSError else error) as caught:
        scratchnet.save(net, tmp_path / "m")
    if error is OSError:
        assert str(caught.value) == f"cannot save {tmp_path / 'm.json'}: simulated"
    assert snapshot(tmp_path) == before
    assert_loads_as(tmp_path / "m", seed=1)


def test_a_failing_json_write_after_the_npz_is_written_keeps_the_previous_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = save_model(tmp_path / "m", seed=1)
    real_fsync = os.fsync
    calls = []

    def fsync_fails_the_second_time(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the .npz temp file synced, then the .json one fails (say, disk full)
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_fails_the_second_time)
    with pytest.raises(ModelWriteError, match="No space"):
        scratchnet.save(build_network(mlp(SIZES), backend="vectorized", seed=2), tmp_path / "m")
    monkeypatch.undo()
    assert snapshot(tmp_path) == before
    assert_loads_as(tmp_path / "m", seed=1)


def test_saved_files_get_ordinary_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        save_model(tmp_path / "m", seed=1)
    finally:
        os.umask(umask)
    assert {oct((tmp_path / name).stat().st_mode & 0o777) for name in ("m.json", "m.npz")} == {oct(0o644)}
    os.chmod(tmp_path / "m.json", 0o600)
    save_model(tmp_path / "m", seed=2)
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
