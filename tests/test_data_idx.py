"""The IDX reader and the dataset loader's checks, on small files built in a temporary directory."""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchnet.core.errors import DatasetError, ScratchnetError
from scratchnet.data import DATASETS, DatasetSpec, FileSpec, load_dataset, read_idx, read_idx_bytes, resolve_data_dir
from scratchnet.data.idx import decompress, read_decompressed


def idx(dims: tuple[int, ...], payload: bytes, *, type_code: int = 0x08, ndim: int | None = None) -> bytes:
    """Raw IDX bytes; ``ndim`` overrides the header's dimension count to build broken files."""
    n = len(dims) if ndim is None else ndim
    return bytes([0, 0, type_code, n]) + struct.pack(f">{len(dims)}I", *dims) + payload


def images_payload(n: int, h: int = 3, w: int = 3) -> bytes:
    return bytes((i * 7) % 256 for i in range(n * h * w))


GOOD = idx((4, 3, 3), images_payload(4))
GOOD_GZ = gzip.compress(GOOD)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Never pick up the real data or the real cache, and never download in these tests.
    monkeypatch.delenv("SCRATCHNET_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


# --- read_idx on good files ---------------------------------------------------------------


@pytest.mark.parametrize("content", [GOOD, GOOD_GZ], ids=["plain", "gzip"])
@pytest.mark.parametrize("filename", ["x-idx3-ubyte", "x-idx3-ubyte.gz"])
def test_read_idx_good(tmp_path: Path, content: bytes, filename: str) -> None:
    # gzip is detected from the content, so the file name does not matter.
    path = tmp_path / filename
    path.write_bytes(content)
    array = read_idx(path)
    assert array.dtype == np.uint8
    assert array.shape == (4, 3, 3)
    assert array.tobytes() == images_payload(4)
    array[0, 0, 0] = 1  # the returned array is writable


def test_read_idx_labels_1d(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(gzip.compress(idx((5,), bytes([3, 1, 4, 1, 5]))))
    assert read_idx(path).tolist() == [3, 1, 4, 1, 5]


def test_read_idx_bytes_returns_dims_and_payload() -> None:
    assert read_idx_bytes(GOOD_GZ, "mem") == ((4, 3, 3), images_payload(4))
    assert read_idx_bytes(GOOD, "mem") == ((4, 3, 3), images_payload(4))


def test_multi_member_gzip_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(GOOD[:10]) + gzip.compress(GOOD[10:]))
    assert read_idx(path).tobytes() == images_payload(4)


def test_sha256_checked_on_decompressed_bytes(tmp_path: Path) -> None:
    good = hashlib.sha256(GOOD).hexdigest()
    for i, content in enumerate([GOOD, GOOD_GZ, gzip.compress(GOOD, compresslevel=1)]):
        path = tmp_path / f"f{i}"
        path.write_bytes(content)
        read_idx(path, sha256=good)
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        read_idx(path, sha256="0" * 64)
    assert str(path) in str(info.value)


# --- read_idx on damaged files --------------------------------------------------------------


def _truncated_gzip() -> bytes:
    return GOOD_GZ[: len(GOOD_GZ) // 2]


def _crc_broken_gzip() -> bytes:
    data = bytearray(GOOD_GZ)
    data[-8] ^= 0xFF  # the CRC32 in the trailer
    return bytes(data)


DAMAGED: dict[str, tuple[bytes, str]] = {
    "empty": (b"", "too short"),
    "bad magic": (b"\x01" + GOOD[1:], "magic"),
    "bad magic 2nd byte": (GOOD[:1] + b"\x08" + GOOD[2:], "magic"),
    "float type code": (idx((4, 3, 3), images_payload(4), type_code=0x0D), "type code 0x0d"),
    "int32 type code": (idx((4, 3, 3), images_payload(4), type_code=0x0C), "type code 0x0c"),
    "zero ndim": (idx((), b"", ndim=0), "dimensions"),
    "huge ndim": (idx((4, 3, 3), images_payload(4), ndim=200), "dimensions"),
    "truncated header": (GOOD[:10], "truncated IDX header"),
    "zero dimension": (idx((4, 0, 3), b""), "zero dimension"),
    "wrong dimensions (too many bytes claimed)": (idx((5, 3, 3), images_payload(4)), "truncated payload"),
    "wrong dimensions (too few bytes claimed)": (idx((4, 2, 3), images_payload(4)), "trailing bytes"),
    "truncated payload": (GOOD[:-1], "truncated payload"),
    "trailing bytes": (GOOD + b"\x00", "trailing bytes"),
    "absurd dimensions": (idx((0xFFFFFFFF, 0xFFFFFFFF), b"abc"), "truncated payload"),
    "truncated gzip": (_truncated_gzip(), "truncated gzip"),
    "gzip header only": (GOOD_GZ[:10], "truncated gzip"),
    "gzip magic only": (GOOD_GZ[:2], "gzip"),
    "corrupt gzip crc": (_crc_broken_gzip(), "corrupt gzip"),
    "garbage after gzip": (GOOD_GZ + b"junk", "after the end of the gzip"),
    "gzip of damaged idx": (gzip.compress(GOOD[:-5]), "truncated payload"),
}


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_file_raises_dataset_error_naming_file(tmp_path: Path, case: str) -> None:
    content, expected = DAMAGED[case]
    path = tmp_path / "damaged-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DatasetError, match=expected) as info:
        read_idx(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_bytes_raise_dataset_error_naming_source(case: str) -> None:
    content, expected = DAMAGED[case]
    with pytest.raises(DatasetError, match=expected) as info:
        read_idx_bytes(content, "some-name")
    assert str(info.value).startswith("some-name: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.gz"
    with pytest.raises(DatasetError, match="cannot read") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_decompression_is_capped(tmp_path: Path) -> None:
    bomb = gzip.compress(b"\0" * 5_000_000)  # 5 MB -> about 5 kB
    with pytest.raises(DatasetError, match="limit"):
        decompress(bomb, "bomb", limit=1_000_000)
    path = tmp_path / "bomb.gz"
    path.write_bytes(bomb)
    with pytest.raises(DatasetError, match="limit") as info:
        read_decompressed(path, limit=1_000_000)
    assert str(path) in str(info.value)
    plain = tmp_path / "big"
    plain.write_bytes(b"\0" * 2_000_000)
    with pytest.raises(DatasetError, match="limit"):
        read_decompressed(plain, limit=1_000_000)
    assert len(read_decompressed(path, limit=5_000_000)) == 5_000_000


# --- properties -------------------------------------------------------------------------------


def _parse_or_dataset_error(data: bytes) -> None:
    try:
        read_idx_bytes(data, "fuzz")
    except DatasetError as exc:
        assert str(exc).startswith("fuzz: ")


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_only_raise_dataset_error(data: bytes) -> None:
    _parse_or_dataset_error(data)


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_random_bytes_behind_gzip_magic_only_raise_dataset_error(data: bytes) -> None:
    _parse_or_dataset_error(b"\x1f\x8b" + data)


@given(st.binary(max_size=200), st.sampled_from([1, 2, 3]))
def test_random_headers_only_raise_dataset_error(tail: bytes, ndim: int) -> None:
    _parse_or_dataset_error(bytes([0, 0, 8, ndim]) + tail)
    _parse_or_dataset_error(gzip.compress(bytes([0, 0, 8, ndim]) + tail))


@given(st.data())
def test_every_truncation_of_a_valid_file_is_an_error(data: st.DataObject) -> None:
    content = data.draw(st.sampled_from([GOOD, GOOD_GZ]))
    cut = data.draw(st.integers(min_value=0, max_value=len(content) - 1))
    with pytest.raises(DatasetError):
        read_idx_bytes(content[:cut], "cut")


@given(st.data())
def test_corrupted_gzip_is_rejected_or_decodes_to_valid_idx(data: st.DataObject) -> None:
    content = bytearray(GOOD_GZ)
    pos = data.draw(st.integers(min_value=0, max_value=len(content) - 1))
    content[pos] ^= data.draw(st.integers(min_value=1, max_value=255))
    try:
        dims, payload = read_idx_bytes(bytes(content), "flip")
    except DatasetError:
        return
    # Only header fields zlib does not protect (mtime, OS byte...) can change without an error.
    assert (dims, payload) == ((4, 3, 3), images_payload(4))


def test_dataset_error_is_a_scratchnet_error() -> None:
    assert issubclass(DatasetError, ScratchnetError)
    assert not issubclass(zlib.error, ScratchnetError)


# --- load_dataset on a tiny registered dataset --------------------------------------------


TRAIN, TEST = 6, 4


def write_tiny(
    folder: Path,
    *,
    train_labels: bytes = bytes([0, 1, 2, 3, 4, 9]),
    test_labels: bytes = bytes([5, 6, 7, 8]),
    train_count: int = TRAIN,
    compress: bool = True,
    names: dict[str, str] | None = None,
) -> dict[str, bytes]:
    """Write the four tiny files; return the decompressed content of each, by canonical name."""
    contents = {
        "train-images-idx3-ubyte.gz": idx((train_count, 3, 3), images_payload(train_count)),
        "train-labels-idx1-ubyte.gz": idx((len(train_labels),), train_labels),
        "t10k-images-idx3-ubyte.gz": idx((TEST, 3, 3), images_payload(TEST)),
        "t10k-labels-idx1-ubyte.gz": idx((len(test_labels),), test_labels),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for canonical, raw in contents.items():
        name = (names or {}).get(canonical, canonical)
        (folder / name).write_bytes(gzip.compress(raw) if compress else raw)
    return contents


def tiny_spec(contents: dict[str, bytes], *, train_count: int = TRAIN) -> DatasetSpec:
    def fs(name: str, shape: tuple[int, ...]) -> FileSpec:
        return FileSpec(name, hashlib.sha256(contents[name]).hexdigest(), shape)

    return DatasetSpec(
        name="tiny",
        train_images=fs("train-images-idx3-ubyte.gz", (train_count, 3, 3)),
        train_labels=fs("train-labels-idx1-ubyte.gz", (train_count,)),
        test_images=fs("t10k-images-idx3-ubyte.gz", (TEST, 3, 3)),
        test_labels=fs("t10k-labels-idx1-ubyte.gz", (TEST,)),
        class_names=tuple("abcdefghij"),
        mirrors=(),  # nothing to download from: a missing file can only be an error
    )


def register(monkeypatch: pytest.MonkeyPatch, spec: DatasetSpec) -> None:
    monkeypatch.setitem(DATASETS, spec.name, spec)


def test_load_tiny_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, tiny_spec(write_tiny(tmp_path / "tiny")))
    ds = load_dataset("tiny", tmp_path, download=False)
    assert ds.name == "tiny"
    assert ds.train_images.shape == (TRAIN, 3, 3) and ds.train_images.dtype == np.uint8
    assert ds.train_labels.tolist() == [0, 1, 2, 3, 4, 9]
    assert ds.test_images.shape == (TEST, 3, 3)
    assert ds.test_labels.tolist() == [5, 6, 7, 8]
    assert ds.class_names == tuple("abcdefghij")
    assert ds.num_classes == 10
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]


def test_load_accepts_plain_files_and_names_without_gz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = {
        "train-images-idx3-ubyte.gz": "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte.gz": "t10k-labels-idx1-ubyte",
    }
    contents = write_tiny(tmp_path / "tiny", compress=False, names=names)
    register(monkeypatch, tiny_spec(contents))
    assert load_dataset("tiny", tmp_path, download=False).train_images.shape == (TRAIN, 3, 3)


def test_load_accepts_files_directly_in_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, tiny_spec(write_tiny(tmp_path)))
    assert load_dataset("tiny", tmp_path, download=False).test_labels.tolist() == [5, 6, 7, 8]


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A good copy in the higher-priority place and a damaged one in the lower: loading
    # succeeds only if the higher one is used, and the error names the one that was used.
    arg, env, cache = tmp_path / "arg", tmp_path / "env", tmp_path / "xdg-cache" / "scratchnet"
    for folder in (arg, env, cache):
        contents = write_tiny(folder / "tiny")
    register(monkeypatch, tiny_spec(contents))
    damaged = {folder: folder / "tiny" / "t10k-labels-idx1-ubyte.gz" for folder in (arg, env, cache)}

    assert resolve_data_dir() == cache
    assert resolve_data_dir(arg) == arg
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(env))
    assert resolve_data_dir() == env
    assert resolve_data_dir(arg) == arg

    damaged[env].write_bytes(b"broken")
    damaged[cache].write_bytes(b"broken")
    load_dataset("tiny", arg, download=False)  # the argument wins over the variable and the cache
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", download=False)  # the variable wins over the cache
    assert str(damaged[env]) in str(info.value)

    monkeypatch.delenv("SCRATCHNET_DATA_DIR")
    damaged[cache].write_bytes(gzip.compress(contents["t10k-labels-idx1-ubyte.gz"]))
    load_dataset("tiny", download=False)  # the cache is the last place looked

    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(env))
    damaged[env].unlink()
    with pytest.raises(DatasetError, match=f"looked in {env}$"):
        load_dataset("tiny", download=False)  # one directory is in effect: a file missing there is missing
    damaged[arg].unlink()
    with pytest.raises(DatasetError, match=f"looked in {arg}$"):
        load_dataset("tiny", arg, download=False)  # nor does an explicit directory fall back to the variable


def test_unknown_dataset_lists_known_ones() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'") as info:
        load_dataset("cifar", download=False)
    assert "fashion-mnist" in str(info.value) and "mnist" in str(info.value)


def test_dataset_name_is_normalised(tmp_path: Path) -> None:
    # "Fashion_MNIST" names the registered dataset; it then fails only because no files exist.
    with pytest.raises(DatasetError, match="fashion-mnist: dataset files not found"):
        load_dataset("Fashion_MNIST", tmp_path, download=False)


def test_missing_files_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = write_tiny(tmp_path / "tiny")
    register(monkeypatch, tiny_spec(contents))
    (tmp_path / "tiny" / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "tiny") in message
    assert "train-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte.gz" not in message  # only the missing one is asked for
    assert "--data-dir" in message and "SCRATCHNET_DATA_DIR" in message
    assert "\n" not in message


def test_missing_files_download_failure_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, tiny_spec(write_tiny(tmp_path / "elsewhere")))
    with pytest.raises(DatasetError) as info:
        load_dataset("tiny", tmp_path / "data", download=True)  # the tiny spec has no mirrors
    message = str(info.value)
    assert "download failed" in message
    assert str(tmp_path / "data" / "tiny") in message
    assert "t10k-images-idx3-ubyte.gz" in message and "--data-dir" in message


def test_labels_out_of_range(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register(monkeypatch, tiny_spec(write_tiny(tmp_path / "tiny", test_labels=bytes([5, 6, 10, 8]))))
    path = tmp_path / "tiny" / "t10k-labels-idx1-ubyte.gz"
    with pytest.raises(DatasetError, match=r"label 10 at index 2 is outside 0\.\.9") as info:
        load_dataset("tiny", tmp_path, download=False)
    assert str(path) in str(info.value)


def test_image_and_label_counts_disagree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = write_tiny(tmp_path / "tiny", train_labels=bytes([0, 1, 2, 3, 4]))  # 6 images, 5 labels
    register(monkeypatch, tiny_spec(contents))
    with pytest.raises(DatasetError, match="has 6 images but .* has 5 labels") as info:
        load_dataset("tiny", tmp_path, download=False)
    message = str(info.value)
    assert str(tmp_path / "tiny" / "train-images-idx3-ubyte.gz") in message
    assert str(tmp_path / "tiny" / "train-labels-idx1-ubyte.gz") in message


def test_wrong_image_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = write_tiny(tmp_path / "tiny", train_count=5, train_labels=bytes([0, 1, 2, 3, 4]))
    register(monkeypatch, tiny_spec(contents))  # spec says 6, files (consistently) hold 5
    with pytest.raises(DatasetError, match="5 images, expected 6"):
        load_dataset("tiny", tmp_path, download=False)


def test_checksum_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = write_tiny(tmp_path / "tiny")
    register(monkeypatch, tiny_spec(contents))
    path = tmp_path / "tiny" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx((TEST, 3, 3), bytes(TEST * 9))))  # valid IDX, other pixels
    with pytest.raises(DatasetError, match="checksum mismatch") as info:
        load_dataset("tiny", tmp_path, download=False)
    assert str(path) in str(info.value)


def test_structural_damage_reported_before_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contents = write_tiny(tmp_path / "tiny")
    register(monkeypatch, tiny_spec(contents))
    path = tmp_path / "tiny" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DatasetError, match="truncated gzip") as info:
        load_dataset("tiny", tmp_path, download=False)
    assert str(path) in str(info.value)
