"""scratchnet export --to safetensors and scratchnet import FILE.safetensors: the names
torch.nn.Sequential gives, the architecture in __metadata__, bit-identical parameters, and damaged
files refused in one line (issue 17, items 3, 4 and 5)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from interop_models import CNN, EVERY_LAYER, cli, files_in, random_model, trained

import scratchnet
from scratchnet.core.architecture import plan
from scratchnet.core.errors import InteropError
from scratchnet.interop import export_model, import_model
from scratchnet.interop.torch_names import TORCH_MODULES, training_steps

safetensors = pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402


def read(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    with safe_open(str(path), framework="numpy") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata()  # noqa: SIM118


def test_the_tensors_have_the_names_and_layouts_of_torch_sequential(tmp_path: Path) -> None:
    model = random_model(tmp_path)
    path = export_model(model, "safetensors").paths[0]
    assert path == model.with_suffix(".safetensors")
    tensors, metadata = read(path)
    params = scratchnet.load(model).params()
    # Sequential counts every module: 0 Conv2d, 1 BatchNorm2d, ..., 10 BatchNorm1d, ..., 15 Linear
    counters = {"1.num_batches_tracked", "10.num_batches_tracked"}
    assert set(tensors) == set(params) | counters
    for name, value in params.items():
        assert tensors[name].dtype == np.float32 and tensors[name].tobytes() == value.tobytes()
    assert tensors["0.weight"].shape == (4, 2, 3, 3) and tensors["15.weight"].shape == (4, 5)  # (out, in)
    for name in counters:
        assert tensors[name].dtype == np.int64 and tensors[name].shape == ()
        assert int(tensors[name]) == 0  # a model that records no training
    assert json.loads(metadata["architecture"]) == scratchnet.load_model(model).architecture
    assert metadata["format"] == "pt" and metadata["dataset"] == "mnist"
    assert json.loads(metadata["input"]) == {"scale": 255.0, "mean": 0.1, "std": 0.3}


def test_every_layer_type_has_a_pytorch_module() -> None:
    from scratchnet.core.registry import LAYER_TYPES

    assert set(TORCH_MODULES) == set(LAYER_TYPES)


def test_a_trained_model_comes_back_bit_for_bit_with_its_training_steps(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    model = trained(CNN, data_dir, tmp_path_factory)
    path = export_model(model, "safetensors", tmp_path / "cnn.safetensors").paths[0]
    tensors, _ = read(path)
    # one epoch of 5,000 images in batches of 128: 40 steps, each a training-mode forward pass
    assert int(tensors["1.num_batches_tracked"]) == 40
    back = import_model(path, tmp_path / "back.json")
    before, after = scratchnet.load_model(model), scratchnet.load_model(back)
    assert after.architecture == before.architecture
    assert {n: v.tobytes() for n, v in after.network.params().items()} == {
        n: v.tobytes() for n, v in before.network.params().items()
    }
    for key in ("dataset", "class_names", "input"):
        assert after.metadata[key] == before.metadata[key]
    assert after.metadata["imported"] == {
        "format": "safetensors",
        "file": "cnn.safetensors",
        "producer": "scratchnet 0.1.0",
    }


def test_training_steps_come_from_the_optimizer_state_when_the_model_has_one(tmp_path: Path) -> None:
    from scratchnet.interop.portable import read_scratchnet

    net = scratchnet.build_network(scratchnet.mlp([3, 2]), backend="vectorized")
    optimizer = scratchnet.build_optimizer({"type": "SGD", "lr": 0.1}, backend="vectorized")
    for _ in range(3):
        net.loss(net.forward(np.ones((2, 3))), [0, 1])
        net.backward()
        optimizer.step(net)
    scratchnet.save(net, tmp_path / "m", optimizer=optimizer)
    assert training_steps(read_scratchnet(tmp_path / "m")) == 3


def test_a_float64_model_stays_float64(tmp_path: Path) -> None:
    model = random_model(tmp_path, "input(4), dense(3), batchnorm, tanh, dense(2)", dtype="float64")
    path = export_model(model, "safetensors").paths[0]
    assert {str(v.dtype) for n, v in read(path)[0].items() if "num_batches" not in n} == {"float64"}
    back = scratchnet.load_model(import_model(path, tmp_path / "back.json"))
    assert back.dtype == "float64"
    assert [v.tobytes() for v in back.network.params().values()] == [
        v.tobytes() for v in scratchnet.load(model).params().values()
    ]


def pytorch_style(tmp_path: Path) -> tuple[Path, Path]:
    """A safetensors file as PyTorch writes a state dict (no scratchnet metadata), and the model it is of."""
    from safetensors.numpy import save_file

    model = random_model(tmp_path, "input(1x6x6), conv(2, 3), batchnorm, relu, flatten, dense(3)")
    tensors = {name: value for name, value in scratchnet.load(model).params().items()}
    tensors["1.num_batches_tracked"] = np.array(1234, np.int64)
    path = tmp_path / "state_dict.safetensors"
    save_file(tensors, str(path))
    return path, model


def test_a_file_without_an_architecture_takes_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, model = pytorch_style(tmp_path)
    out = tmp_path / "out"
    status, _, err = cli(["import", str(path), "--out", str(out / "m.json")], capsys)
    assert status == 1 and "records no architecture" in err and "--architecture FILE.json or --layers TEXT" in err
    assert not out.exists()
    # the architecture from a model's .json, from a bare architecture, or in the compact notation
    architecture = scratchnet.load_model(model).architecture
    (tmp_path / "arch.json").write_text(json.dumps(architecture))
    for flags in (
        ["--architecture", str(model)],
        ["--architecture", str(tmp_path / "arch.json")],
        ["--layers", "input(1x6x6), conv(2, 3), batchnorm, relu, flatten, dense(3)"],
    ):
        status, _, err = cli(["import", str(path), "--out", str(out / "m.json"), "--overwrite", *flags], capsys)
        assert status == 0, err
        back = scratchnet.load_model(out / "m.json")
        assert plan(back.architecture).shapes() == plan(architecture).shapes()
        assert [v.tobytes() for v in back.network.params().values()] == [
            v.tobytes() for v in scratchnet.load(model).params().values()
        ]
    status, _, err = cli(
        ["import", str(path), "--layers", "input(1x6x6), flatten, dense(3)", "--out", str(out / "x")], capsys
    )
    assert status == 1 and "the tensors do not fit the architecture: it has unexpected ['0.bias', '0.weight'," in err


# --- damaged files: one line, exit status 1, nothing written ----------------------------------------


def header_of(data: bytes) -> tuple[dict[str, Any], bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def with_header(header: dict[str, Any], body: bytes) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + body


def lie(kind: str, data: bytes) -> bytes:
    header, body = header_of(data)
    entry = header["0.weight"]
    start, end = entry["data_offsets"]
    if kind == "offsets past the end":
        entry["data_offsets"] = [start, len(body) + 64]
    elif kind == "offsets that do not match the shape":
        entry["data_offsets"] = [start, end - 4]
    elif kind == "overlapping offsets":
        header["0.bias"]["data_offsets"] = entry["data_offsets"]
    elif kind == "a header longer than the file":
        return struct.pack("<Q", 1 << 40) + data[8:]
    elif kind == "truncated":
        return data[: len(data) // 2]
    elif kind == "a wrong shape":
        entry["shape"] = [entry["shape"][0] * 2, entry["shape"][1] // 2]
        return with_header(header, body)  # consistent with its offsets, wrong for the architecture
    else:
        raise AssertionError(kind)
    return with_header(header, body)


KINDS = {
    "offsets past the end": "not a valid safetensors file",
    "offsets that do not match the shape": "not a valid safetensors file",
    "overlapping offsets": "not a valid safetensors file",
    "a header longer than the file": "not a valid safetensors file",
    "truncated": "not a valid safetensors file",
    "a wrong shape": "tensor '0.weight' has shape (6, 1), but the architecture needs (3, 2)",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_safetensors_header_that_lies_is_one_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = random_model(tmp_path, "input(2), dense(3), relu, dense(2)")
    good = export_model(model, "safetensors").paths[0].read_bytes()
    folder = tmp_path / "bad"
    folder.mkdir()
    path = folder / "model.safetensors"
    path.write_bytes(lie(kind, good))
    status, stdout, err = cli(["import", str(path)], capsys)
    assert status == 1 and stdout == "" and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"scratchnet import: error: {path}: ") and KINDS[kind] in err
    assert files_in(folder) == ["model.safetensors"]


def test_tensors_that_are_not_numbers_a_model_holds_are_refused(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    path = tmp_path / "m.safetensors"
    architecture = scratchnet.mlp([2, 3])
    save_file({"0.weight": np.zeros((3, 2), np.float16), "0.bias": np.zeros(3, np.float16)}, str(path))
    with pytest.raises(InteropError, match="tensors of float16; scratchnet models are float32 or float64"):
        import_model(path, tmp_path / "x.json", architecture=architecture)
    save_file({"0.weight": np.full((3, 2), np.nan, np.float32), "0.bias": np.zeros(3, np.float32)}, str(path))
    with pytest.raises(InteropError, match="tensor '0.weight' holds NaN or infinite values"):
        import_model(path, tmp_path / "x.json", architecture=architecture)
    assert files_in(tmp_path) == ["m.safetensors"]


def test_the_every_layer_model_round_trips_through_safetensors(tmp_path: Path) -> None:
    model = random_model(tmp_path, EVERY_LAYER)
    back = scratchnet.load_model(import_model(export_model(model, "safetensors").paths[0], tmp_path / "b.json"))
    assert back.architecture == scratchnet.load_model(model).architecture  # Dropout and its seed included


def test_the_pytorch_script_says_in_one_line_what_to_install_where_torch_is_missing(tmp_path: Path) -> None:
    from subprocesses import run_without

    script = export_model(random_model(tmp_path), "pytorch").paths[-1]
    assert script.suffix == ".py"
    done = run_without("torch", "import runpy; runpy.run_path(sys.argv[1], run_name='__main__')", str(script))
    assert done.returncode == 1 and done.stdout == ""
    expected = f"{script}: needs PyTorch and safetensors: pip install torch safetensors"
    assert done.stderr.splitlines() == [expected], done.stderr
