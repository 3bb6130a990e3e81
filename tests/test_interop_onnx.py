"""scratchnet export --to onnx, checked by ONNX Runtime: on the real MNIST test set, on every layer type,
and read back by scratchnet import bit for bit (issue 17, items 1, 2 and 4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from interop_models import (
    CNN,
    EVERY_LAYER,
    MLP,
    SEQUENCE_NETWORKS,
    agreement_tool,
    cli,
    random_inputs,
    random_model,
    trained,
)

import scratchnet
from scratchnet.core import notation
from scratchnet.core.registry import LAYER_TYPES
from scratchnet.interop import export_model, import_model
from scratchnet.interop.onnx_export import DEFAULT_OPSET, EXPORTERS, MIN_OPSET

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_onnxruntime(path: Path, inputs: Any) -> Any:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": inputs})[0]


def scratchnet_outputs(model: Path, inputs: Any) -> Any:
    return scratchnet.load(model).forward(inputs)


# --- the real data: an MLP and a CNN trained on MNIST, the full 10,000 test images ---------------------


@pytest.mark.parametrize("name", [MLP, CNN])
def test_onnx_runtime_agrees_with_scratchnet_on_every_mnist_test_image(
    name: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = trained(name, data_dir, tmp_path_factory)
    result = agreement_tool().measure(model, str(data_dir), name)
    print(result.line())  # the figures of the closing note: pytest -s shows them
    assert result.images == 10000
    assert result.same_class == 10000
    assert result.largest_difference <= 1e-5


@pytest.mark.parametrize("name", [MLP, CNN])
def test_export_then_import_gives_the_same_parameters_bit_for_bit(
    name: str, data_dir: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    model = trained(name, data_dir, tmp_path_factory)
    onnx_file = export_model(model, "onnx", tmp_path / "m.onnx").paths[0]
    back = import_model(onnx_file, tmp_path / "back.json")
    before, after = scratchnet.load_model(model), scratchnet.load_model(back)
    # Dropout is left out of the inference graph: the layers after it move down one index.
    kept = [layer for layer in before.architecture["layers"] if layer["type"] != "Dropout"]
    assert notation.notation({**before.architecture, "layers": kept}) == notation.notation(after.architecture)
    old, new = before.network.params(), after.network.params()
    assert len(old) == len(new)
    for (old_name, a), (new_name, b) in zip(old.items(), new.items()):
        assert old_name.split(".")[1] == new_name.split(".")[1]
        assert a.dtype == b.dtype == np.float32
        assert a.tobytes() == b.tobytes(), old_name
    for key in ("dataset", "class_names", "input"):
        assert after.metadata[key] == before.metadata[key]
    assert after.metadata["imported"]["format"] == "onnx"


def test_a_table_model_keeps_its_per_feature_standardization_through_onnx(tmp_path: Path) -> None:
    # a model trained on a table of 3 features (scratchnet train --data table.csv) records one mean and
    # one standard deviation per feature; the ONNX file carries them and the import reads them back
    net = scratchnet.build_network(notation.parse("input(3), dense(4), relu, dense(2)"), seed=3)
    table = {"kind": "features", "shape": [3], "scale": 1.0, "mean": [0.5, -2.0, 10.0], "std": [1.5, 0.25, 4.0]}
    scratchnet.save(net, tmp_path / "table.json", metadata={"class_names": ["no", "yes"], "input": table})
    onnx_file = export_model(tmp_path / "table.json", "onnx", tmp_path / "table.onnx").paths[0]
    back = scratchnet.load_model(import_model(onnx_file, tmp_path / "back.json"))
    assert back.metadata["input"] == table and back.metadata["class_names"] == ["no", "yes"]
    proto = onnx.load(str(onnx_file))
    for prop in proto.metadata_props:
        if prop.key == "input":  # a deviation of 0 is no scaling at all: refused, by its member's name
            prop.value = json.dumps({**table, "std": [1.5, 0.0, 4.0]})
    onnx.save(proto, str(tmp_path / "bad.onnx"))
    with pytest.raises(scratchnet.ScratchnetError, match="metadata 'input' is not an input scaling"):
        import_model(tmp_path / "bad.onnx", tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()


# --- every layer type, random parameters ----------------------------------------------------------


def test_every_layer_type_has_an_onnx_operator() -> None:
    assert set(EXPORTERS) == set(LAYER_TYPES)
    # and the models the tests export have every one of them: the image model below, and the token
    # networks of test_interop_sequences.py (a token layer cannot stand in an image network)
    covered = {layer["type"] for layer in notation.parse(EVERY_LAYER)["layers"]}
    covered |= {layer["type"] for network in SEQUENCE_NETWORKS.values() for layer in network["layers"]}
    assert covered == set(LAYER_TYPES)


@pytest.mark.parametrize("opset", [MIN_OPSET, DEFAULT_OPSET])
def test_every_layer_type_agrees_with_onnx_runtime(opset: int, tmp_path: Path) -> None:
    model = random_model(tmp_path)
    onnx_file = export_model(model, "onnx", tmp_path / "m.onnx", opset=opset).paths[0]
    inputs = random_inputs(model, count=9)
    ours, theirs = scratchnet_outputs(model, inputs), run_onnxruntime(onnx_file, inputs)
    assert theirs.dtype == np.float32 and theirs.shape == ours.shape == (9, 4)
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6)


def test_every_layer_type_comes_back_bit_for_bit(tmp_path: Path) -> None:
    model = random_model(tmp_path)
    back = import_model(export_model(model, "onnx", tmp_path / "m.onnx").paths[0], tmp_path / "back.json")
    before, after = scratchnet.load_model(model), scratchnet.load_model(back)
    kept = [layer for layer in before.architecture["layers"] if layer["type"] != "Dropout"]
    # momentum 0.2 and eps 0.001 survive ONNX's float32 attributes (and momentum its 1 - m) as written
    assert notation.notation({**before.architecture, "layers": kept}) == notation.notation(after.architecture)
    assert [a.tobytes() for a in before.network.params().values()] == [
        b.tobytes() for b in after.network.params().values()
    ]
    inputs = random_inputs(model)
    np.testing.assert_array_equal(before.network.forward(inputs), after.network.forward(inputs))


@pytest.mark.parametrize(
    "text,loss,tolerance",
    [
        ("input(5), dense(8), tanh, dense(1), sigmoid", "bce", 1e-12),  # BinaryCrossEntropy after a Sigmoid
        # ONNX attributes are float32: LeakyReLU's alpha 0.2 and BatchNorm's eps 1e-5 become the nearest
        # float32, so a float64 graph with them agrees to about 1e-8 of its values, not to float64 rounding
        ("input(5), dense(8), leaky_relu(0.2), batchnorm, dense(3), identity", "mse", 1e-7),
        ("input(5), dropout(0.5)", "mse", 0.0),  # nothing but a Dropout: an Identity graph
    ],
)
def test_other_outputs_and_float64_agree_with_onnx_runtime(
    text: str, loss: str, tolerance: float, tmp_path: Path
) -> None:
    model = random_model(tmp_path, text, dtype="float64", loss=loss)
    onnx_file = export_model(model, "onnx", tmp_path / "m.onnx").paths[0]
    inputs = random_inputs(model)
    theirs = run_onnxruntime(onnx_file, inputs)
    assert theirs.dtype == np.float64
    np.testing.assert_allclose(theirs, scratchnet_outputs(model, inputs), rtol=0, atol=tolerance)
    back = scratchnet.load_model(import_model(onnx_file, tmp_path / "back.json"))
    assert back.architecture["loss"] == scratchnet.load_model(model).architecture["loss"]


def test_a_float64_cnn_exports_a_valid_graph_and_a_float32_copy_for_onnx_runtime(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ONNX Runtime's CPU provider has no double Conv or AveragePool kernel: the float64 file is valid
    # ONNX (checked on export), and --dtype float32 writes the copy it runs.
    model = random_model(tmp_path, dtype="float64")
    status, out, _ = cli(["export", str(model), "--to", "onnx", "--out", str(tmp_path / "m64.onnx")], capsys)
    assert status == 0 and "note: ONNX Runtime's CPU provider runs AveragePool and Conv in float32 only" in out
    onnx.checker.check_model(onnx.load(str(tmp_path / "m64.onnx")), full_check=True)
    status, out, _ = cli(["export", str(model), "--to", "onnx", "--dtype", "float32"], capsys)
    assert status == 0 and "note" not in out
    inputs = random_inputs(model)
    theirs = run_onnxruntime(model.with_suffix(".onnx"), inputs.astype(np.float32))
    np.testing.assert_allclose(theirs, scratchnet_outputs(model, inputs), rtol=0, atol=1e-6)


# --- the graph itself -----------------------------------------------------------------------------


def test_the_graph_is_standard_operators_with_a_symbolic_batch_and_the_metadata(tmp_path: Path) -> None:
    model = random_model(tmp_path)
    proto = onnx.load(str(export_model(model, "onnx").paths[0]))
    onnx.checker.check_model(proto, full_check=True)
    assert [node.op_type for node in proto.graph.node] == [
        "Conv", "BatchNormalization", "LeakyRelu", "MaxPool", "Conv", "Tanh", "AveragePool", "Flatten",
        "Gemm", "BatchNormalization", "Sigmoid", "Gemm", "Identity", "Relu", "Gemm", "Softmax",
    ]  # fmt: skip
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", DEFAULT_OPSET)]
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [2, 11, 10]
    assert [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim] == ["batch", 4]
    attributes = {n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in proto.graph.node}
    assert attributes["9.Dense"] == {"transB": 1}
    assert attributes["16.Softmax"] == {"axis": -1}
    assert attributes["0.Conv2D"]["pads"] == [1, 1, 1, 1]
    assert attributes["1.BatchNorm"]["momentum"] == pytest.approx(0.8)  # ONNX's is 1 - PyTorch's
    assert attributes["1.BatchNorm"]["epsilon"] == pytest.approx(0.001)
    assert {init.name for init in proto.graph.initializer} == set(scratchnet.load_model(model).network.params())
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["dataset"] == "mnist"
    assert json.loads(props["class_names"]) == ["c0", "c1", "c2", "c3"]
    assert json.loads(props["input"]) == {"scale": 255.0, "mean": 0.1, "std": 0.3}
    assert proto.producer_name == "scratchnet"


def test_the_opset_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = random_model(tmp_path, "input(3), dense(2)")
    status, _, err = cli(["export", str(model), "--to", "onnx", "--opset", "12"], capsys)
    assert status == 1 and "--opset must be in 13.." in err and len(err.strip().splitlines()) == 1
    status, _, err = cli(["export", str(model), "--to", "safetensors", "--opset", "17"], capsys)
    assert status == 1 and "--opset applies to --to onnx only" in err
    assert not model.with_suffix(".onnx").exists() and not model.with_suffix(".safetensors").exists()
    status, out, _ = cli(["export", str(model), "--to", "onnx", "--opset", "17"], capsys)
    assert status == 0 and out.startswith("wrote ")
    assert onnx.load(str(model.with_suffix(".onnx"))).opset_import[0].version == 17


def test_a_missing_onnx_package_is_one_line_saying_what_to_install(tmp_path: Path) -> None:
    from subprocesses import run_without

    model = random_model(tmp_path, "input(3), dense(2)")
    done = run_without(
        "onnx",
        "from scratchnet.cli import main; sys.exit(main(sys.argv[1:]))",
        "export",
        str(model),
        "--to",
        "onnx",
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        'scratchnet export: error: exporting to ONNX needs the onnx package: pip install "scratchnet[onnx]"'
    )
    assert not model.with_suffix(".onnx").exists()
