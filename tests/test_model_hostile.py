"""Hostile architectures, model documents and JSON (issue 23, items 8, 9, 12, 15, 17, 18 and 22): each
test builds the hostile input itself and asserts a one-line refusal, made before anything is allocated."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from subprocesses import run_scratchnet

from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core import architecture, registry
from scratchnet.core.architecture import mlp, plan
from scratchnet.core.errors import ConfigError, InteropError, ModelFormatError, ScratchnetError, quoted_list
from scratchnet.core.jsonread import JSONInputError, read_json
from scratchnet.interop import import_model
from scratchnet.io.manifest import dump_document
from scratchnet.io.model import load_model, save

# --- the bounded JSON reader ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("[" * 100_000, "nested too deeply: 100000 levels, more than the limit of 64"),
        ('{"a": ' * 65 + "1" + "}" * 65, "nested too deeply: 65 levels"),
        ("[1e400]", "holds the number 1e400, which is too large to hold"),
        ("-1e999", "holds the number -1e999"),
        ("[" + "7" * 5000 + "]", "holds an integer of 5000 digits, more than the limit of 4300"),
        ('{"x": NaN}', "holds NaN, and NaN is not a JSON number"),
        ('{"x": -Infinity}', "holds -Infinity"),
        ('{"k": 1, "k": 2}', "has the key 'k', which appears twice in one object"),
        ('{"a": [1, 2}', "is not JSON: Expecting"),
        (b'{"a": "\xff"}', "is not UTF-8 text (byte 7)"),
    ],
)
def test_the_json_reader_refuses_with_one_line(text: str | bytes, phrase: str) -> None:
    with pytest.raises(JSONInputError) as caught:
        read_json(text, "the test document")
    message = str(caught.value)
    assert message.startswith("the test document ") and phrase in message, message
    assert "\n" not in message and len(message) < 300
    assert isinstance(caught.value, ScratchnetError) and isinstance(caught.value, ValueError)


def test_the_json_reader_reads_ordinary_json_and_brackets_inside_strings() -> None:
    deep = "[" * 64 + "]" * 64
    assert read_json(deep) == eval(deep)  # 64 levels: the limit, read
    text = json.dumps({"names": ["[" * 500, "{" * 500, 'quote " [[['], "n": 10**300, "x": -1.5e-300})
    assert read_json(text) == {"names": ["[" * 500, "{" * 500, 'quote " [[['], "n": 10**300, "x": -1.5e-300}
    with pytest.raises(JSONInputError, match="more than the limit of 10"):
        read_json("[1, 2, 3, 4]", max_bytes=10)


def test_quoted_lists_are_capped() -> None:
    assert quoted_list(["a", "b"]) == "['a', 'b']"
    long = quoted_list(f"t{k}" for k in range(100_000))
    assert long == "['t0', 't1', 't2', 't3', 't4', ... and 99995 more]"


# --- model documents --------------------------------------------------------------------------------


def mlp_model(folder: Path, metadata: dict[str, Any] | None = None) -> Path:
    """A 784-8-3 MLP saved in ``folder`` (the input metadata of 28x28 grey images unless given)."""
    net = build_network(mlp([784, 8, 3]), backend="vectorized", dtype="float32", seed=1)
    given = {"input": {"kind": "image", "shape": [28, 28], "scale": 255.0, "mean": 0.0, "std": 1.0}}
    save(net, folder / "m.json", metadata=metadata if metadata is not None else given)
    return folder / "m.json"


def sealed(text: str) -> bytes:
    """``text`` (a model document) with its document_sha256 recomputed, as a writer would seal it."""
    zeros = re.sub(r'("document_sha256": ")[0-9a-f]{64}"', lambda m: m.group(1) + "0" * 64 + '"', text)
    digest = hashlib.sha256(zeros.encode()).hexdigest()
    return zeros.replace("0" * 64, digest).encode()


def edited(json_path: Path, change: Callable[[dict[str, Any]], Any]) -> None:
    document = json.loads(json_path.read_text())
    change(document)
    json_path.write_bytes(dump_document(document))


def refused_one_line(json_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line refusal of ``load_model``, which ``inspect`` gives too (exit 1, nothing on stdout)."""
    with pytest.raises(ModelFormatError) as caught:
        load_model(json_path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(json_path)), message
    capsys.readouterr()
    assert main(["inspect", str(json_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("scratchnet inspect: error: "), err
    return message


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ('"scale": 1e400', "holds the number 1e400, which is too large to hold"),
        ('"scale": -1E+999', "holds the number -1E+999"),
        ('"scale": ' + "9" * 5000, "holds an integer of 5000 digits"),
        ('"scale": ' + "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_a_number_the_document_cannot_hold_is_refused(
    text: str, phrase: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path = mlp_model(tmp_path)
    original = json_path.read_text()
    assert original.count('"scale": 255.0') == 1
    json_path.write_bytes(sealed(original.replace('"scale": 255.0', text)))
    assert phrase in refused_one_line(json_path, capsys)


@pytest.mark.parametrize(
    ("shape", "phrase"),
    [
        (
            [100000, 100000],
            "'input.shape' [100000, 100000] is 10000000000 values per sample, but the network takes 784",
        ),
        ([10**30, 28], "an axis of more than 1048576"),
        ([-5, 28], "'input.shape' must be a non-empty list of positive integers, got [-5, 28]"),
        ([0, 0], "got [0, 0]"),
        ([], "got []"),
        ([28, "28"], "positive integers"),
        ([1, 1, 1, 1, 1, 1, 1, 1, 784], "more than 8 axes"),
        ([27, 28], "is 756 values per sample, but the network takes 784 (784 values)"),
    ],
)
def test_the_input_shape_must_fit_the_network(
    shape: list[Any], phrase: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    json_path = mlp_model(tmp_path)
    edited(json_path, lambda document: document["metadata"]["input"].update(shape=shape))
    message = refused_one_line(json_path, capsys)
    assert "metadata: " in message and phrase in message, message


def test_input_metadata_of_the_right_size_loads_and_a_wrong_kind_does_not(tmp_path: Path) -> None:
    json_path = mlp_model(tmp_path)
    edited(json_path, lambda document: document["metadata"]["input"].update(shape=[1, 28, 28]))
    assert load_model(json_path).metadata["input"]["shape"] == [1, 28, 28]
    edited(json_path, lambda document: document["metadata"]["input"].update(kind="audio"))
    with pytest.raises(ModelFormatError, match=r"'input.kind' must be one of \['image', 'features'\], got 'audio'"):
        load_model(json_path)
    # The writer makes the same check: a model is never saved with an input it cannot take.
    net = build_network(mlp([784, 8, 3]), backend="vectorized", dtype="float32", seed=1)
    with pytest.raises(ScratchnetError, match="but the network takes 784"):
        save(net, tmp_path / "w.json", metadata={"input": {"kind": "image", "shape": [100000, 100000]}})
    assert not (tmp_path / "w.json").exists()


# --- bounds on every architecture -------------------------------------------------------------------


def dense(fan_in: int, fan_out: int) -> dict[str, Any]:
    layer = {"type": "Dense", "in_features": fan_in, "out_features": fan_out}
    return {"layers": [layer], "loss": {"type": "MeanSquaredError"}}


def conv_architecture(padding: int, input_shape: list[int]) -> dict[str, Any]:
    layer = {"type": "Conv2D", "in_channels": 1, "out_channels": 1, "kernel_size": 3, "padding": padding}
    return {"layers": [layer, {"type": "Flatten"}], "loss": {"type": "MeanSquaredError"}, "input_shape": input_shape}


@pytest.mark.parametrize(
    ("description", "phrase"),
    [
        (
            conv_architecture(100_000, [1, 3, 3]),
            "layer 0 (Conv2D) gives shape (1, 200001, 200001): 40000400001 values per sample, "
            "more than the limit of 16777216",
        ),
        (
            conv_architecture(0, [1, 100_000, 100_000]),
            "'input_shape' has shape (1, 100000, 100000): 10000000000 values per sample",
        ),
        (conv_architecture(10**30, [1, 3, 3]), "padding is (10"),
        (conv_architecture(0, [1, 3, 10**30]), "with an axis more than the limit of 1048576"),
        (conv_architecture(0, [1] * 9 + [3, 3]), "11 axes per sample, more than the limit of 8"),
        (dense(10**9, 3), "layer 0 (Dense): in_features is 1000000000, more than the limit of 1048576"),
        (dense(2**20, 2**20), "the network has 1099512676352 numbers in its arrays, more than the limit of 268435456"),
        (
            {
                "layers": [{"type": "Flatten"}],
                "loss": {"type": "MeanSquaredError"},
                "input_shape": [1, 2048, 1024],
            },
            "layer 0 (Flatten) gives shape (2097152,), with an axis more than the limit of 1048576",
        ),
        (
            {"layers": [{"type": "ReLU"}] * 10_001, "loss": {"type": "MeanSquaredError"}, "input_shape": [3]},
            "10001 layers, more than the limit of 10000",
        ),
        (
            {"layers": [{"type": "LeakyReLU", "alpha": float("inf")}], "loss": {"type": "MeanSquaredError"}},
            "alpha",
        ),
    ],
)
def test_every_architecture_is_bounded_when_its_plan_is_made(description: dict[str, Any], phrase: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan(description)
    message = str(caught.value)
    assert phrase in message and "\n" not in message and len(message) < 300, message
    with pytest.raises(ConfigError):  # the Python API: the same check, before any array is allocated
        build_network(description, backend="vectorized")


def test_the_number_of_classes_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """With today's layers an output row is one axis, bounded like every axis; the class bound stands alone."""
    monkeypatch.setattr(architecture, "MAX_CLASSES", 10)
    flat = {"layers": [{"type": "Flatten"}], "loss": {"type": "MeanSquaredError"}, "input_shape": [1, 4, 4]}
    with pytest.raises(
        ConfigError, match=r"^the network has 16 outputs per sample \(classes\), more than the limit of 10$"
    ):
        plan(flat)


def test_a_layer_type_added_later_falls_under_the_same_bounds() -> None:
    """An embedding-like layer with a vocabulary size and a sequence length: no check of its own."""
    entry = registry.LayerType(
        name="TestEmbedding",
        options=(
            registry.Option("vocabulary", "int"),
            registry.Option("length", "int"),
            registry.Option("scale", "float", 1.0),
        ),
        output_shape=lambda o, shape: (o["length"], o["vocabulary"]),
        arrays=lambda o, shape: {"table": (o["vocabulary"], 4)},
        math="-",
    )
    registry.register(entry)
    try:

        def network(**options: Any) -> dict[str, Any]:
            layer = {"type": "TestEmbedding", "vocabulary": 10, "length": 3, **options}
            return {"layers": [layer, {"type": "Flatten"}], "loss": {"type": "MeanSquaredError"}, "input_shape": [3]}

        assert plan(network()).classes == 30
        with pytest.raises(ConfigError, match="vocabulary is 10000000, more than the limit of 1048576"):
            plan(network(vocabulary=10**7))
        with pytest.raises(
            ConfigError, match=r"\(1024, 1048576\): 1073741824 values per sample, more than the limit of 16777216"
        ):
            plan(network(vocabulary=2**20, length=2**10))
        with pytest.raises(ConfigError, match="scale must be a finite number, got nan"):
            plan(network(scale=float("nan")))
    finally:
        del registry.LAYER_TYPES["TestEmbedding"]


def test_a_model_file_with_too_many_classes_is_refused_before_serve_can_list_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 4-(2**21) layer needs 10 M parameters, which a small file cannot hold; its document alone is refused."""
    json_path = mlp_model(tmp_path, metadata={})
    edited(json_path, lambda document: document["architecture"]["layers"][2].update(out_features=2**21))
    message = refused_one_line(json_path, capsys)
    assert "layer 2 (Dense): out_features is 2097152, more than the limit of 1048576" in message


# --- ONNX and safetensors -----------------------------------------------------------------------------

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def onnx_file(
    folder: Path,
    nodes: list[Any],
    input_shape: list[Any],
    initializers: dict[str, Any],
    *,
    output: Any = None,
    props: dict[str, str] | None = None,
) -> Path:
    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
        [output if output is not None else helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "k"])],
        [numpy_helper.from_array(value, key) for key, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="the tests")
    model.ir_version = 8
    if props:
        helper.set_model_props(model, props)
    path = folder / "hostile.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def dense_onnx(folder: Path, **kwargs: Any) -> Path:
    """Gemm 4 -> 3 and a Softmax: a classifier of 4 features into 3 classes."""
    weight = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    nodes = [helper.make_node("Gemm", ["x", "W"], ["z"]), helper.make_node("Softmax", ["z"], ["y"], axis=1)]
    return onnx_file(folder, nodes, ["N", 4], {"W": weight}, **kwargs)


def import_refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    out = path.parent / "out" / "m.json"
    capsys.readouterr()
    assert main(["import", str(path), "--out", str(out)]) == 1
    stdout, err = capsys.readouterr()
    assert stdout == "" and err.count("\n") == 1 and err.startswith(f"scratchnet import: error: {path}: "), err
    assert len(err) < 400, err
    assert not out.parent.exists()
    return err


def test_an_onnx_conv_with_huge_padding_is_refused_at_import(tmp_path: Path) -> None:
    weight = np.ones((1, 1, 2, 2), np.float32)
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[100000] * 4), helper.make_node("Flatten", ["c"], ["y"])]
    path = onnx_file(tmp_path, nodes, ["N", 1, 3, 3], {"W": weight})
    done = run_scratchnet("import", str(path), "--out", str(tmp_path / "out" / "m.json"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert "layer 0 (Conv2D) gives shape (1, 200002, 200002): 40000800004 values per sample" in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_onnx_input_of_ten_billion_values_is_refused_at_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = onnx_file(tmp_path, [helper.make_node("Flatten", ["x"], ["y"])], ["N", 1, 100000, 100000], {})
    err = import_refused(path, capsys)
    assert "shape (1, 100000, 100000): 10000000000 values per sample, more than the limit of 16777216" in err


@pytest.mark.parametrize("key", ["input", "class_names"])
def test_deeply_nested_onnx_metadata_is_one_line(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = dense_onnx(tmp_path, props={key: "[" * 100_000})
    assert f"metadata '{key}' is nested too deeply: 100000 levels" in import_refused(path, capsys)


@pytest.mark.parametrize(
    ("output", "props", "phrase"),
    [
        (["N", 5], {}, "output 'y' is declared with 5 outputs per sample, but the graph computes 3"),
        (["N", 3, 1], {}, "output 'y' is declared with 3 axes, but the graph computes (batch, 3)"),
        ([2, 3], {}, "output 'y' is declared for a batch of 2, but the input's is 1"),
        (
            ["N", 3],
            {"class_names": '["a", "b", "c", "d"]'},
            "metadata 'class_names' names 4 classes, but the network computes 3 outputs",
        ),
        (
            ["N", 3],
            {"input": '{"kind": "features", "shape": [5], "mean": [0, 0, 0, 0, 0], "std": [1, 1, 1, 1, 1]}'},
            "metadata 'input.shape' [5] is 5 values per sample, but the network takes 4 (4 values)",
        ),
    ],
)
def test_a_declared_output_that_contradicts_the_graph_is_refused(
    output: list[Any], props: dict[str, str], phrase: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    value = helper.make_tensor_value_info("y", TensorProto.FLOAT, output)
    if output == [2, 3]:  # a fixed batch of 1 at the input
        weight = np.ones((4, 3), np.float32)
        nodes = [helper.make_node("Gemm", ["x", "W"], ["y"])]
        path = onnx_file(tmp_path, nodes, [1, 4], {"W": weight}, output=value)
    else:
        path = dense_onnx(tmp_path, output=value, props=props)
    assert phrase in import_refused(path, capsys)


def test_a_declared_output_of_another_element_type_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = dense_onnx(tmp_path, output=helper.make_tensor_value_info("y", TensorProto.DOUBLE, ["N", 3]))
    assert "output 'y' is declared DOUBLE, but the graph computes float32" in import_refused(path, capsys)
    # What agrees imports: a declared (N, 3) of float32.
    good = dense_onnx(tmp_path, output=helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]))
    assert import_model(good, tmp_path / "ok.json").is_file()


def test_an_onnx_batchnorm_momentum_is_reported_as_the_file_wrote_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = {name: np.ones(4, np.float32) for name in "sbmv"}
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn", momentum=5.0)]
    err = import_refused(onnx_file(tmp_path, nodes, ["N", 4], stats), capsys)
    assert "node 'bn' (BatchNormalization): momentum must be in [0, 1], got 5.0" in err
    assert "-4.0" not in err


def test_predict_on_an_imported_table_model_takes_its_features(tmp_path: Path) -> None:
    """No input metadata: a 4-feature ONNX model reads rows of 4 values, as inspect says, not 28x28 images."""
    model = import_model(dense_onnx(tmp_path), tmp_path / "m.json")
    assert "input" not in load_model(model).metadata
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,c,d\n1,0,0,0\n0,0,0,1\n")
    done = run_scratchnet("predict", str(model), "--csv", str(rows))
    assert done.returncode == 0, done.stderr
    assert "28x28" not in done.stdout + done.stderr
    # Class 2 has the largest weights for every feature (W[i, 2] > W[i, 1] > W[i, 0]).
    assert done.stdout.split() == ["row,label", "1,2", "2,2"], done.stdout
    shown = run_scratchnet("inspect", str(model))
    assert "input: 4 features" in shown.stdout


@pytest.fixture
def safetensors_file(tmp_path: Path) -> Iterator[Callable[[dict[str, Any], dict[str, str]], Path]]:
    safetensors = pytest.importorskip("safetensors.numpy")

    def write(tensors: dict[str, Any], metadata: dict[str, str]) -> Path:
        path = tmp_path / "hostile.safetensors"
        path.write_bytes(safetensors.save(tensors, metadata))
        return path

    yield write


def good_tensors() -> dict[str, Any]:
    return {"0.weight": np.zeros((3, 4), np.float32), "0.bias": np.zeros(3, np.float32)}


ARCHITECTURE = json.dumps(
    {
        "layers": [{"type": "Dense", "in_features": 4, "out_features": 3}, {"type": "Softmax"}],
        "loss": {"type": "CrossEntropy"},
    }
)


def test_safetensors_with_100k_unexpected_tensors_is_one_short_line(
    safetensors_file: Callable[[dict[str, Any], dict[str, str]], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    tensors = {**good_tensors(), **{f"extra.{k}": np.zeros(1, np.float32) for k in range(100_000)}}
    err = import_refused(safetensors_file(tensors, {"architecture": ARCHITECTURE}), capsys)
    assert "has unexpected ['extra.0', 'extra.1', 'extra.10', 'extra.100', 'extra.1000', ... and 99995 more]" in err


@pytest.mark.parametrize(
    ("metadata", "phrase"),
    [
        ({"architecture": "[" * 100_000}, "its metadata's architecture is nested too deeply: 100000 levels"),
        ({"architecture": ARCHITECTURE, "input": '{"scale": 1e400}'}, "metadata 'input' holds the number 1e400"),
        ({"architecture": ARCHITECTURE, "class_names": "[" * 100_000}, "metadata 'class_names' is nested too deeply"),
    ],
)
def test_hostile_safetensors_metadata_is_one_line(
    metadata: dict[str, str],
    phrase: str,
    safetensors_file: Callable[[dict[str, Any], dict[str, str]], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert phrase in import_refused(safetensors_file(good_tensors(), metadata), capsys)


def test_export_never_writes_a_non_finite_number(tmp_path: Path) -> None:
    from scratchnet.interop.onnx_export import to_onnx
    from scratchnet.interop.portable import read_scratchnet
    from scratchnet.interop.pytorch_script import pytorch_script

    model = read_scratchnet(mlp_model(tmp_path))
    model.metadata["input"]["scale"] = float("inf")  # as a caller of the Python API might
    for export in (lambda: to_onnx(model), lambda: pytorch_script(model, "w.safetensors", "m")):
        with pytest.raises(InteropError, match="metadata 'input' holds a number that is not finite"):
            export()


# --- serve's request bodies ---------------------------------------------------------------------------


def test_serve_refuses_json_it_cannot_hold_with_a_400(tmp_path_factory: pytest.TempPathFactory) -> None:
    from serve_helpers import data_dir_or_skip, request, running, trained_model

    from scratchnet.serve.api import Session

    model = trained_model("mlp", tmp_path_factory)
    cases = [
        (b'{"pixels": ' + b"7" * 5000 + b"}", "the request body holds an integer of 5000 digits"),
        (b'{"pixels": 1e400}', "the request body holds the number 1e400"),
        (b'{"pixels": "", "pixels": ""}', "appears twice in one object"),
    ]
    with running(Session(str(model), str(data_dir_or_skip()))) as live:
        for raw, phrase in cases:
            reply = request(live.port, "POST", "/api/predict", raw=raw)
            answer = reply.json()
            assert (reply.status, answer["status"]) == (400, 400), reply.body[:200]
            assert phrase in answer["error"] and b"Traceback" not in reply.body


def test_a_token_networks_class_bound_counts_its_classes_not_its_positions(monkeypatch: pytest.MonkeyPatch) -> None:
    from scratchnet.core import architecture
    from scratchnet.core.notation import parse

    monkeypatch.setattr(architecture, "MAX_CLASSES", 10)
    parse("input(tokens 5 x 40), embedding(4), dense(5)")  # 40 positions of 5 classes: within 10 classes
    with pytest.raises(ConfigError, match="outputs per sample"):
        parse("input(tokens 12 x 3), embedding(4), dense(12)")  # 12 classes
