"""Model files (spec/model-format.md): round trips across backends, interoperability with NumPy,
one test per malformation, the optimizer section, the schema and ``scratchnet inspect``."""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from subprocesses import run_scratchnet, run_without

import scratchnet
from scratchnet.builders import BACKENDS, build_network
from scratchnet.cli import main
from scratchnet.core.architecture import ACTIVATION_LAYERS as ACTIVATIONS
from scratchnet.core.architecture import LOSSES, mlp
from scratchnet.core.errors import ConfigError, ModelFormatError, ScratchnetError
from scratchnet.io import load_model
from scratchnet.io.manifest import Limits, dump_document
from scratchnet.io.npy import MAGIC, NpyArray
from scratchnet.io.npz import format_npz, read_npz

ROOT = Path(__file__).resolve().parent.parent
BIG = {"max_arrays": 1000, "max_total_bytes": 1 << 30, "max_header": 1 << 20}


# --- helpers shared with test_model_fuzz.py and test_model_atomic.py ------------------------------


def _slot_value(k: int, v: float) -> float:
    """A made-up value for slot k of a parameter entry v: distinct per slot, and not v itself."""
    return v * (k + 0.5) - 0.25


class FakeOptimizer:
    """Follows the optimizer contract (describe / export_state / import_state) without doing any maths."""

    def __init__(self, net: Any, step: int = 3, slots: tuple[str, ...] = ("exp_avg", "exp_avg_sq")) -> None:
        self.net, self.step, self.slots = net, step, slots
        self.imported: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        return {"type": "Adam", "lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0}

    def export_state(self) -> dict[str, Any]:
        arrays: dict[str, Any] = {}
        for name, value in self.net.params().items():
            for k, slot in enumerate(self.slots):
                if isinstance(value, list):  # loops: nested lists
                    arrays[f"{name}.{slot}"] = _map_nested(value, partial(_slot_value, k))
                else:
                    arrays[f"{name}.{slot}"] = _slot_value(k, value)
        return {"step": self.step, "arrays": arrays}

    def import_state(self, state: dict[str, Any]) -> None:
        self.imported = state


def _map_nested(value: Any, f: Callable[[float], float]) -> Any:
    return [_map_nested(v, f) for v in value] if isinstance(value, list) else f(value)


def as_f64_bytes(value: Any) -> bytes:
    """A tensor of either backend widened to float64 (exact), as bytes: equal bytes mean equal bits."""
    return np.asarray(value, dtype=np.float64).tobytes()


def small_model(
    directory: Path, *, dtype: str = "float32", optimizer: bool = True, name: str = "m", seed: int = 5
) -> Path:
    """A saved 4-6-3 model with dropout, training metadata and (by default) optimizer state; returns NAME.json."""
    net = build_network(mlp([4, 6, 3], dropout=0.25), backend="vectorized", dtype=dtype, seed=seed)
    metadata = {
        "training": {
            "dataset": "toy",
            "epochs": 2,
            "seed": 5,
            "optimizer": {"type": "Adam", "lr": 0.001},
            "final_metrics": {"accuracy": 0.75, "loss": 0.5},
            "history": [{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}],
        },
        "note": "made by the tests",
    }
    scratchnet.save(net, directory / name, metadata=metadata, optimizer=FakeOptimizer(net) if optimizer else None)
    return directory / f"{name}.json"


def reseal(json_path: Path, mutate: Callable[[dict[str, Any]], Any]) -> None:
    """Edit the document and write it back with a valid document checksum, as a (buggy) writer would."""
    document = json.loads(json_path.read_text())
    mutate(document)
    json_path.write_bytes(dump_document(document))


def rewrite_npz(npz_path: Path, mutate: Callable[[dict[str, NpyArray]], Any]) -> None:
    arrays = read_npz(npz_path, "test", **BIG)
    mutate(arrays)
    npz_path.write_bytes(format_npz(arrays))


def assert_cli_fails_with_one_line(capsys: pytest.CaptureFixture[str], path: Path, file_name: str) -> str:
    capsys.readouterr()
    assert main(["inspect", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("scratchnet inspect: error: ") and file_name in err, err
    return err


# --- round trips ----------------------------------------------------------------------------------


@st.composite
def architectures(draw: st.DrawFn) -> dict[str, Any]:
    """1-3 Dense layers of widths 1-12 with any activation, loss and optional dropout."""
    sizes = draw(st.lists(st.integers(1, 12), min_size=2, max_size=4))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    return mlp(
        sizes,
        activation=draw(st.sampled_from(sorted(ACTIVATIONS))),
        loss=loss,
        output=draw(st.sampled_from(sorted(ACTIVATIONS))),
        dropout=draw(st.sampled_from([0.0, 0.3])),
        l2=draw(st.sampled_from([0.0, 0.01])),
    )


def _to_float32(value: Any) -> Any:
    return _map_nested(value, lambda v: struct.unpack("<f", struct.pack("<f", v))[0])


def _outputs(net: Any, inputs: Any) -> Any:
    return np.asarray(net.forward(inputs if hasattr(net, "dtype") else inputs.tolist()), dtype=np.float64)


def _compare_predictions(a: Any, b: Any, inputs: Any, exact: bool, float32: bool) -> None:
    out_a, out_b = _outputs(a, inputs), _outputs(b, inputs)
    if exact:
        assert out_a.tobytes() == out_b.tobytes()
    else:
        rtol, atol = (1e-4, 1e-5) if float32 else (1e-12, 1e-12)
        np.testing.assert_allclose(out_a, out_b, rtol=rtol, atol=atol)
        if out_a.shape[1] > 1:  # classes agree wherever the top two are further apart than the tolerance
            top2 = np.sort(out_a, axis=1)[:, -2:]
            clear = top2[:, 1] - top2[:, 0] > 2 * (atol + rtol * np.abs(top2[:, 1]))
        else:
            clear = np.abs(out_a[:, 0] - 0.5) > 2 * (atol + rtol)
        assert np.array_equal(
            np.asarray(a.predict(inputs if hasattr(a, "dtype") else inputs.tolist()))[clear],
            np.asarray(b.predict(inputs if hasattr(b, "dtype") else inputs.tolist()))[clear],
        )


@settings(max_examples=25, deadline=None)
@given(
    description=architectures(),
    dtype=st.sampled_from(["float32", "float64"]),
    seed=st.integers(0, 2**32),
    specials=st.booleans(),
)
def test_parameters_are_bit_exact_across_every_pair_of_backends(
    description: dict[str, Any], dtype: str, seed: int, specials: bool
) -> None:
    inputs = np.random.default_rng(seed).normal(size=(5, description["layers"][0]["in_features"]))
    with tempfile.TemporaryDirectory() as tmp:
        for source in BACKENDS:
            net = build_network(description, backend=source, dtype=dtype, seed=seed)
            params = net.params()
            if source == "loops" and dtype == "float32":
                params = {name: _to_float32(value) for name, value in params.items()}
            if specials:  # signed zero and a float32 subnormal must survive every trip
                first = next(iter(params))
                flat = np.array(params[first], dtype=np.float64).ravel()
                flat[0], flat[-1] = -0.0, 2.0**-149
                params[first] = flat.reshape(np.shape(params[first])).tolist()
            net.set_params(params)
            expected = {name: as_f64_bytes(value) for name, value in net.params().items()}
            base = Path(tmp) / source
            scratchnet.save(net, base, dtype=dtype)
            saved = json.loads(base.with_suffix(".json").read_text())
            assert saved["architecture"] == net.describe() and saved["dtype"] == dtype
            for target in BACKENDS:
                loaded = load_model(base, target)
                assert loaded.dtype == dtype and loaded.architecture == net.describe()
                got = loaded.network.params()
                assert {name: as_f64_bytes(value) for name, value in got.items()} == expected
                if target == "vectorized":
                    assert all(value.dtype == np.dtype(dtype) for value in got.values())
                _compare_predictions(net, loaded.network, inputs, exact=source == target, float32=dtype == "float32")
                # And back again: the re-saved arrays have the very same checksums.
                again = Path(tmp) / f"{source}-{target}"
                scratchnet.save(loaded.network, again, dtype=dtype)
                resaved = json.loads(again.with_suffix(".json").read_text())
                assert resaved["parameters"] == saved["parameters"]


def test_a_float32_model_loads_into_loops_as_the_same_values(tmp_path: Path) -> None:
    net = build_network(mlp([3, 4, 2]), backend="vectorized", dtype="float32", seed=1)
    scratchnet.save(net, tmp_path / "m")
    loops = scratchnet.load(tmp_path / "m", backend="loops")
    for name, value in net.params().items():
        assert np.array_equal(np.asarray(loops.params()[name]), value.astype(np.float64))
    # Saved back from loops it is float64 unless asked: the values widen exactly.
    scratchnet.save(loops, tmp_path / "wide")
    assert load_model(tmp_path / "wide", "vectorized").dtype == "float64"
    scratchnet.save(loops, tmp_path / "narrow", dtype="float32")
    narrow = json.loads((tmp_path / "narrow.json").read_text())
    assert narrow["parameters"] == json.loads((tmp_path / "m.json").read_text())["parameters"]


@pytest.mark.parametrize("given_as", ["m", "m.json", "m.npz"])
def test_a_model_is_named_as_name_name_json_or_name_npz(tmp_path: Path, given_as: str) -> None:
    net = build_network(mlp([2, 2]), backend="loops", seed=3)
    scratchnet.save(net, tmp_path / given_as)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.npz"]
    assert json.loads((tmp_path / "m.json").read_text())["arrays"] == "m.npz"
    for name in ("m", "m.json", "m.npz"):
        assert scratchnet.load(str(tmp_path / name), backend="loops").params() == net.params()


# --- the optimizer section and metadata -----------------------------------------------------------


@pytest.mark.parametrize("source", BACKENDS)
@pytest.mark.parametrize("target", BACKENDS)
def test_optimizer_state_round_trips_in_the_loaded_backends_tensors(tmp_path: Path, source: str, target: str) -> None:
    net = build_network(mlp([3, 5, 2]), backend=source, seed=2)
    optimizer = FakeOptimizer(net, step=17)
    scratchnet.save(net, tmp_path / "m", optimizer=optimizer)
    document = json.loads((tmp_path / "m.json").read_text())
    assert document["optimizer"]["spec"] == optimizer.describe() and document["optimizer"]["step"] == 17
    assert [e["name"] for e in document["optimizer"]["arrays"]] == list(optimizer.export_state()["arrays"])
    with zipfile.ZipFile(tmp_path / "m.npz") as zf:
        assert "optimizer.0.weight.exp_avg_sq.npy" in zf.namelist()
    loaded = load_model(tmp_path / "m", target)
    state = loaded.optimizer_state
    assert state is not None and set(state) == {"step", "arrays"} and state["step"] == 17
    assert loaded.optimizer_spec == optimizer.describe()
    exported = optimizer.export_state()["arrays"]
    assert list(state["arrays"]) == list(exported)
    for name, value in state["arrays"].items():
        assert as_f64_bytes(value) == as_f64_bytes(exported[name])
        if target == "loops":
            assert isinstance(value, list)
        else:
            assert isinstance(value, np.ndarray) and value.flags.writeable
    resumed = FakeOptimizer(loaded.network)
    resumed.import_state(state)
    assert resumed.imported is state


def test_a_model_without_optimizer_state_loads_with_none(tmp_path: Path) -> None:
    json_path = small_model(tmp_path, optimizer=False)
    assert "optimizer" not in json.loads(json_path.read_text())
    assert load_model(json_path, "loops").optimizer_state is None


def test_metadata_keeps_unknown_fields_and_sets_version_and_time(tmp_path: Path) -> None:
    net = build_network(mlp([2, 3]), backend="loops", seed=0)
    scratchnet.save(net, tmp_path / "m", metadata={"created": "1999-01-01T00:00:00Z", "mine": {"a": [1, 2]}})
    metadata = load_model(tmp_path / "m", "loops").metadata
    assert metadata["mine"] == {"a": [1, 2]} and metadata["scratchnet_version"] == scratchnet.__version__
    assert metadata["created"] != "1999-01-01T00:00:00Z" and metadata["created"].endswith("Z")


@pytest.mark.parametrize(
    "metadata",
    [{"loss": float("nan")}, {1: "x"}, {"x": object()}, {"training": {"epochs": "five"}}, {"training": []}],
)
def test_save_refuses_metadata_a_reader_would_refuse(tmp_path: Path, metadata: Any) -> None:
    net = build_network(mlp([2, 3]), backend="loops", seed=0)
    with pytest.raises(ConfigError):
        scratchnet.save(net, tmp_path / "m", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_an_unknown_dtype(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dtype"):
        scratchnet.save(build_network(mlp([2, 3]), backend="loops"), tmp_path / "m", dtype="float16")


def test_unknown_metadata_and_extension_members_are_ignored(tmp_path: Path) -> None:
    json_path = small_model(tmp_path)
    reseal(json_path, lambda d: d.update(extensions={"future": {"anything": [1, "two"]}}))
    reseal(json_path, lambda d: d["metadata"].update(future_field={"x": 1}))
    loaded = load_model(json_path, "loops")
    assert loaded.metadata["future_field"] == {"x": 1}


def test_an_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="backend"):
        load_model(small_model(tmp_path), "cuda")


# --- interoperability -----------------------------------------------------------------------------


def test_the_npz_loads_with_numpy_without_pickle(tmp_path: Path) -> None:
    json_path = small_model(tmp_path)
    net = scratchnet.load(json_path, backend="vectorized")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            list(net.params()) + [f"optimizer.{n}" for n in FakeOptimizer(net).export_state()["arrays"]]
        )
        for name, value in net.params().items():
            assert npz[name].dtype == np.dtype("<f4") and npz[name].tobytes() == value.tobytes()


@pytest.mark.parametrize("variant", ["savez", "savez_compressed", "big-endian", "fortran"])
def test_arrays_written_by_numpy_load_and_verify(tmp_path: Path, variant: str) -> None:
    json_path = small_model(tmp_path)
    before = load_model(json_path, "loops")
    with np.load(tmp_path / "m.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    if variant == "big-endian":
        arrays = {name: value.astype(value.dtype.newbyteorder(">")) for name, value in arrays.items()}
    if variant == "fortran":
        arrays = {name: np.asfortranarray(value) for name, value in arrays.items()}
    (np.savez_compressed if variant == "savez_compressed" else np.savez)(tmp_path / "m.npz", **arrays)
    after = load_model(json_path, "loops")
    assert after.network.params() == before.network.params() and after.optimizer_state == before.optimizer_state


def test_loops_saves_and_loads_with_numpy_unimportable(tmp_path: Path) -> None:
    script = f"""
        import scratchnet
        from scratchnet.builders import build_network
        from scratchnet.core.architecture import mlp
        from scratchnet.io import load_model
        from scratchnet.cli import main

        class Opt:
            def __init__(self, net): self.net = net
            def describe(self): return {{"type": "SGD", "lr": 0.1}}
            def export_state(self):
                return {{"step": 2, "arrays": {{n + ".momentum_buffer": v for n, v in self.net.params().items()}}}}

        net = build_network(mlp([3, 4, 2]), backend="loops", seed=1)
        scratchnet.save(net, {str(tmp_path / "m")!r}, optimizer=Opt(net), dtype="float32")
        loaded = load_model({str(tmp_path / "m.json")!r}, "loops")
        assert loaded.dtype == "float32" and loaded.optimizer_state["step"] == 2
        assert main(["inspect", {str(tmp_path / "m.json")!r}]) == 0
        assert "numpy" not in sys.modules
        print("ok without numpy")
        """
    result = run_without("numpy", script, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "ok without numpy" in result.stdout


# --- malformations: each is a ModelFormatError naming the file, and inspect prints one line ---------


class Boom:
    """Unpickling this runs ``open(path, "w")``: a file appearing means something was unpickled."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _object_array_npy(marker: Path) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([Boom(str(marker))], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def _replace_npz_entry(npz_path: Path, entry: str, data: bytes) -> None:
    with zipfile.ZipFile(npz_path) as zf:
        entries = {info.filename: zf.read(info) for info in zf.infolist()}
    entries[entry] = data
    with zipfile.ZipFile(npz_path, "w") as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)


def _oversized_header_npy() -> bytes:
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (6, 4), }"
    header += " " * (70_000 - len(header) - 1) + "\n"
    return MAGIC + bytes((2, 0)) + struct.pack("<I", len(header)) + header.encode("latin-1") + bytes(96)


def _corrupt_entry_payload(npz_path: Path) -> None:
    data = bytearray(npz_path.read_bytes())
    with zipfile.ZipFile(npz_path) as zf:
        info = zf.getinfo("0.weight.npy")
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_len + extra_len + 130] ^= 0x40  # a float inside the payload
    npz_path.write_bytes(bytes(data))


def _set_layer_type(document: dict[str, Any]) -> None:
    document["architecture"]["layers"][1]["type"] = "Conv3D"


def _set_manifest(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        document["parameters"][0][field] = value

    return mutate


def _swap_array(name: str, make: Callable[[NpyArray], NpyArray]) -> Callable[[dict[str, NpyArray]], None]:
    def mutate(arrays: dict[str, NpyArray]) -> None:
        arrays[name] = make(arrays[name])

    return mutate


def _flip_first_value(array: NpyArray) -> NpyArray:
    data = bytearray(array.data)
    data[0] ^= 1
    return NpyArray(array.dtype, array.shape, bytes(data))


def swap_in_npz_of(other_json: Path, directory: Path) -> None:
    """Replace DIRECTORY/m.npz with the .npz saved next to OTHER_JSON (a different model)."""
    os.replace(other_json.with_suffix(".npz"), directory / "m.npz")


# Each case damages a fresh small model (dtype float32, with optimizer state) and names the file the
# message must name and a phrase of the problem.
CASES: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "malformed JSON": (
        lambda d: (d / "m.json").write_text('{"format": "scratchnet-model", "version": 1,'),
        "m.json",
        "malformed JSON",
    ),
    "not an object": (lambda d: (d / "m.json").write_text("[1, 2]"), "m.json", "not an object"),
    "duplicate key": (lambda d: (d / "m.json").write_text('{"format": 1, "format": 2}'), "m.json", "appears twice"),
    "NaN": (lambda d: (d / "m.json").write_text('{"format": NaN}'), "m.json", "NaN is not a JSON number"),
    "missing format tag": (
        lambda d: reseal(d / "m.json", lambda doc: doc.pop("format")),
        "m.json",
        "no 'format' field",
    ),
    "wrong format tag": (
        lambda d: reseal(d / "m.json", lambda doc: doc.update(format="keras")),
        "m.json",
        "format is 'keras'",
    ),
    "unknown version": (
        lambda d: reseal(d / "m.json", lambda doc: doc.update(version=4)),
        "m.json",
        "format version 4 is not supported (this reader supports versions 1, 2 and 3)",
    ),
    "document edited": (
        lambda d: (d / "m.json").write_text((d / "m.json").read_text().replace('"epochs": 2', '"epochs": 3')),
        "m.json",
        "document checksum mismatch",
    ),
    "unknown top-level field": (
        lambda d: reseal(d / "m.json", lambda doc: doc.update(weights_are_quantized=True)),
        "m.json",
        "unknown top-level fields ['weights_are_quantized']",
    ),
    "unknown layer type": (lambda d: reseal(d / "m.json", _set_layer_type), "m.json", "unknown type 'Conv3D'"),
    "unbuildable architecture": (
        lambda d: reseal(d / "m.json", lambda doc: doc["architecture"]["layers"][0].update(init="magic")),
        "m.json",
        "unknown initializer 'magic'",
    ),
    "npz reference with a path": (
        lambda d: reseal(d / "m.json", lambda doc: doc.update(arrays="../m.npz")),
        "m.json",
        "not a path",
    ),
    "npz reference absolute": (
        lambda d: reseal(d / "m.json", lambda doc: doc.update(arrays=str(d / "m.npz"))),
        "m.json",
        "not a path",
    ),
    "npz file missing": (lambda d: (d / "m.npz").unlink(), "m.npz", "missing"),
    "missing array": (lambda d: rewrite_npz(d / "m.npz", lambda a: a.pop("3.bias")), "m.npz", "missing array '3.bias'"),
    "missing optimizer array": (
        lambda d: rewrite_npz(d / "m.npz", lambda a: a.pop("optimizer.0.bias.exp_avg")),
        "m.npz",
        "missing array 'optimizer.0.bias.exp_avg'",
    ),
    "extra array": (
        lambda d: rewrite_npz(d / "m.npz", lambda a: a.update(extra=NpyArray("<f4", (1,), bytes(4)))),
        "m.npz",
        "unexpected array 'extra'",
    ),
    "wrong shape in the npz": (
        lambda d: rewrite_npz(d / "m.npz", _swap_array("0.weight", lambda x: NpyArray(x.dtype, (4, 6), x.data))),
        "m.npz",
        "array '0.weight' has shape (4, 6)",
    ),
    "wrong shape in the manifest": (
        lambda d: reseal(d / "m.json", _set_manifest("shape", [4, 6])),
        "m.json",
        "has shape (4, 6) in the manifest",
    ),
    "wrong dtype in the npz": (
        lambda d: rewrite_npz(d / "m.npz", _swap_array("0.weight", lambda x: NpyArray("<i4", x.shape, x.data))),
        "m.npz",
        "array '0.weight' has dtype <i4",
    ),
    "wrong dtype in the manifest": (
        lambda d: reseal(d / "m.json", _set_manifest("dtype", "<f8")),
        "m.json",
        "has dtype <f8 in the manifest",
    ),
    "checksum mismatch": (
        lambda d: rewrite_npz(d / "m.npz", _swap_array("0.weight", _flip_first_value)),
        "m.npz",
        "checksum mismatch for array '0.weight'",
    ),
    "mismatched pair": (
        lambda d: swap_in_npz_of(small_model(d / "other", seed=6), d),
        "m.npz",
        "checksum mismatch",
    ),
    "truncated npz": (
        lambda d: (d / "m.npz").write_bytes((d / "m.npz").read_bytes()[:300]),
        "m.npz",
        "not a readable npz",
    ),
    "corrupted zip entry": (lambda d: _corrupt_entry_payload(d / "m.npz"), "m.npz", "cannot read npz entry"),
    "oversized header": (
        lambda d: _replace_npz_entry(d / "m.npz", "0.weight.npy", _oversized_header_npy()),
        "m.npz",
        "header",
    ),
}


@pytest.fixture
def damaged(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, str, str]:
    (tmp_path / "other").mkdir()
    small_model(tmp_path)
    damage, file_name, problem = CASES[request.param]
    damage(tmp_path)
    return tmp_path / "m.json", file_name, problem


@pytest.mark.parametrize("damaged", list(CASES), indirect=True)
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_malformation_is_a_model_format_error_naming_the_file(
    damaged: tuple[Path, str, str], backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path, file_name, problem = damaged
    with pytest.raises(ModelFormatError) as caught:
        load_model(json_path, backend)
    message = str(caught.value)
    assert isinstance(caught.value, ScratchnetError)
    assert file_name in message and problem in message, message
    assert "\n" not in message
    assert_cli_fails_with_one_line(capsys, json_path, file_name)


def test_an_object_array_with_a_pickle_payload_is_refused_unpickled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path = small_model(tmp_path)
    # The payload is live: NumPy with allow_pickle=True runs it.
    proof = tmp_path / "proof"
    np.load(io.BytesIO(_object_array_npy(proof)), allow_pickle=True)
    assert proof.exists()
    marker = tmp_path / "unpickled"
    _replace_npz_entry(tmp_path / "m.npz", "0.weight.npy", _object_array_npy(marker))
    for backend in BACKENDS:
        with pytest.raises(ModelFormatError, match=r"m\.npz.*0\.weight") as caught:
            load_model(json_path, backend)
        assert "object" in str(caught.value) or "descr" in str(caught.value) or "dtype" in str(caught.value)
    assert_cli_fails_with_one_line(capsys, json_path, "m.npz")
    assert not marker.exists()


def test_sizes_are_bounded_before_reading(tmp_path: Path) -> None:
    json_path = small_model(tmp_path)
    with pytest.raises(ModelFormatError, match=r"m\.json.*larger than the limit of 100 bytes"):
        load_model(json_path, "loops", limits=Limits(json_bytes=100))
    with pytest.raises(ModelFormatError, match=r"m\.json.*more than the limit of 64"):
        load_model(json_path, "loops", limits=Limits(array_bytes=64))
    with pytest.raises(ModelFormatError, match=r"m\.json.*lists \d+ arrays, more than the limit of 2"):
        load_model(json_path, "loops", limits=Limits(arrays=2))

    # A huge architecture is refused from the JSON alone, before any array is read or allocated.
    def enlarge(document: dict[str, Any]) -> None:
        document["architecture"]["layers"][0]["in_features"] = 10**9
        document["architecture"]["layers"][0].pop("init")

    reseal(json_path, enlarge)
    with pytest.raises(ModelFormatError, match="more than the limit"):
        load_model(json_path, "loops")


# --- the schema -----------------------------------------------------------------------------------


def test_saved_files_validate_against_the_json_schema(tmp_path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "spec" / "model-format.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    documents = [
        json.loads(small_model(tmp_path, dtype="float64", optimizer=True, name="a").read_text()),
        json.loads(small_model(tmp_path, dtype="float32", optimizer=False, name="b").read_text()),
    ]
    loops = build_network(mlp([3, 2], loss="bce", output="sigmoid"), backend="loops")
    scratchnet.save(loops, tmp_path / "c")
    documents.append(json.loads((tmp_path / "c.json").read_text()))
    for document in documents:
        errors = [error.message for error in validator.iter_errors(document)]
        assert errors == []
    bad = dict(documents[0], surprise=1)
    assert not validator.is_valid(bad)
    assert not validator.is_valid(dict(documents[0], version=4))
    assert not validator.is_valid(dict(documents[0], arrays="sub/m.npz"))
    with_shape = dict(documents[0], architecture=dict(documents[0]["architecture"], input_shape=[4]))
    assert validator.is_valid(dict(with_shape, version=2)) and not validator.is_valid(with_shape)  # version 1


def test_the_schema_lists_the_layer_registry_s_types_and_options() -> None:
    from scratchnet.core.registry import LAYER_TYPES

    schema = json.loads((ROOT / "spec" / "model-format.schema.json").read_text())
    found: dict[str, tuple[set[str], set[str]]] = {}
    for branch in schema["$defs"]["layer"]["oneOf"]:
        kind = branch["properties"]["type"]
        names = kind.get("enum", [kind.get("const")])
        for name in names:
            found[name] = (set(branch["properties"]) - {"type"}, set(branch["required"]) - {"type"})
    expected = {
        name: ({option.name for option in entry.options}, {option.name for option in entry.options if option.required})
        for name, entry in LAYER_TYPES.items()
    }
    assert found == expected


# --- scratchnet inspect ---------------------------------------------------------------------------


def test_inspect_prints_the_architecture_totals_metadata_and_checksums(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path = small_model(tmp_path)
    assert main(["inspect", str(json_path)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "\x1b" not in out  # plain text, no colours
    lines = out.splitlines()
    assert lines[0] == f"model: {json_path} + m.npz"
    assert "dtype float32" in lines[1] and "input: 4 features" in out
    header = next(line for line in lines if line.startswith("layer"))
    assert header.split() == ["layer", "type", "output", "options", "parameters", "count"]
    dense = next(line for line in lines if " Dense " in line)
    assert "weight (6, 4), bias (6,)" in dense and dense.split()[-1] == "30"
    assert "Dropout" in out and "rate 0.25" in out
    assert "total: 51 parameters in 4 arrays (204 bytes)" in out
    assert "training: dataset toy, 2 epochs, seed 5, optimizer Adam (lr 0.001)" in out
    assert "final metrics: accuracy 75.00%, loss 0.5" in out  # accuracies as percentages
    assert "optimizer state: Adam (lr 0.001, betas [0.9, 0.999], eps 1e-08, weight_decay 0), step 3, 8 arrays" in out
    assert lines[-1] == "checksums: all 12 arrays verify (sha256): 4 parameters, 8 optimizer state"


def test_inspect_as_a_subprocess_exits_1_with_one_line_on_damage(tmp_path: Path) -> None:
    json_path = small_model(tmp_path)
    good = run_scratchnet("inspect", str(json_path), timeout=60)
    assert good.returncode == 0 and "checksums: all 12 arrays verify" in good.stdout
    rewrite_npz(tmp_path / "m.npz", _swap_array("0.weight", _flip_first_value))
    bad = run_scratchnet("inspect", str(json_path), timeout=60)
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "m.npz" in bad.stderr and "checksum mismatch" in bad.stderr


# --- the spec's example ---------------------------------------------------------------------------


def _spec_block(language: str) -> str:
    text = (ROOT / "spec" / "model-format.md").read_text()
    start = text.index(f"```{language}\n") + len(f"```{language}\n")
    return text[start : text.index("```", start)]


def test_the_spec_example_is_a_valid_document() -> None:
    from scratchnet.io.manifest import parse_document

    document = parse_document(_spec_block("json").encode("ascii"), "model-format.md")
    assert document.arrays_file == "iris.npz" and document.optimizer is not None
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((ROOT / "spec" / "model-format.schema.json").read_text())
    jsonschema.validate(document.raw, schema, cls=jsonschema.Draft202012Validator)


def test_the_spec_standard_library_snippet_reads_a_saved_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small_model(tmp_path, name="iris")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec(_spec_block("python"), namespace)
    assert len(namespace["weights"]) == 24
