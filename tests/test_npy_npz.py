"""Tests for the standard-library .npy/.npz codec (scratchnet.io.npy / scratchnet.io.npz)."""

from __future__ import annotations

import io
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from scratchnet.core.errors import ModelFormatError, ScratchnetError, ShapeError
from scratchnet.io.npy import MAGIC, NpyArray, format_npy, from_nested_floats, parse_npy, to_nested_floats
from scratchnet.io.npz import format_npz, read_npz, write_npz

NAME = "my-model.npz"
LIMITS: dict[str, int] = {"max_arrays": 16, "max_total_bytes": 1 << 20, "max_header": 10_000}
FLOAT_DTYPES = ["<f4", "<f8", ">f4", ">f8"]

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)


def float_arrays(dtype: str) -> st.SearchStrategy[Any]:
    """Arrays of the dtype with infinities and signed zeros but no NaN (NaN != NaN in comparisons)."""
    elements = st.floats(allow_nan=False, width=32) if dtype.endswith("4") else st.floats(allow_nan=False)
    return hnp.arrays(
        np.dtype(dtype),
        shapes,
        elements=elements | st.sampled_from([0.0, -0.0, float("inf"), float("-inf")]),
    )


def le_c_bytes(arr: Any) -> bytes:
    """numpy's own bytes of the array as little-endian, C order."""
    return bytes(np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"))).tobytes())


def npz_blob(save: Any = np.savez, **arrays: Any) -> bytes:
    buf = io.BytesIO()
    save(buf, **arrays)
    return buf.getvalue()


def read_blob(blob: bytes, **limits: int) -> dict[str, NpyArray]:
    return read_npz(io.BytesIO(blob), NAME, **{**LIMITS, **limits})


def zip_of(entries: list[tuple[str, bytes]], compress: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names warn
        with zipfile.ZipFile(buf, "w", compression=compress) as zf:
            for entry, data in entries:
                zf.writestr(entry, data)
    return buf.getvalue()


def raw_npy(header: str | bytes, payload: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    h = header.encode("latin-1") if isinstance(header, str) else header
    fmt = "<H" if version[0] == 1 else "<I"
    return MAGIC + bytes(version) + struct.pack(fmt, len(h)) + h + payload


def expect_error(blob: bytes, *fragments: str, **limits: int) -> ModelFormatError:
    """read_npz on blob raises ModelFormatError naming the file (and the given fragments)."""
    with pytest.raises(ModelFormatError) as info:
        read_blob(blob, **limits)
    message = str(info.value)
    assert NAME in message
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


def expect_npy_error(npy: bytes, *fragments: str) -> None:
    """The .npy bytes are refused both directly and inside an .npz (with the entry named)."""
    with pytest.raises(ModelFormatError) as info:
        parse_npy(npy, "w.npy", max_header=10_000, max_bytes=1 << 20)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)
    assert str(info.value).startswith("w.npy: ")
    expect_error(zip_of([("w.npy", npy)]), "'w.npy'", *fragments)


# --------------------------------------------------------------------------- interoperability


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_write_npz_loads_in_numpy_bit_exactly(tmp_path: Path, data: st.DataObject) -> None:
    arrays = {}
    expected = {}
    for key, dtype in (("w32", "<f4"), ("w64", "<f8")):
        arr = data.draw(float_arrays(dtype))
        arrays[key] = NpyArray(dtype, arr.shape, le_c_bytes(arr))
        expected[key] = arr
    path = tmp_path / "out.npz"
    write_npz(path, arrays)
    with np.load(path, allow_pickle=False) as loaded:
        assert sorted(loaded.files) == ["w32", "w64"]
        for key, arr in expected.items():
            got = loaded[key]
            assert got.dtype == arr.dtype and got.shape == arr.shape
            assert got.tobytes() == arr.tobytes()
    assert path.read_bytes() == format_npz(arrays)  # path and bytes writers agree


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
@pytest.mark.parametrize("fortran", [False, True])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_numpy_files_read_bit_exactly(dtype: str, save: Any, fortran: bool, data: st.DataObject) -> None:
    arr = data.draw(float_arrays(dtype))
    if fortran:
        arr = np.asfortranarray(arr)
    got = read_blob(npz_blob(save, a=arr, b=arr.T))
    assert set(got) == {"a", "b"}
    for key, ref in (("a", arr), ("b", arr.T)):
        assert got[key].dtype == "<" + dtype[1:]
        assert got[key].shape == ref.shape
        assert got[key].data == le_c_bytes(ref)
        assert to_nested_floats(got[key]) == ref.astype(np.float64).tolist()


def test_fortran_order_header_is_really_used() -> None:
    arr = np.asfortranarray(np.arange(24, dtype=">f8").reshape(2, 3, 4))
    buf = io.BytesIO()
    np.save(buf, arr)
    assert b"'fortran_order': True" in buf.getvalue()
    got = parse_npy(buf.getvalue(), "x.npy", max_header=1000, max_bytes=1000)
    assert to_nested_floats(got) == arr.tolist()


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_reads_all_npy_versions(version: tuple[int, int]) -> None:
    arr = np.array([[1.5, -0.0], [np.inf, 2.0]], dtype="<f4")
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, version=version)
    got = parse_npy(buf.getvalue(), "x.npy", max_header=1000, max_bytes=1000)
    assert got == NpyArray("<f4", (2, 2), arr.tobytes())


def test_format_npy_layout_and_numpy_load() -> None:
    for shape in [(), (0,), (3,), (2, 0, 3), (4, 5)]:
        arr = np.arange(int(np.prod(shape)), dtype="<f8").reshape(shape)
        blob = format_npy(NpyArray("<f8", shape, arr.tobytes()))
        assert blob[6:8] == b"\x01\x00"
        (hlen,) = struct.unpack("<H", blob[8:10])
        assert (10 + hlen) % 64 == 0 and blob[10 + hlen - 1 : 10 + hlen] == b"\n"
        loaded = np.load(io.BytesIO(blob), allow_pickle=False)
        assert loaded.shape == shape and loaded.tobytes() == arr.tobytes()
        assert parse_npy(blob, "x", max_header=1000, max_bytes=1000).data == arr.tobytes()


def test_other_dtypes_and_big_endian_ints() -> None:
    got = read_blob(npz_blob(u=np.arange(5, dtype=np.uint8), i=np.array([-1, 2**40], dtype=">i8")))
    assert got["u"] == NpyArray("|u1", (5,), bytes(range(5)))
    assert got["i"].dtype == "<i8" and got["i"].data == np.array([-1, 2**40], dtype="<i8").tobytes()
    assert to_nested_floats(got["i"]) == [-1.0, float(2**40)]


@settings(max_examples=100, deadline=None)
@given(arr=hnp.arrays(np.float64, shapes, elements=st.floats(allow_nan=False)))
def test_nested_float_round_trips(arr: Any) -> None:
    values = arr.tolist()
    f8 = from_nested_floats(values, arr.shape)
    assert f8.data == arr.tobytes()
    assert to_nested_floats(f8) == values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on float32 overflow
        ref32 = arr.astype(np.float32)
    f4 = from_nested_floats(values, arr.shape, "<f4")
    assert f4.dtype == "<f4" and f4.data == ref32.tobytes()  # round to nearest, overflow -> inf
    assert to_nested_floats(f4) == ref32.astype(np.float64).tolist()


def test_from_nested_floats_refuses_bad_nesting() -> None:
    with pytest.raises(ShapeError):
        from_nested_floats([[1.0, 2.0], [3.0]], (2, 2))
    with pytest.raises(ShapeError):
        from_nested_floats([1.0, [2.0]], (2,))
    with pytest.raises(ShapeError):
        from_nested_floats([True], (1,))
    with pytest.raises(ShapeError):
        from_nested_floats(1.0, (1,))
    with pytest.raises(ShapeError):
        NpyArray("<f8", (2,), b"\x00" * 8)
    with pytest.raises(ValueError):
        NpyArray("|O", (1,), b"\x00" * 8)


def test_write_npz_refuses_path_names() -> None:
    arr = NpyArray("<f8", (), b"\x00" * 8)
    for bad in ["a/b", "..", "", "a\\b", "x\x00"]:
        with pytest.raises(ValueError):
            format_npz({bad: arr})


# --------------------------------------------------------------------------- malformed .npy

GOOD_HEADER = "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
PAYLOAD = struct.pack("<2d", 1.0, 2.0)


def header(text: str) -> str:
    return text + " " * (-(len(text) + 11) % 64) + "\n"


def test_good_raw_npy_is_accepted() -> None:
    got = parse_npy(raw_npy(header(GOOD_HEADER), PAYLOAD), "w.npy", max_header=1000, max_bytes=1000)
    assert to_nested_floats(got) == [1.0, 2.0]


def test_bad_magic() -> None:
    expect_npy_error(b"\x93NUMPX" + raw_npy(header(GOOD_HEADER), PAYLOAD)[6:], "bad magic")
    expect_npy_error(b"", "bad magic")


@pytest.mark.parametrize("version", [(0, 0), (1, 1), (4, 0), (255, 255)])
def test_unsupported_version(version: tuple[int, int]) -> None:
    expect_npy_error(raw_npy(header(GOOD_HEADER), PAYLOAD, version), "version")


def test_oversized_header_length_is_refused_before_reading() -> None:
    # The declared length is absurd and the bytes are not even there: the limit must trip first.
    expect_npy_error(MAGIC + b"\x01\x00" + struct.pack("<H", 0xFFFF) + b"{", "exceeds the limit")
    expect_npy_error(MAGIC + b"\x02\x00" + struct.pack("<I", 0xFFFFFFFF) + b"{", "exceeds the limit")
    expect_npy_error(MAGIC + b"\x01\x00\x10", "truncated")
    expect_npy_error(MAGIC + b"\x01\x00" + struct.pack("<H", 100) + b"{}", "truncated")


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2, 3]",
        "descr",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (2,)",
        "{" * 150 + "}" * 150,
        "{'descr': '<f8'} | {'fortran_order': False, 'shape': (2,)}",
        "{**{'descr': '<f8'}, 'fortran_order': False, 'shape': (2,)}",
        "{1: '<f8', 'fortran_order': False, 'shape': (2,)}",
    ],
)
def test_header_not_a_dict_literal(text: str) -> None:
    expect_npy_error(raw_npy(header(text), PAYLOAD), "npy header")


def test_header_without_newline() -> None:
    expect_npy_error(raw_npy(GOOD_HEADER, PAYLOAD), "newline")


def test_header_with_function_calls_is_not_evaluated(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    calls = [
        f"{{'descr': open({str(canary)!r}, 'w').name and '<f8', 'fortran_order': False, 'shape': (2,)}}",
        f"{{'descr': '<f8', 'fortran_order': False, 'shape': (len(open({str(canary)!r}, 'w').name),)}}",
        "{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (2,)}",
        f"__import__('pathlib').Path({str(canary)!r}).touch()",
    ]
    for text in calls:
        expect_npy_error(raw_npy(header(text), PAYLOAD), "npy header")
    assert not canary.exists()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{'descr': '<f8', 'shape': (2,)}", "missing ['fortran_order']"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", "unexpected"),
        ("{'descr': '<f8', 'descr': '|O', 'fortran_order': False, 'shape': (2,)}", "duplicate"),
        ("{'descr': '<f8', 'fortran_order': 0, 'shape': (2,)}", "fortran_order"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': [2]}", "shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,)}", "shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (2.0,)}", "shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (True, True)}", "shape"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': 2}", "shape"),
        ("{'descr': '<c16', 'fortran_order': False, 'shape': (1,)}", "unsupported npy dtype"),
        ("{'descr': '<U2', 'fortran_order': False, 'shape': (2,)}", "unsupported npy dtype"),
        ("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,)}", "descr"),
        ("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}", "object dtype"),
    ],
)
def test_bad_header_fields(text: str, fragment: str) -> None:
    expect_npy_error(raw_npy(header(text), PAYLOAD), fragment)


def test_non_ascii_header() -> None:
    expect_npy_error(raw_npy(header(GOOD_HEADER).encode("latin-1")[:-2] + b"\xe9\n", PAYLOAD), "ASCII")


def test_payload_length_must_match_shape() -> None:
    expect_npy_error(raw_npy(header(GOOD_HEADER), PAYLOAD[:-1]), "truncated")
    expect_npy_error(raw_npy(header(GOOD_HEADER), PAYLOAD + b"\x00"), "too long")
    expect_npy_error(raw_npy(header(GOOD_HEADER), b""), "truncated")


def test_payload_bound_is_checked_from_the_header() -> None:
    huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"
    expect_npy_error(raw_npy(header(huge)), "over the limit")


class Tripwire:
    """Unpickling this calls _tripped, so a test can see whether anything was unpickled."""

    fired = False

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_tripped, ())


def _tripped() -> None:
    Tripwire.fired = True


def test_object_dtype_is_refused_without_unpickling() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{}, Tripwire()], dtype=object), allow_pickle=True)
    Tripwire.fired = False
    expect_npy_error(buf.getvalue(), "object dtype")
    expect_error(npz_blob(np.savez, w=np.array([Tripwire()], dtype=object)), "object dtype", "'w.npy'")
    assert not Tripwire.fired
    # Sanity check that the tripwire works.
    np.load(io.BytesIO(buf.getvalue()), allow_pickle=True)
    assert Tripwire.fired


# --------------------------------------------------------------------------- malformed .npz


def good_blob() -> bytes:
    return format_npz(
        {
            "w": from_nested_floats([[1.0, -2.0], [float("inf"), -0.0]], (2, 2)),
            "b": from_nested_floats([0.5, 0.25, 3.0], (3,), "<f4"),
        }
    )


def test_read_from_path_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / NAME
    path.write_bytes(good_blob())
    got = read_npz(path, NAME, **LIMITS)
    assert to_nested_floats(got["w"]) == [[1.0, -2.0], [float("inf"), -0.0]]
    with pytest.raises(ModelFormatError, match=NAME):
        read_npz(tmp_path / "nope.npz", NAME, **LIMITS)
    with pytest.raises(ModelFormatError, match=NAME):
        read_npz(tmp_path, NAME, **LIMITS)  # a directory


def test_not_a_zip_and_truncated_zip() -> None:
    expect_error(b"")
    expect_error(b"definitely not a zip file")
    blob = good_blob()
    for cut in (len(blob) // 2, len(blob) - 1, 30):
        expect_error(blob[:cut])


def test_corrupted_stored_entry_fails_crc() -> None:
    blob = bytearray(good_blob())
    at = blob.index(struct.pack("<d", -2.0))
    blob[at] ^= 0x40
    err = expect_error(bytes(blob), "'w.npy'")
    assert "CRC" in str(err)


def test_corrupted_deflated_entry() -> None:
    blob = bytearray(npz_blob(np.savez_compressed, w=np.linspace(0, 1, 1000)))
    blob[len(blob) // 3] ^= 0xFF
    expect_error(bytes(blob), "'w.npy'")


def test_too_many_entries() -> None:
    blob = npz_blob(**{f"a{i}": np.zeros(1) for i in range(5)})
    assert len(read_blob(blob, max_arrays=5)) == 5
    expect_error(blob, "5 entries", max_arrays=4)


def test_total_bytes_over_the_bound() -> None:
    blob = npz_blob(a=np.zeros(100), b=np.zeros(100))
    expect_error(blob, "more than the limit", max_total_bytes=1000)
    # Deflated: tiny archive, large declared size.
    bomb = npz_blob(np.savez_compressed, a=np.zeros(1_000_000))
    assert len(bomb) < 20_000
    expect_error(bomb, "8000128 bytes", max_total_bytes=1 << 20)


def test_declared_size_is_not_trusted() -> None:
    # A deflated entry whose declared uncompressed size is patched to look small.
    npy = format_npy(NpyArray("<f8", (200_000,), bytes(1_600_000)))
    blob = bytearray(zip_of([("a.npy", npy)], zipfile.ZIP_DEFLATED))
    info = zipfile.ZipFile(io.BytesIO(bytes(blob))).infolist()[0]
    small = struct.pack("<I", 100)
    local, central = info.header_offset, blob.index(b"PK\x01\x02")
    blob[local + 22 : local + 26] = small
    blob[central + 24 : central + 28] = small
    expect_error(bytes(blob), "'a.npy'", max_total_bytes=1000)


def test_archive_size_is_bounded_before_reading_the_directory() -> None:
    blob = good_blob() + b"\x00" * 300_000
    expect_error(blob, "npz file is", max_total_bytes=1000, max_arrays=2)


@pytest.mark.parametrize(
    "entry", ["dir/a.npy", "../a.npy", "/abs.npy", "a\\b.npy", "a.txt", ".npy", "a..b.npy", "x\x01.npy"]
)
def test_bad_entry_names(entry: str) -> None:
    npy = raw_npy(header(GOOD_HEADER), PAYLOAD)
    expect_error(zip_of([(entry, npy)]), "npz entry")


def test_duplicate_entry_names() -> None:
    npy = raw_npy(header(GOOD_HEADER), PAYLOAD)
    expect_error(zip_of([("a.npy", npy), ("a.npy", npy)]), "twice")


def test_unsupported_compression_method() -> None:
    npy = raw_npy(header(GOOD_HEADER), PAYLOAD)
    expect_error(zip_of([("a.npy", npy)], zipfile.ZIP_BZIP2), "compression")


def test_entry_is_not_an_npy_file() -> None:
    expect_error(zip_of([("a.npy", b"hello")]), "'a.npy'", "bad magic")
    expect_error(zip_of([("a.npy", zlib.compress(b"x"))], zipfile.ZIP_DEFLATED), "'a.npy'")


# --------------------------------------------------------------------------- fuzz

GOOD = good_blob()
GOOD_ARRAYS = read_blob(GOOD)
GOOD_DEFLATED = npz_blob(np.savez_compressed, w=np.array([[1.0, -2.0], [np.inf, -0.0]]), b=np.float32(0.5))
GOOD_DEFLATED_ARRAYS = read_blob(GOOD_DEFLATED)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), deflated=st.booleans())
def test_fuzz_single_byte_flip(data: st.DataObject, deflated: bool) -> None:
    blob, original = (GOOD_DEFLATED, GOOD_DEFLATED_ARRAYS) if deflated else (GOOD, GOOD_ARRAYS)
    at = data.draw(st.integers(0, len(blob) - 1))
    mask = data.draw(st.integers(1, 255))
    damaged = bytearray(blob)
    damaged[at] ^= mask
    try:
        got = read_blob(bytes(damaged))
    except ModelFormatError as exc:
        assert NAME in str(exc) and "\n" not in str(exc)
    else:
        assert got == original  # the flip landed in a byte nothing reads (timestamp, counts...)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), deflated=st.booleans())
def test_fuzz_truncation(data: st.DataObject, deflated: bool) -> None:
    blob = GOOD_DEFLATED if deflated else GOOD
    cut = data.draw(st.integers(0, len(blob) - 1))
    expect_error(blob[:cut])


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    deflated=st.booleans(),
    n_flips=st.integers(1, 8),
    truncate=st.booleans(),
)
def test_fuzz_many_changes_only_raise_model_format_error(
    data: st.DataObject, deflated: bool, n_flips: int, truncate: bool
) -> None:
    damaged = bytearray(GOOD_DEFLATED if deflated else GOOD)
    for _ in range(n_flips):
        damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    if truncate:
        del damaged[data.draw(st.integers(0, len(damaged))) :]
    try:
        got = read_blob(bytes(damaged))
    except ScratchnetError as exc:
        assert isinstance(exc, ModelFormatError) and NAME in str(exc)
    else:
        assert all(isinstance(v, NpyArray) for v in got.values())
