"""Damaged model pairs: byte flips and truncations of either file raise ModelFormatError and nothing
else, or load a model equal in every respect (the flip hit a byte nothing reads, such as a zip timestamp)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_model_format import as_f64_bytes, small_model

from scratchnet.core.errors import ModelFormatError
from scratchnet.io import LoadedModel, load_model
from scratchnet.io.manifest import parse_document
from scratchnet.io.model import ModelFiles, read_model

FILES = ("m.json", "m.npz")


@functools.cache
def original() -> dict[str, bytes]:
    """The bytes of a valid pair: float32, dropout, training metadata and optimizer state."""
    with tempfile.TemporaryDirectory() as tmp:
        small_model(Path(tmp))
        return {name: (Path(tmp) / name).read_bytes() for name in FILES}


@functools.cache
def reference(backend: str) -> LoadedModel:
    with tempfile.TemporaryDirectory() as tmp:
        write_pair(Path(tmp), original())
        return load_model(Path(tmp) / "m.json", backend)


def write_pair(directory: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (directory / name).write_bytes(data)


def assert_equal_models(got: LoadedModel, want: LoadedModel) -> None:
    assert got.dtype == want.dtype and got.architecture == want.architecture and got.metadata == want.metadata
    params, expected = got.network.params(), want.network.params()
    assert list(params) == list(expected)
    assert all(as_f64_bytes(params[name]) == as_f64_bytes(expected[name]) for name in params)
    assert got.optimizer_state is not None and want.optimizer_state is not None
    assert got.optimizer_spec == want.optimizer_spec
    assert got.optimizer_state["step"] == want.optimizer_state["step"]
    got_arrays, want_arrays = got.optimizer_state["arrays"], want.optimizer_state["arrays"]
    assert list(got_arrays) == list(want_arrays)
    assert all(as_f64_bytes(got_arrays[name]) == as_f64_bytes(want_arrays[name]) for name in got_arrays)


def assert_equal_files(got: ModelFiles, want: ModelFiles) -> None:
    assert got.document.raw == want.document.raw
    assert got.arrays == want.arrays


@st.composite
def damage(draw: st.DrawFn) -> dict[str, bytes]:
    """1-3 byte flips or truncations, each in either file."""
    files = {name: bytearray(data) for name, data in original().items()}
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from(FILES))
        data = files[name]
        if not data:
            continue
        if draw(st.booleans()):
            position = draw(st.integers(0, len(data) - 1))
            data[position] ^= draw(st.integers(1, 255))
        else:
            del data[draw(st.integers(0, len(data) - 1)) :]
    return {name: bytes(data) for name, data in files.items()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=damage(), backend=st.sampled_from(["loops", "vectorized"]))
def test_random_damage_is_a_model_format_error_or_an_equal_model(files: dict[str, bytes], backend: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_pair(Path(tmp), files)
        try:
            loaded = load_model(Path(tmp) / "m.json", backend)
        except ModelFormatError as error:
            assert "\n" not in str(error) and ("m.json" in str(error) or "m.npz" in str(error))
            return
    assert files["m.json"] == original()["m.json"]  # the document checksum catches every change to the JSON
    assert_equal_models(loaded, reference(backend))


def test_every_single_byte_flip_and_truncation_of_the_json_is_refused() -> None:
    """The document checksum covers every byte of the JSON, whitespace included."""
    data = original()["m.json"]
    variants = [data[:i] + bytes([data[i] ^ (1 << (i % 8))]) + data[i + 1 :] for i in range(len(data))]
    variants += [data[:i] for i in range(len(data))]
    refused = 0
    for variant in variants:
        try:
            parse_document(variant, "m.json")
        except ModelFormatError as error:
            assert str(error).startswith("m.json: ")
            refused += 1
    assert refused == len(variants)


def test_a_flip_of_every_fifth_byte_of_the_npz_is_refused_or_unused() -> None:
    """Refused, or it hit a byte nothing reads (zip timestamps, "version made by", attributes)."""
    data = original()["m.npz"]
    want = read_model_of(original())
    variants = [data[:i] + bytes([data[i] ^ (1 << (i % 8))]) + data[i + 1 :] for i in range(0, len(data), 5)]
    variants += [data[:i] for i in range(0, len(data), 13)]
    loaded = refused = 0
    with tempfile.TemporaryDirectory() as tmp:
        write_pair(Path(tmp), original())
        for variant in variants:
            (Path(tmp) / "m.npz").write_bytes(variant)
            try:
                got = read_model(Path(tmp) / "m.json")
            except ModelFormatError as error:
                assert "m.npz" in str(error)
                refused += 1
                continue
            assert_equal_files(got, want)
            loaded += 1
    assert refused > 2 * loaded > 0


def read_model_of(files: dict[str, bytes]) -> ModelFiles:
    with tempfile.TemporaryDirectory() as tmp:
        write_pair(Path(tmp), files)
        return read_model(Path(tmp) / "m.json")


def test_the_reference_model_is_what_was_saved() -> None:
    want = reference("vectorized")
    assert want.dtype == "float32" and all(v.dtype == np.float32 for v in want.network.params().values())
    assert want.metadata["training"]["dataset"] == "toy"
