"""The CSV reader (scratchnet.data.tables): what it reads, and a DatasetError naming the file and the
line for every kind of bad file, never another exception (hypothesis: round trips of random tables,
random corruptions)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchnet.core.errors import DatasetError, ScratchnetError
from scratchnet.data.own import DataOptions
from scratchnet.data.own import sorted_class_names as class_names_of
from scratchnet.data.own_sets import load_data
from scratchnet.data.tables import read_csv


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_a_table_with_a_header_is_its_numbers_and_its_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "a,label,b\n1.5,cat,-2\n3,dog,4e1\n\n0.25,cat,7\n")
    table = read_csv(path)
    assert table.columns == ("a", "b") and table.label_column == "label" and table.header
    assert table.values.dtype == np.float32
    assert table.values.tolist() == [[1.5, -2.0], [3.0, 40.0], [0.25, 7.0]]
    assert table.labels == ["cat", "dog", "cat"]
    assert [table.line_of(row) for row in range(3)] == [2, 3, 5]  # line 4 is blank


def test_pixels_are_held_as_bytes_and_a_float_makes_them_floats(tmp_path: Path) -> None:
    pixels = read_csv(write(tmp_path / "p.csv", "label,p0,p1\n1,0,255\n2,17,3\n"))
    assert pixels.values.dtype == np.uint8 and pixels.values.tolist() == [[0, 255], [17, 3]]
    # Across chunks: the first chunk's bytes become floats when a later chunk holds 0.5.
    text = "label,p0\n" + "".join(f"{k % 3},{k % 200}\n" for k in range(500)) + "1,0.5\n"
    mixed = read_csv(write(tmp_path / "m.csv", text), chunk_bytes=64)
    assert mixed.values.dtype == np.float32 and mixed.rows == 501
    assert mixed.values[:500, 0].tolist() == [float(k % 200) for k in range(500)] and mixed.values[500, 0] == 0.5


def test_without_a_header_columns_are_positions(tmp_path: Path) -> None:
    path = write(tmp_path / "n.csv", "5,1,2\n6,3,4\n")
    with pytest.raises(DatasetError, match=r"n\.csv: the first row is numbers, not a header.*--label-column N"):
        read_csv(path)
    table = read_csv(path, label_column="0")
    assert table.labels == ["5", "6"] and table.columns == ("1", "2") and table.values.tolist() == [[1, 2], [3, 4]]
    last = read_csv(path, label_column="2")
    assert last.labels == ["2", "4"] and last.values.tolist() == [[5, 1], [6, 3]]


def test_without_a_header_a_word_in_the_label_column_is_a_label_not_a_name(tmp_path: Path) -> None:
    path = write(tmp_path / "w.csv", "1.5,2,cat\n3,4,dog\n")
    table = read_csv(path, label_column="2")
    assert not table.header and table.labels == ["cat", "dog"] and table.values.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    named = read_csv(write(tmp_path / "h.csv", "a,b,kind\n1.5,2,cat\n"), label_column="2")  # words elsewhere: a header
    assert named.header and named.columns == ("a", "b") and named.labels == ["cat"]


def test_quoted_cells_and_a_byte_order_mark(tmp_path: Path) -> None:
    (tmp_path / "q.csv").write_bytes('\ufeff"x","label"\n"1.5","a, b"\n2,c\n'.encode())
    table = read_csv(tmp_path / "q.csv")
    assert table.columns == ("x",) and table.values.tolist() == [[1.5], [2.0]] and table.labels == ["a, b", "c"]


def test_chosen_feature_columns_in_the_models_order(tmp_path: Path) -> None:
    path = write(tmp_path / "c.csv", "id,b,a\n7,1,2\n8,3,4\n")
    table = read_csv(path, label_required=False, features=["a", "b"])
    assert table.labels is None and table.values.tolist() == [[2, 1], [4, 3]]
    with pytest.raises(DatasetError, match=r"c\.csv: the model was trained on 2 feature columns.*'z'"):
        read_csv(path, label_required=False, features=["a", "z"])


def test_class_names_sort_numbers_by_value() -> None:
    assert class_names_of(["10", "2", "1", "2"]) == ("1", "2", "10")
    assert class_names_of(["dog", "cat", "10"]) == ("10", "cat", "dog")
    assert class_names_of(["-1", "0.5", "0"]) == ("-1", "0", "0.5")


BAD_FILES = [
    # (the file's text, what the message says after the file name)
    ("", r": the file is empty"),
    ("\n\n  \n", r": the file is empty"),
    ("a,b,label\n", r": the file has a header but no rows of data"),
    ("a,b,label\n1,2,x\n1,2,3,y\n", r" line 3 has 4 cells, but the rows have 3 \(a ragged row\)"),
    ("a,b,label\n1,2,x\n1,y\n", r" line 3 has 2 cells, but the rows have 3 \(a ragged row\)"),
    ("a,b,label\n1,2,x\n1,zz,y\n", r" line 3, column 'b': 'zz' is not a number"),
    ("a,b,label\n1,2,x\n1,,y\n", r" line 3, column 'b': the cell is empty"),
    ("a,b,label\n1,2,x\n\n1,nan,y\n", r" line 4, column 'b': 'nan' is not a finite number"),
    ("a,b,label\n1,2,x\n1,1e39,y\n", r" line 3, column 'b': '1e39' is not a finite number"),
    ("a,b,label\n1,2,\n", r" line 2: the label cell is empty"),
    ("a,b,c\n1,2,3\n", r": no column is named 'label' \(the columns are a, b, c\)"),
    ("a,a,label\n1,2,3\n", r": the header names the column 'a' twice"),
    ("label\n1\n2\n", r": there are no feature columns beside the label column"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_a_bad_file_is_one_line_naming_the_file_and_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(DatasetError, match=f"^{path}{message}") as caught:
        read_csv(path)
    assert "\n" not in str(caught.value)


def test_files_that_are_not_text_or_not_there(tmp_path: Path) -> None:
    (tmp_path / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(DatasetError, match=r"binary\.csv: not a text file in UTF-8"):
        read_csv(tmp_path / "binary.csv")
    with pytest.raises(DatasetError, match=r"missing\.csv: no such file"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(DatasetError, match="is a folder"):
        read_csv(tmp_path)


def test_a_single_class_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "one.csv", "a,label\n1,x\n2,x\n3,x\n")
    with pytest.raises(DatasetError, match=r"one\.csv: every sample has the label 'x'; a classifier needs two classes"):
        load_data(path)


def test_pixels_that_are_not_pixels_are_refused(tmp_path: Path) -> None:
    header = ",".join(["label", *(f"p{k}" for k in range(784))])
    row = ",".join(["2", *["3"] * 783, "-4"])
    path = write(tmp_path / "neg.csv", f"{header}\n1,{','.join(['0'] * 784)}\n{row}\n")
    with pytest.raises(DatasetError, match=r"neg\.csv line 3: -4 is not a pixel value.*--table"):
        load_data(path)
    table = load_data(path, options=DataOptions(table=True), test_fraction=0.0)  # a table of 784 features: fine
    assert table.kind == "features" and table.sample_shape == (784,)


# ---- property tests ----


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[float]], list[str]]:
    """A header (a label column among the features), rows of numbers, and one label per row."""
    features = draw(st.integers(1, 6))
    rows = draw(st.integers(1, 30))
    numbers = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32) | st.integers(-500, 500).map(float)
    values = [[draw(numbers) for _ in range(features)] for _ in range(rows)]
    labels = [draw(st.sampled_from(["a", "b c", "7", "-1.5", "x,y", 'q"t'])) for _ in range(rows)]
    names = [f"f{k}" for k in range(features)]
    return names, values, labels


def to_csv(names: list[str], values: list[list[float]], labels: list[str], label_at: int) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow([*names[:label_at], "label", *names[label_at:]])
    for row, label in zip(values, labels):
        cells = [repr(v) if not float(v).is_integer() else str(int(v)) for v in row]
        writer.writerow([*cells[:label_at], label, *cells[label_at:]])
    return text.getvalue()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(), data=st.data())
def test_a_random_table_reads_back_as_written(
    tmp_path: Path, table: tuple[list[str], list[list[float]], list[str]], data: st.DataObject
) -> None:
    names, values, labels = table
    label_at = data.draw(st.integers(0, len(names)))
    path = write(tmp_path / "round.csv", to_csv(names, values, labels, label_at))
    read = read_csv(path, chunk_bytes=data.draw(st.sampled_from([16, 200, 1 << 20])))
    assert read.columns == tuple(names) and read.labels == labels
    assert np.array_equal(read.values.astype(np.float64), np.asarray(values, np.float32).astype(np.float64))
    pixels = all(v.is_integer() and 0 <= v <= 255 for row in values for v in row)
    assert read.values.dtype == (np.uint8 if pixels else np.float32)


CORRUPTIONS = ["", "x", ",", '"', "\n", "1e999", "nan", "-", "\x00", "é", " ", "\r", "1_0", "0x1f", "\ufeff"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=tables(), data=st.data())
def test_a_corrupted_table_is_read_or_refused_with_a_dataset_error(
    tmp_path: Path, table: tuple[list[str], list[list[float]], list[str]], data: st.DataObject
) -> None:
    names, values, labels = table
    text = to_csv(names, values, labels, 0)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(text)))
        cut = data.draw(st.integers(0, 3))
        text = text[:at] + data.draw(st.sampled_from(CORRUPTIONS)) + text[at + cut :]
    path = tmp_path / "corrupt.csv"
    path.write_bytes(text.encode("utf-8") if data.draw(st.booleans()) else text.encode("latin-1", "replace"))
    try:
        read = read_csv(path, chunk_bytes=data.draw(st.sampled_from([32, 1 << 20])))
    except DatasetError as error:
        assert "\n" not in str(error) and str(path) in str(error)
        return
    except ScratchnetError as error:  # pragma: no cover - the test fails: the wrong class
        raise AssertionError(f"not a DatasetError: {error!r}") from None
    # What was read is a table of finite numbers, one label per row.
    assert read.values.ndim == 2 and read.labels is not None and len(read.labels) == read.rows
    assert all(math.isfinite(v) for v in read.values.reshape(-1).tolist())


def test_load_data_holds_out_a_stratified_test_part(tmp_path: Path) -> None:
    counts = {"a": 50, "b": 30, "c": 7, "d": 1}
    rows = [(name, k) for name, n in counts.items() for k in range(n)]
    path = write(tmp_path / "s.csv", "label,v\n" + "".join(f"{name},{k}\n" for name, k in rows))
    data = load_data(path, test_fraction=0.2)
    assert data.class_names == ("a", "b", "c", "d")
    test_counts = np.bincount(data.test_labels, minlength=4).tolist()
    assert test_counts == [10, 6, 1, 0]  # round(0.2 n), at least one of a class of two or more, never all
    assert len(data.train_labels) + len(data.test_labels) == 88
    # The same rows for every run, and the test rows in the file's order.
    again = load_data(path, test_fraction=0.2)
    assert np.array_equal(again.test_images, data.test_images) and np.array_equal(again.train_images, data.train_images)
    for k in range(4):
        values = data.test_images[data.test_labels == k, 0]
        assert values.tolist() == sorted(values.tolist())
    # Every sample is in one part or the other, with its own label.
    pairs = sorted(
        (int(lab), float(v))
        for part in ("train", "test")
        for lab, v in zip(getattr(data, f"{part}_labels"), getattr(data, f"{part}_images")[:, 0])
    )
    expected = sorted(("abcd".index(name), float(k)) for name, k in rows)
    assert pairs == expected


def test_a_test_file_label_the_training_file_does_not_have(tmp_path: Path) -> None:
    train = write(tmp_path / "train.csv", "label,v\na,1\nb,2\na,3\nb,4\n")
    test = write(tmp_path / "test.csv", "label,v\na,1\nb,2\nzebra,3\n")
    with pytest.raises(DatasetError, match=r"test\.csv line 4: the label 'zebra' is not one of the 2 classes"):
        load_data(train, test=test)
    numbers = write(tmp_path / "n.csv", "label,v\n7,1\n8,2\n")
    data = load_data(numbers, test=write(tmp_path / "nt.csv", "label,v\n7.0,5\n8,6\n"))
    assert data.test_labels.tolist() == [0, 1]  # 7.0 is the class 7
