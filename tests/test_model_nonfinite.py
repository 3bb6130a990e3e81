"""Model files hold finite numbers only: save refuses a NaN or an infinity (writing nothing), load and
``scratchnet inspect`` refuse a file holding one (spec/model-format.md, section 3 check 7 and section 4)."""

from __future__ import annotations

import copy
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from subprocesses import run_without
from test_model_format import (
    FakeOptimizer,
    assert_cli_fails_with_one_line,
    reseal,
    rewrite_npz,
    small_model,
)

import scratchnet
from scratchnet.builders import BACKENDS, build_network
from scratchnet.core.architecture import mlp
from scratchnet.core.errors import ConfigError, ModelFormatError
from scratchnet.io import load_model
from scratchnet.io.manifest import OPTIMIZER_PREFIX, first_non_finite, sha256_hex
from scratchnet.io.npy import NpyArray

NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
DTYPES = ("float32", "float64")
FORMATS = {"<f4": ("<I", "<f", 32), "<f8": ("<Q", "<d", 64)}


def _first_by_math(array: NpyArray) -> int | None:
    """The reference answer: unpack every value and ask math.isfinite."""
    values = struct.unpack(f"<{array.size}{'f' if array.itemsize == 4 else 'd'}", array.data)
    return next((i for i, v in enumerate(values) if not math.isfinite(v)), None)


# --- the finiteness test on the bytes ---------------------------------------------------------------


@pytest.mark.parametrize("dtype", sorted(FORMATS))
@given(data=st.data())
def test_every_bit_pattern_is_judged_as_math_isfinite_does(dtype: str, data: st.DataObject) -> None:
    bits_code, _, width = FORMATS[dtype]
    # Whole bit patterns, and patterns forced to a full exponent (NaNs with any payload, infinities).
    exponent = 0x7F800000 if width == 32 else 0x7FF0000000000000
    pattern = st.integers(0, 2**width - 1) | st.integers(0, 2**width - 1).map(lambda b: b | exponent)
    patterns = data.draw(st.lists(pattern, max_size=40))
    array = NpyArray(dtype, (len(patterns),), b"".join(struct.pack(bits_code, b) for b in patterns))
    assert first_non_finite(array) == _first_by_math(array)


# Zeros, the smallest subnormals, the largest finite values (float64's only as <f8) and the non-finite.
EDGES = [0.0, -0.0, 5e-324, 1.4e-45, -1.0, 3.4028234663852886e38, -1.7976931348623157e308, *NON_FINITE.values()]


@pytest.mark.parametrize(
    ("dtype", "value"), [(d, v) for d in sorted(FORMATS) for v in EDGES if d == "<f8" or not 3.5e38 < abs(v) < math.inf]
)
def test_edge_values(dtype: str, value: float) -> None:
    float_code = FORMATS[dtype][1]
    array = NpyArray(
        dtype, (3,), struct.pack(float_code, 1.0) + struct.pack(float_code, value) + struct.pack(float_code, 2.0)
    )
    assert first_non_finite(array) == (None if math.isfinite(value) else 1)


def test_only_float_arrays_are_judged() -> None:
    with pytest.raises(ValueError, match="float array"):
        first_non_finite(NpyArray("<i4", (1,), bytes(4)))


# --- save refuses, and writes nothing ---------------------------------------------------------------


def _network_with(backend: str, dtype: str, name: str, index: tuple[int, ...], value: float) -> Any:
    """A 3-4-2 network whose parameter ``name`` holds ``value`` at ``index``."""
    net = build_network(
        mlp([3, 4, 2]), backend=backend, seed=1, **({"dtype": dtype} if backend == "vectorized" else {})
    )
    params = {key: copy.deepcopy(tensor) for key, tensor in net.params().items()}
    target = params[name]
    for i in index[:-1]:
        target = target[i]
    target[index[-1]] = value
    net.set_params(params)
    return net


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", list(NON_FINITE))
def test_save_refuses_a_non_finite_parameter_and_writes_nothing(
    tmp_path: Path, backend: str, dtype: str, value: str
) -> None:
    net = _network_with(backend, dtype, "0.weight", (2, 1), NON_FINITE[value])
    with pytest.raises(ConfigError) as caught:
        scratchnet.save(net, tmp_path / "m", dtype=dtype)
    message = str(caught.value)
    assert message.startswith("cannot save: ") and "\n" not in message
    assert f"array '0.weight' holds {value} at [2, 1]" in message, message
    assert list(tmp_path.iterdir()) == []  # neither file, nor a temporary one


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_refused_save_leaves_the_previous_model(tmp_path: Path, backend: str) -> None:
    scratchnet.save(build_network(mlp([3, 4, 2]), backend=backend, seed=2), tmp_path / "m")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ConfigError, match=r"array '2\.bias' holds nan at \[1\]"):
        scratchnet.save(_network_with(backend, "float64", "2.bias", (1,), math.nan), tmp_path / "m")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    load_model(tmp_path / "m", backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # NumPy warns when the cast overflows
def test_a_value_too_large_for_float32_rounds_to_infinity_and_is_refused(tmp_path: Path, backend: str) -> None:
    net = _network_with(backend, "float64", "0.bias", (3,), -1e39)
    with pytest.raises(ConfigError, match=r"array '0\.bias' holds -inf at \[3\]"):
        scratchnet.save(net, tmp_path / "m", dtype="float32")
    assert list(tmp_path.iterdir()) == []
    scratchnet.save(net, tmp_path / "m", dtype="float64")  # float64 holds it
    assert list(load_model(tmp_path / "m", "loops").network.params()["0.bias"])[3] == -1e39


class _NanOptimizer(FakeOptimizer):
    def export_state(self) -> dict[str, Any]:
        state = super().export_state()
        arrays = state["arrays"]
        arrays["0.bias.exp_avg_sq"] = copy.deepcopy(arrays["0.bias.exp_avg_sq"])
        arrays["0.bias.exp_avg_sq"][0] = math.nan
        return state


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_refuses_non_finite_optimizer_state(tmp_path: Path, backend: str) -> None:
    net = build_network(mlp([3, 4, 2]), backend=backend, seed=1)
    with pytest.raises(ConfigError, match=r"array 'optimizer\.0\.bias\.exp_avg_sq' holds nan at \[0\]"):
        scratchnet.save(net, tmp_path / "m", optimizer=_NanOptimizer(net))
    assert list(tmp_path.iterdir()) == []


# --- load and inspect refuse a file holding one -----------------------------------------------------


def forge(json_path: Path, key: str, flat_index: int, value: float) -> None:
    """Put ``value`` into array ``key`` of the .npz and reseal the document with the array's new checksum,
    as a writer without this check would: every checksum in the pair is consistent."""
    new_sha: dict[str, str] = {}

    def put(arrays: dict[str, NpyArray]) -> None:
        old = arrays[key]
        data = bytearray(old.data)
        struct.pack_into(FORMATS[old.dtype][1], data, flat_index * old.itemsize, value)
        arrays[key] = NpyArray(old.dtype, old.shape, bytes(data))
        new_sha["value"] = sha256_hex(arrays[key].data)

    def update(document: dict[str, Any]) -> None:
        if key.startswith(OPTIMIZER_PREFIX):
            entries, name = document["optimizer"]["arrays"], key[len(OPTIMIZER_PREFIX) :]
        else:
            entries, name = document["parameters"], key
        (entry,) = [e for e in entries if e["name"] == name]
        entry["sha256"] = new_sha["value"]

    rewrite_npz(json_path.with_suffix(".npz"), put)
    reseal(json_path, update)


# (array, flat index, the position the message gives): 0.weight is (6, 4), 3.bias is (3,).
FORGERIES = {
    "parameter": ("0.weight", 9, "[2, 1]"),
    "optimizer array": ("optimizer.3.bias.exp_avg", 2, "[2]"),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", list(NON_FINITE))
@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_load_and_inspect_refuse_a_file_holding_a_non_finite_value(
    tmp_path: Path, dtype: str, value: str, forgery: str, capsys: pytest.CaptureFixture[str]
) -> None:
    key, flat_index, position = FORGERIES[forgery]
    json_path = small_model(tmp_path, dtype=dtype)
    forge(json_path, key, flat_index, NON_FINITE[value])
    expected = f"{tmp_path / 'm.npz'}: array {key!r} holds {value} at {position}; model files hold finite numbers only"
    for backend in BACKENDS:
        with pytest.raises(ModelFormatError) as caught:
            load_model(json_path, backend)
        assert str(caught.value) == expected
    err = assert_cli_fails_with_one_line(capsys, json_path, "m.npz")
    assert err == f"scratchnet inspect: error: {expected}\n"


def test_inspect_exits_1_naming_the_array_without_numpy(tmp_path: Path) -> None:
    json_path = small_model(tmp_path)
    forge(json_path, "optimizer.0.weight.exp_avg_sq", 0, math.nan)
    script = f"""
        from scratchnet.cli import main
        code = main(["inspect", {str(json_path)!r}])
        assert "numpy" not in sys.modules
        sys.exit(code)
        """
    result = run_without("numpy", script, timeout=60)
    assert result.returncode == 1 and result.stdout == "", result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "m.npz: array 'optimizer.0.weight.exp_avg_sq' holds nan at [0, 0]" in result.stderr


def test_the_forged_file_is_otherwise_valid(tmp_path: Path) -> None:
    """The forgery changes one value and its checksum only: a finite value forged the same way loads."""
    json_path = small_model(tmp_path)
    forge(json_path, "0.weight", 9, 0.5)
    loaded = load_model(json_path, "loops")
    assert loaded.network.params()["0.weight"][2][1] == 0.5
