"""Issue 23, items 5, 6, 7, 10, 11 and 21: hostile data files (CSV, .npz, picture folders, single
pictures) built here, each refused in one line, with memory bounded (checked under RLIMIT_AS in a
child process, or by the refusal coming before the allocation)."""

from __future__ import annotations

import struct
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_python, run_scratchnet
from test_evaluate import small_model  # noqa: F401  (the module-scoped fixture)

from scratchnet.core.errors import DatasetError
from scratchnet.data import folders
from scratchnet.data.arrays import MAX_NPZ_BYTES
from scratchnet.data.folders import MAX_PICTURE_PIXELS, PixelBudget, read_pictures
from scratchnet.data.tables import MAX_COLUMNS, MAX_LINE_CHARS, read_csv

resource = pytest.importorskip("resource")

LIMIT = 768 << 20  # address space of a child that reads a hostile file: imports (~370 MB) and some room

CHILD = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
sys.argv = ["scratchnet", *sys.argv[1:]]
runpy.run_module("scratchnet", run_name="__main__", alter_sys=True)
"""


def limited(*args: str) -> Any:
    """``scratchnet args...`` in a child whose address space is at most LIMIT bytes."""
    return run_python("-c", CHILD.format(limit=LIMIT), *args, timeout=300)


def one_line(result: Any, *expected: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    error = str(result.stderr)
    assert error.count("\n") == 1 and "Traceback" not in error and len(error) < 600, error[-2000:]
    for text in expected:
        assert text in error, error
    return error


def train(data: Path, *extra: str) -> list[str]:
    return ["train", "--data", str(data), "--epochs", "1", "--no-check", "--out", str(data.parent / "m.json"), *extra]


# ---- CSV (items 5, 10, 21) ----


def test_a_header_of_a_million_columns_is_refused_before_it_is_split(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    with open(wide, "w") as handle:
        handle.write(",".join(f"c{k}" for k in range(10**6)) + "\n")
        handle.write(",".join(["1"] * 10**6) + "\n")
        handle.write(",".join(["2"] * 10**6) + "\n")
    one_line(run_scratchnet(*train(wide), timeout=120), "wide.csv line 1: 1,000,000 columns, more than the 100,000")


def test_a_header_of_the_most_columns_is_read_and_a_late_duplicate_found(tmp_path: Path) -> None:
    names = [f"c{k}" for k in range(MAX_COLUMNS - 1)]
    wide = tmp_path / "wide.csv"
    wide.write_text(",".join([*names, "label"]) + "\n" + ",".join(["3"] * (MAX_COLUMNS - 1)) + ",x\n")
    table = read_csv(wide)
    assert table.values.shape == (1, MAX_COLUMNS - 1) and table.labels == ["x"]
    wide.write_text(",".join([*names, "c7"]) + "\n" + ",".join(["3"] * MAX_COLUMNS) + "\n")
    with pytest.raises(DatasetError, match="the header names the column 'c7' twice"):
        read_csv(wide, label_column="0")


def test_a_cell_over_the_csv_field_limit_is_one_line_naming_the_row(tmp_path: Path) -> None:
    data = tmp_path / "cell.csv"
    data.write_text('a,label\n1,x\n2,"' + "y" * 200_000 + '"\n3,z\n')
    error = one_line(run_scratchnet(*train(data)), "cell.csv line 3: a cell of more than 131,072 characters")
    assert "yyyy" not in error


def test_a_150_mb_line_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    data = tmp_path / "line.csv"
    with open(data, "w") as handle:
        handle.write("a,label\n1,x\n2,")
        block = "7," * (1 << 19)  # 75 million cells on one line: split whole, gigabytes
        for _ in range(150):
            handle.write(block)
        handle.write("y\n")
    one_line(limited(*train(data)), f"line.csv line 3: longer than {MAX_LINE_CHARS:,} characters")


def test_a_label_with_a_quoted_line_break_is_refused_saying_why(tmp_path: Path) -> None:
    data = tmp_path / "quoted.csv"
    data.write_text('a,b,label\n1,2,cat\n3,4,"big\ncat"\n5,6,dog\n')
    one_line(
        run_scratchnet(*train(data)),
        "quoted.csv line 3: a quoted cell goes on past the end of the line (a line break inside quotes",
        "scratchnet reads one row per line",
    )
    # quotes that close on their line are read as before, "" for a quote and commas inside
    data.write_text('a,b,label\n1,2,"a, ""b"""\n3,4,c"d\n"5",6,"e"\n')
    assert read_csv(data).labels == ['a, "b"', 'c"d', "e"]


# ---- .npz (item 6) ----


def zip_with(entry: str, data: bytes, *, declared: int, crc: int, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A one-entry zip archive holding ``data`` (already compressed by ``method``), whose headers
    declare ``declared`` bytes inflated and the CRC-32 ``crc``: a zip bomb may say anything."""
    name = entry.encode()
    local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), declared, len(name), 0)
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), declared, len(name), 0, 0, 0, 0, 0, 0
    )
    body = local + name + data
    directory = central + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(directory), len(body), 0)
    return body + directory + end


def zeros_deflated(megabytes: int) -> bytes:
    """A raw deflate stream of ``megabytes`` MiB of zero bytes, a few kB long: one fully flushed
    block of a MiB of zeros, repeated (each starts afresh), then the end."""
    pack = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = pack.compress(bytes(1 << 20)) + pack.flush(zlib.Z_FULL_FLUSH)
    return block * megabytes + pack.flush()


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def small_y() -> bytes:
    labels = np.arange(4) % 2
    header = npy_header((4,), "<i8")
    return header + labels.astype("<i8").tobytes()


def with_y(bomb: bytes, tmp_path: Path, name: str) -> Path:
    """The archive ``bomb`` (one entry, x.npy) with a small, honest y.npy added."""
    path = tmp_path / name
    path.write_bytes(bomb)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("y.npy", small_y())
    return path


def test_an_npz_whose_arrays_declare_more_than_2_gib_is_refused_before_inflating(tmp_path: Path) -> None:
    # 3.7 GiB of zeros in a few kB, declared as such: refused by the declared size
    stream = zeros_deflated(3800)
    declared = 3800 << 20
    bomb = with_y(zip_with("x.npy", stream, declared=declared, crc=0), tmp_path, "bomb.npz")
    assert bomb.stat().st_size < 8 << 20
    one_line(
        limited(*train(bomb)),
        f"its arrays inflate to {declared + len(small_y()):,} bytes, more than the {MAX_NPZ_BYTES:,}",
    )


def test_an_npz_header_declaring_a_huge_shape_is_refused_before_allocating(tmp_path: Path) -> None:
    lying = tmp_path / "lying.npz"
    with zipfile.ZipFile(lying, "w") as archive:
        archive.writestr("x.npy", npy_header((10**9, 784)) + bytes(64))
        archive.writestr("y.npy", small_y())
    one_line(limited(*train(lying)), "header declares shape (1000000000, 784) of <f8 (6,272,000,000,000 bytes)")


def test_an_npz_entry_that_inflates_past_its_declared_size_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    # a header of 1,000 numbers declared (8 kB), and 3 GiB of zeros behind it, with the CRC of all of it
    header = npy_header((1000,))
    pack = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = pack.compress(header) + pack.flush(zlib.Z_FULL_FLUSH) + zeros_deflated(3 << 10)
    crc = zlib.crc32(header)
    for _ in range(3 << 10):
        crc = zlib.crc32(bytes(1 << 20), crc)
    bomb = with_y(zip_with("x.npy", stream, declared=len(header) + 8000, crc=crc), tmp_path, "lies.npz")
    one_line(limited(*train(bomb)), "lies.npz: not a readable .npz file", "CRC")


# ---- pictures (items 7 and 11) ----

PIL = pytest.importorskip("PIL.Image")


def big_png(path: Path, side: int) -> Path:
    PIL.new("L", (side, side), 0).save(path)  # compresses to about a thousandth
    return path


def test_a_folder_of_huge_pictures_is_refused_before_decoding(tmp_path: Path) -> None:
    first = big_png(tmp_path / "9000.png", 9000)
    for label in ("a", "b"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for k in range(12):
            (tmp_path / "photos" / label / f"{k}.png").hardlink_to(first)
    one_line(limited(*train(tmp_path / "photos")), f"9000x9000 pixels (height x width), more than the {1 << 26:,}")


def test_pictures_over_the_total_budget_or_the_array_size_are_refused_before_allocating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = []
    for k in range(5):
        files.append(tmp_path / f"{k}.png")
        PIL.new("L", (20, 10), k * 40).save(files[-1])
    budget = PixelBudget(total=4 * 200)
    for path in files[:4]:
        budget.spend(str(path), 20, 10)
    with pytest.raises(DatasetError, match="hold more than 800 pixels in all"):
        budget.spend(str(files[4]), 20, 10)
    monkeypatch.setattr(folders, "MAX_IMAGES_BYTES", 4 * 200)
    allocated: list[Any] = []
    real_empty = np.empty

    def empty(*args: Any, **kwargs: Any) -> Any:
        allocated.append(args)
        return real_empty(*args, **kwargs)

    monkeypatch.setattr(np, "empty", empty)
    with pytest.raises(DatasetError, match="5 pictures of 1x10x20 are 1,000 bytes, more than the 800"):
        read_pictures(files, None, None, resize=False)
    assert allocated == []


def test_pillows_bomb_warning_and_error_become_one_line(tmp_path: Path) -> None:
    for side in (10_000, 14_000):  # Pillow warns above 89 megapixels and refuses above 179
        path = png_header_only(tmp_path / f"{side}.png", side, side)
        with pytest.raises(DatasetError, match=f"more than the {MAX_PICTURE_PIXELS:,} (pixels a picture|a picture)"):
            folders.read_picture(path)


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares ``width`` x ``height`` grey pixels and holds one row of them: enough for
    Pillow to read its size, not to decode it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">L", len(data)) + kind + data + struct.pack(">L", zlib.crc32(kind + data))

    header = struct.pack(">2L5B", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(bytes(width + 1))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b""))
    return path


def test_predict_a_huge_png_or_npy_is_one_line(tmp_path: Path, small_model: tuple[Path, Path]) -> None:
    model, data_dir = small_model
    huge = png_header_only(tmp_path / "huge.png", 20_000, 20_000)
    one_line(
        limited("predict", str(model), "--image", str(huge), "--data-dir", str(data_dir)),
        f"huge.png: more than the {MAX_PICTURE_PIXELS:,} pixels a picture may have",
    )
    mid = png_header_only(tmp_path / "mid.png", 10_000, 10_000)  # Pillow only warns: refused by scratchnet
    one_line(
        limited("predict", str(model), "--image", str(mid), "--data-dir", str(data_dir)),
        f"mid.png: 10000x10000 pixels (height x width), more than the {MAX_PICTURE_PIXELS:,}",
    )
    npy = tmp_path / "huge.npy"
    npy.write_bytes(npy_header((10**6, 10**6), "|u1") + bytes(100))
    one_line(
        limited("predict", str(model), "--image", str(npy), "--data-dir", str(data_dir)),
        "huge.npy: its header declares shape (1000000, 1000000), 1,000,000,000,000 values, more than the",
    )


def test_a_fifo_among_the_pictures_is_refused_unopened(tmp_path: Path) -> None:
    if not hasattr(__import__("os"), "mkfifo") or sys.platform == "win32":
        pytest.skip("needs FIFOs")
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="pipe.png: not a regular file"):
        folders.read_picture(fifo)
