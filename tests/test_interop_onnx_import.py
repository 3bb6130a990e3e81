"""scratchnet import of ONNX graphs that scratchnet did not write, built here with onnx.helper: each
imports and agrees with ONNX Runtime on random inputs; what it cannot express is one line, exit 1,
and nothing written (issue 17, items 2, 4 and 5)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from interop_models import cli, files_in, random_model

import scratchnet
from scratchnet.core.errors import InteropError
from scratchnet.interop import export_model, import_model

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

RNG = np.random.default_rng(17)


def output(name: str, rank: int) -> Any:
    """A graph output of ``rank`` axes of unknown sizes (the checker wants the rank)."""
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"{name}{k}" for k in range(rank)])


def weights(*shape: int) -> Any:
    return RNG.normal(0.0, 0.5, shape).astype(np.float32)


def graph_file(
    folder: Path,
    nodes: Sequence[Any],
    input_shape: Sequence[int | str],
    initializers: dict[str, Any],
    *,
    opset: int = 17,
    rank: int = 2,
    name: str = "graph.onnx",
) -> Path:
    """An ONNX model of ``nodes`` reading ``x`` of ``input_shape`` (float32) and giving ``y`` of ``rank`` axes."""
    graph = helper.make_graph(
        list(nodes),
        "test",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(input_shape))],
        [output("y", rank)],
        [numpy_helper.from_array(value, key) for key, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="onnx.helper")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    path = folder / name
    onnx.save(model, str(path))
    return path


def agrees_with_onnx_runtime(path: Path, folder: Path, batch: int = 6, **kwargs: Any) -> dict[str, Any]:
    """Import ``path``, run both on random inputs, compare; return the imported architecture."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = scratchnet.load_model(import_model(path, folder / "imported.json", **kwargs))
    shape = [d if isinstance(d, int) else batch for d in session.get_inputs()[0].shape]
    inputs = RNG.normal(0.0, 1.0, shape).astype(np.float32)
    theirs = session.run(None, {"x": inputs})[0]
    ours = model.network.forward(inputs)
    np.testing.assert_allclose(ours, theirs.reshape(ours.shape), rtol=1e-5, atol=1e-6)
    architecture: dict[str, Any] = model.architecture
    return architecture


def types(architecture: dict[str, Any]) -> list[str]:
    return [layer["type"] for layer in architecture["layers"]]


# --- graphs that import -------------------------------------------------------------------------------


def test_matmul_then_add_is_a_dense_layer_with_its_weights_transposed(tmp_path: Path) -> None:
    w1, b1, w2, b2, w3 = weights(6, 5), weights(5), weights(5, 4), weights(1, 4), weights(4, 3)
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h1"], name="mm1"),
        helper.make_node("Add", ["h1", "b1"], ["z1"], name="add1"),
        helper.make_node("Relu", ["z1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w2"], ["h2"]),
        helper.make_node("Add", ["b2", "h2"], ["z2"]),  # the bias first, of shape (1, 4)
        helper.make_node("Tanh", ["z2"], ["a2"]),
        helper.make_node("MatMul", ["a2", "w3"], ["y"]),  # no Add: a zero bias
    ]
    path = graph_file(tmp_path, nodes, ["N", 6], {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "w3": w3})
    architecture = agrees_with_onnx_runtime(path, tmp_path)
    assert types(architecture) == ["Dense", "ReLU", "Dense", "Tanh", "Dense"]
    assert architecture["loss"] == {"type": "MeanSquaredError"}  # no Softmax: the outputs are left as they are
    params = scratchnet.load(tmp_path / "imported.json").params()
    np.testing.assert_array_equal(params["0.weight"], w1.T)
    np.testing.assert_array_equal(params["2.bias"], b2[0])
    np.testing.assert_array_equal(params["4.bias"], np.zeros(3, np.float32))


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_with_any_trans_b_alpha_and_beta(trans_b: int, tmp_path: Path) -> None:
    b = weights(7, 5) if trans_b == 0 else weights(5, 7)  # (in, out) or (out, in)
    nodes = [
        helper.make_node("Gemm", ["x", "B", "C"], ["z"], name="fc", transB=trans_b, alpha=0.5, beta=2.0),
        helper.make_node("Sigmoid", ["z"], ["s"]),
        helper.make_node("Gemm", ["s", "B2", "C2"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"], axis=1),
    ]
    initializers = {"B": b, "C": weights(1, 5), "B2": weights(3, 5), "C2": np.float32(0.25).reshape(())}
    architecture = agrees_with_onnx_runtime(graph_file(tmp_path, nodes, [4, 7], initializers), tmp_path)
    assert types(architecture) == ["Dense", "Sigmoid", "Dense", "Softmax"]
    assert architecture["loss"] == {"type": "CrossEntropy"}
    params = scratchnet.load(tmp_path / "imported.json").params()
    np.testing.assert_allclose(params["0.weight"], 0.5 * (b.T if trans_b == 0 else b), rtol=1e-7)
    np.testing.assert_array_equal(params["2.bias"], np.full(3, 0.25, np.float32))


def test_conv_relu_maxpool_flatten_gemm(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Conv", ["x", "W", "Bc"], ["c"], name="conv", pads=[1, 2, 1, 2], strides=[2, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("MaxPool", ["r"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "Wd", "bd"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], ["y"]),
    ]
    # (3, 12, 9) -> conv 5x3, pads (1, 2), strides (2, 1): (4, 5, 11) -> pool: (4, 2, 5) -> 40
    initializers = {"W": weights(4, 3, 5, 3), "Bc": weights(4), "Wd": weights(10, 40), "bd": weights(10)}
    architecture = agrees_with_onnx_runtime(graph_file(tmp_path, nodes, ["batch", 3, 12, 9], initializers), tmp_path)
    assert types(architecture) == ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "Softmax"]
    assert architecture["layers"][0]["padding"] == [1, 2] and architecture["layers"][0]["stride"] == [2, 1]
    assert architecture["input_shape"] == [3, 12, 9]


def test_batch_normalization_on_images_and_on_rows(tmp_path: Path) -> None:
    def statistics(prefix: str, channels: int) -> dict[str, Any]:
        return {
            f"{prefix}s": weights(channels),
            f"{prefix}b": weights(channels),
            f"{prefix}m": weights(channels),
            f"{prefix}v": np.abs(weights(channels)) + 0.5,
        }

    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3]),  # no bias: zeros
        helper.make_node("BatchNormalization", ["c", "1s", "1b", "1m", "1v"], ["n"], epsilon=1e-3, momentum=0.8),
        helper.make_node("LeakyRelu", ["n"], ["l"], alpha=0.2),
        helper.make_node("AveragePool", ["l"], ["p"], kernel_shape=[2, 2]),  # ONNX's stride defaults to 1
        helper.make_node("Reshape", ["p", "shape"], ["f"]),
        helper.make_node("Dropout", ["f"], ["d"], name="dropout"),
        helper.make_node("Gemm", ["d", "Wd"], ["g"], transB=1),
        helper.make_node("BatchNormalization", ["g", "2s", "2b", "2m", "2v"], ["n2"]),
        helper.make_node("Identity", ["n2"], ["y"]),
    ]
    initializers = {"W": weights(3, 2, 3, 3), "Wd": weights(5, 3 * 5 * 4), **statistics("1", 3)}
    initializers |= {**statistics("2", 5), "shape": np.array([0, -1], np.int64)}
    path = graph_file(tmp_path, nodes, ["N", 2, 8, 7], initializers)
    architecture = agrees_with_onnx_runtime(path, tmp_path)
    assert types(architecture) == [
        "Conv2D",
        "BatchNorm",
        "LeakyReLU",
        "AvgPool2D",
        "Flatten",
        "Dense",
        "BatchNorm",
        "Identity",
    ]
    layers = architecture["layers"]
    assert layers[1] == {"type": "BatchNorm", "num_features": 3, "momentum": 0.2, "eps": 0.001}
    assert layers[2]["alpha"] == 0.2 and layers[3]["stride"] == [1, 1]
    assert layers[6] == {"type": "BatchNorm", "num_features": 5, "momentum": 0.1, "eps": 1e-5}  # ONNX's defaults


def test_a_reshape_given_by_a_constant_node_and_the_loss_asked_for(tmp_path: Path) -> None:
    shape = helper.make_tensor("s", TensorProto.INT64, [2], [-1, 12])
    nodes = [
        helper.make_node("Constant", [], ["shape"], value=shape),
        helper.make_node("Reshape", ["x", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "W"], ["y"], transB=1),
    ]
    path = graph_file(tmp_path, nodes, [5, 3, 2, 2], {"W": weights(4, 12)})  # a fixed batch size
    model = scratchnet.load_model(import_model(path, tmp_path / "m.json", loss="CrossEntropy"))
    # a classifier exported as logits: the loss's Softmax is appended
    assert types(model.architecture) == ["Flatten", "Dense", "Softmax"]
    inputs = RNG.normal(0.0, 1.0, (5, 3, 2, 2)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"x": inputs})[0]
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.network.forward(inputs), expected, rtol=1e-5, atol=1e-7)


# --- what cannot be imported: one line, exit status 1, nothing written ---------------------------------

W6 = {"W": weights(4, 6)}


def gemm(source: str = "x", target: str = "y", name: str = "fc") -> Any:
    return helper.make_node("Gemm", [source, "W"], [target], name=name, transB=1)


CASES: dict[str, tuple[list[Any], list[int | str], dict[str, Any], str]] = {
    "unsupported operator": (
        [gemm(target="g"), helper.make_node("LogSoftmax", ["g"], ["y"], name="log_probs")],
        ["N", 6],
        W6,
        "node 'log_probs' (LogSoftmax): unsupported operator LogSoftmax; scratchnet imports Gemm, MatMul",
    ),
    "a branch": (
        [
            helper.make_node("Relu", ["x"], ["a"], name="left"),
            helper.make_node("Sigmoid", ["x"], ["b"], name="right"),
            helper.make_node("Mul", ["a", "b"], ["y"], name="join"),
        ],
        ["N", 6],
        {},
        "node 'join' (Mul) reads 2 computed tensors ['a', 'b']: the graph merges branches",
    ),
    "a tensor read twice": (
        [gemm(target="g"), helper.make_node("Relu", ["g"], ["y"]), helper.make_node("Relu", ["g"], ["z"], name="z")],
        ["N", 6],
        W6,
        "tensor 'g' feeds 2 nodes (node 1 (Relu), node 'z' (Relu)): the graph branches",
    ),
    "a weight of the wrong shape": (
        [gemm()],
        ["N", 7],
        W6,
        "node 'fc' (Gemm): its weights take 6 inputs, but its input has shape (7,) per sample",
    ),
    "a grouped convolution": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="conv", group=2)],
        ["N", 4, 5, 5],
        {"W": weights(4, 2, 3, 3)},
        "node 'conv' (Conv): a grouped convolution (group > 1) has no scratchnet layer",
    ),
    "padding on a pooling": (
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], pads=[1, 1, 1, 1])],
        ["N", 1, 4, 4],
        {},
        "node 'pool' (MaxPool): padding: scratchnet's pooling layers take no padding",
    ),
    "pads not the same on both sides": (
        [helper.make_node("Conv", ["x", "W"], ["y"], name="conv", pads=[0, 0, 1, 1])],
        ["N", 2, 5, 5],
        {"W": weights(3, 2, 3, 3)},
        "node 'conv' (Conv): pads [0, 0, 1, 1] differ before and after",
    ),
    "a reshape that is not a flatten": (
        [helper.make_node("Reshape", ["x", "s"], ["y"], name="r")],
        ["N", 6],
        {"s": np.array([0, 2, 3], np.int64)},
        "node 'r' (Reshape): reshapes to [0, 2, 3], not to one row per sample",
    ),
    "a softmax over channels": (
        [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)],
        ["N", 3, 2, 2],
        {},
        "node 'sm' (Softmax): normalizes axis 1 of inputs of shape (3, 2, 2) per sample",
    ),
    "an attribute ONNX does not know": (
        [helper.make_node("Flatten", ["x"], ["y"], name="f", axis=1, extra=3)],
        ["N", 6],
        {},
        "not a valid ONNX model: Unrecognized attribute: extra for operator Flatten",
    ),
    "an attribute scratchnet does not know": (  # BatchNormalization of opset 6 had is_test
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn", is_test=1)],
        ["N", 2],
        {name: np.ones(2, np.float32) for name in "sbmv"},
        "node 'bn' (BatchNormalization): attribute 'is_test' has no scratchnet equivalent",
    ),
    "weights computed by the graph": (
        [helper.make_node("Relu", ["W"], ["w"]), helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        ["N", 4],
        {"W": weights(4, 3)},
        "node 'mm' (MatMul) reads 2 computed tensors ['x', 'w']: the graph merges branches",
    ),
}
OPSETS = {"an attribute scratchnet does not know": 6}


def write_case(case: str, folder: Path) -> Path:
    nodes, shape, initializers, _ = CASES[case]
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [output("y", len(shape) if case.startswith(("a grouped", "padding", "pads", "a softmax")) else 2)],
        [numpy_helper.from_array(value, key) for key, value in initializers.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSETS.get(case, 17))])
    model.ir_version = 8
    path = folder / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_what_scratchnet_cannot_express_is_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(case, tmp_path)
    out = tmp_path / "out"
    status, stdout, err = cli(["import", str(path), "--out", str(out / "m.json")], capsys)
    assert status == 1 and stdout == ""
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"scratchnet import: error: {path}: ")
    assert CASES[case][3] in err
    assert not out.exists()  # nothing written, not even a folder


def damaged(kind: str, good: bytes) -> bytes:
    rng = random.Random(17)
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "random bytes":
        return rng.randbytes(4096)
    if kind == "empty":
        return b""
    if kind == "text":
        return b"this is not a model\n"
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "random bytes", "empty", "text"])
def test_a_damaged_onnx_file_is_one_line(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = export_model(random_model(tmp_path), "onnx", tmp_path / "good.onnx").paths[0].read_bytes()
    path = tmp_path / "bad" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(damaged(kind, good))
    status, _, err = cli(["import", str(path)], capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1, err
    assert f"{path}: not " in err  # "not an ONNX model (...)" or "not a valid ONNX model: ..."
    assert files_in(path.parent) == ["model.onnx"]


def test_a_weight_of_the_wrong_shape_in_an_exported_file(tmp_path: Path) -> None:
    path = export_model(random_model(tmp_path, "input(6), dense(4), relu, dense(3)"), "onnx").paths[0]
    proto = onnx.load(str(path))
    (weight,) = [tensor for tensor in proto.graph.initializer if tensor.name == "2.weight"]
    weight.CopyFrom(numpy_helper.from_array(weights(3, 5), "2.weight"))
    onnx.save(proto, str(path))
    with pytest.raises(
        InteropError, match=r"node '2.Dense' \(Gemm\): its weights take 5 inputs, but its input has shape \(4,\)"
    ):
        import_model(path, tmp_path / "other.json")
    assert not (tmp_path / "other.json").exists()


def test_the_default_output_never_replaces_the_model_exported_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = random_model(tmp_path, "input(6), dense(3)")
    export_model(model, "onnx")
    before = model.read_bytes()
    status, _, err = cli(["import", str(model.with_suffix(".onnx"))], capsys)
    assert status == 1 and "random.json exists; give --out" in err
    assert model.read_bytes() == before
    status, out, _ = cli(["import", str(model.with_suffix(".onnx")), "--out", str(tmp_path / "again.json")], capsys)
    assert status == 0 and out.startswith(f"wrote {tmp_path / 'again.json'} and again.npz")


def test_imported_models_evaluate_predict_and_explain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    # a graph from elsewhere, without scratchnet's metadata: --dataset and the input scaling are given
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"]),
        helper.make_node("Gemm", ["f", "W1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Gemm", ["r", "W2", "b2"], ["y"], transB=1),
    ]
    initializers = {"W1": weights(16, 784), "b1": weights(16), "W2": weights(10, 16), "b2": weights(10)}
    path = graph_file(tmp_path, nodes, ["N", 1, 28, 28], initializers)
    argv = ["import", str(path), "--out", str(tmp_path / "m.json"), "--loss", "cross_entropy", "--dataset", "mnist"]
    status, out, _ = cli([*argv, "--input-mean", "0.1307", "--input-std", "0.3081"], capsys)
    assert status == 0 and "note" not in out
    model = scratchnet.load_model(tmp_path / "m.json")
    assert model.metadata["input"] == {"scale": 255.0, "mean": 0.1307, "std": 0.3081}
    assert model.metadata["class_names"] == [str(k) for k in range(10)]
    for command in (["evaluate"], ["predict", "--index", "0"], ["explain", "--index", "0"]):
        status, out, err = cli([*command, str(tmp_path / "m.json"), "--data-dir", str(data_dir)], capsys)
        assert status == 0, err
    assert "Softmax" in out and "layer 1  Dense(784, 16)" in out
