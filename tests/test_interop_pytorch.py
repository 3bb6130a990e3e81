"""Where PyTorch is installed: the ``--to pytorch`` script builds a torch.nn.Sequential that loads the
tensors strictly and computes scratchnet's outputs; a model trained in PyTorch comes in through
safetensors and through torch.onnx.export (issue 17, items 3, 4 and 6). Skips without PyTorch,
which stays out of CI."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from interop_models import CNN, EVERY_LAYER, random_inputs, random_model, trained
from subprocesses import ROOT

import scratchnet
from scratchnet.cli import main
from scratchnet.interop import export_model, import_model

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

DOC = ROOT / "docs" / "interop.md"


def script(path: Path) -> ModuleType:
    """The ``--to pytorch`` file at ``path``, imported."""
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_outputs(module: Any, inputs: Any) -> Any:
    with torch.no_grad():
        return module(torch.from_numpy(inputs)).numpy()


@pytest.mark.parametrize("dtype,tolerance", [("float32", 1e-6), ("float64", 1e-12)])
def test_the_script_builds_the_same_network_in_pytorch(dtype: str, tolerance: float, tmp_path: Path) -> None:
    model = random_model(tmp_path, EVERY_LAYER, dtype=dtype)
    files = export_model(model, "pytorch").paths
    assert [path.name for path in files] == ["random.safetensors", "random.py"]
    exported = script(files[1])
    network = exported.load()  # load_state_dict(strict=True): every tensor there, with its shape
    assert not network.training
    assert [type(m).__name__ for m in network] == [
        "Conv2d", "BatchNorm2d", "LeakyReLU", "MaxPool2d", "Conv2d", "Tanh", "AvgPool2d", "Flatten", "Dropout",
        "Linear", "BatchNorm1d", "Sigmoid", "Linear", "Identity", "ReLU", "Linear", "Softmax",
    ]  # fmt: skip
    assert network[1].momentum == 0.2 and network[1].eps == 0.001
    assert exported.CLASS_NAMES == ["c0", "c1", "c2", "c3"] and exported.INPUT_SHAPE == (2, 11, 10)
    inputs = random_inputs(model, count=8)
    ours = scratchnet.load(model).forward(inputs)
    np.testing.assert_allclose(torch_outputs(network, inputs), ours, rtol=0, atol=tolerance)
    logits = torch_outputs(network[:-1], inputs)  # the module without its Softmax
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), ours, atol=tolerance)


def test_the_script_of_a_trained_cnn_agrees_on_the_test_images(
    data_dir: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from scratchnet.data import load_dataset

    model = trained(CNN, data_dir, tmp_path_factory)
    exported = script(export_model(model, "pytorch", tmp_path / "cnn.py").paths[1])
    images = load_dataset("mnist", data_dir, splits=("test",)).test_images[:2000]
    scaling = exported.INPUT
    inputs = ((images / scaling["scale"] - scaling["mean"]) / scaling["std"]).astype(np.float32)
    inputs = inputs.reshape(-1, *exported.INPUT_SHAPE)
    theirs, ours = torch_outputs(exported.load(), inputs), scratchnet.load(model).forward(inputs)
    assert np.array_equal(theirs.argmax(axis=1), ours.argmax(axis=1))
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)
    # and what PyTorch saves comes back as the same model
    from safetensors.torch import save_file

    save_file(exported.load().state_dict(), str(tmp_path / "resaved.safetensors"))
    back = import_model(
        tmp_path / "resaved.safetensors", tmp_path / "back.json", architecture=scratchnet.load_model(model).architecture
    )
    assert [v.tobytes() for v in scratchnet.load(back).params().values()] == [
        v.tobytes() for v in scratchnet.load(model).params().values()
    ]


def test_a_model_exported_by_torch_onnx_imports_and_agrees(tmp_path: Path) -> None:
    from torch import nn

    torch.manual_seed(0)
    batch_norm = nn.BatchNorm2d(4)
    network = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        batch_norm,
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 3, 3, stride=2),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.3),
        nn.Linear(12, 10),
    )
    batch_norm.running_mean = torch.rand(4) * 2 - 1  # running statistics other than 0 and 1
    batch_norm.running_var = torch.rand(4) + 0.5
    network.eval()
    example = torch.zeros(1, 1, 18, 18)  # -> (4, 18, 18) -> (4, 9, 9) -> (3, 4, 4) -> (3, 2, 2) -> 12
    assert network(example).shape == (1, 10)
    path = tmp_path / "torch.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                network,
                example,
                str(path),
                dynamo=False,
                input_names=["x"],
                dynamic_axes={"x": {0: "n"}},
            )
        except Exception as error:  # an install without the TorchScript exporter
            pytest.skip(f"torch.onnx.export(dynamo=False) is not available: {error}")
    imported = scratchnet.load_model(import_model(path, tmp_path / "m.json", loss="CrossEntropy"))
    assert imported.architecture["layers"][-1]["type"] == "Softmax"  # appended for the loss
    inputs = np.random.default_rng(0).normal(0.0, 1.0, (6, 1, 18, 18)).astype(np.float32)
    logits = torch_outputs(network, inputs)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(imported.network.forward(inputs), expected, rtol=1e-5, atol=1e-6)


def documented_pytorch_block() -> tuple[str, list[str]]:
    """The Python block of docs/interop.md that needs PyTorch (the one marked to skip in
    tests/test_first_use_docs.py), and the ``scratchnet`` commands of the bash block after it."""
    text = DOC.read_text(encoding="utf-8")
    marker = text.index("<!-- docs-test: skip (needs PyTorch")
    block = re.search(r"```python\n(.*?)\n```", text[marker:], re.S)
    assert block is not None
    after = text[marker + block.end() :]
    commands = re.search(r"```bash\n(.*?)\n```", after, re.S)
    assert commands is not None
    lines = commands.group(1).replace("\\\n", " ").splitlines()
    return block.group(1) + "\n", [line for line in lines if line.startswith("scratchnet ")]


def test_the_documented_pytorch_round_trip_runs(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, commands = documented_pytorch_block()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCRATCHNET_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    same = re.search(r"same class on (\d+) of 1000 images; largest difference (\S+)", done.stdout)
    assert same is not None and int(same.group(1)) == 1000 and float(same.group(2)) < 1e-5, done.stdout
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCRATCHNET_DATA_DIR", str(data_dir))
    assert len(commands) == 3
    for command in commands:
        assert main(shlex.split(command)[1:]) == 0, command
    out = capsys.readouterr().out
    assert "test accuracy" in out and "layer 1  Dense(784, 128)" in out
    # the imported model computes what the PyTorch model computes
    from safetensors.torch import load_file
    from torch import nn

    network = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=1))
    network.load_state_dict(load_file(str(tmp_path / "torch_mnist.safetensors")))
    inputs = np.random.default_rng(0).normal(0.0, 1.0, (5, 1, 28, 28)).astype(np.float32)
    ours = scratchnet.load(tmp_path / "models" / "torch_mnist.json").forward(inputs)
    np.testing.assert_allclose(torch_outputs(network, inputs), ours, rtol=0, atol=1e-6)
