"""Token networks in and out (issue 26, "Models in and out"): ONNX export of every sequence layer,
run by ONNX Runtime on token batches of several lengths (the sequence axis is dynamic); import of
those graphs back, unchanged, and the refusal of edited or foreign ones; the ``--to pytorch`` script
run by PyTorch, and safetensors both ways."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from interop_models import (
    CONTEXT,
    GPT_LIKE,
    SEQUENCE_NETWORKS,
    VOCABULARY,
    WIDTH,
    random_network,
    random_tokens,
)
from subprocesses import run_python, run_scratchnet

import scratchnet
from scratchnet.core.errors import ConfigError, InteropError
from scratchnet.interop import export_model, export_network, import_model
from scratchnet.interop.onnx_export import to_onnx
from scratchnet.interop.onnx_import import from_onnx
from scratchnet.interop.portable import portable_of

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

LENGTHS = (1, 3, CONTEXT)  # the graph's sequence axis is dynamic: every length up to the network's
NAMES = sorted(SEQUENCE_NETWORKS)


def run_onnxruntime(proto: Any, tokens: Any) -> Any:
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": tokens})[0]


def largest_difference(network: Any, proto: Any, count: int = 5) -> float:
    """The largest |ONNX Runtime - scratchnet| over random token batches of each of LENGTHS."""
    worst = 0.0
    for length in LENGTHS:
        tokens = random_tokens(count, length, seed=length)
        theirs, ours = run_onnxruntime(proto, tokens), network.forward(tokens)
        assert theirs.shape == ours.shape == (count, length, VOCABULARY)
        assert theirs.dtype == ours.dtype
        worst = max(worst, float(np.abs(theirs - ours).max()))
    return worst


# --- ONNX Runtime runs what scratchnet computes ---------------------------------------------------------


@pytest.mark.parametrize("opset", [17, 18, 20])
def test_every_sequence_layer_agrees_with_onnx_runtime_in_float32(opset: int) -> None:
    # opset 17 has ReduceMean's axes as an attribute, 18 as an input; 20 has Gelu (below it: Erf, Tanh)
    worst = {}
    for name in NAMES:
        network = random_network(SEQUENCE_NETWORKS[name])
        worst[name] = largest_difference(network, to_onnx(portable_of(network), opset))
    largest = max(worst, key=lambda name: worst[name])
    print(f"opset {opset}: largest ONNX Runtime difference {worst[largest]:.3g} ({largest})")
    assert max(worst.values()) <= 1e-5, worst


def every_description(layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``layers`` and, after each container, the layers it holds, all the way down."""
    return [found for layer in layers for found in (layer, *every_description(layer.get("layers", [])))]


def test_float64_graphs_agree_to_float64_rounding_but_erf_needs_float32() -> None:
    # ONNX Runtime's CPU provider has no double Erf: the exact GELU runs in float32 only, and the
    # export says so. LayerNormalization's epsilon is a float32 attribute (0.001 is not one exactly:
    # 5e-11 off, which moves the outputs by about that); RMSNorm's eps is a tensor of the model's dtype.
    for name in NAMES:
        layers = every_description(SEQUENCE_NETWORKS[name]["layers"])  # a Residual's layers too
        tolerance = 1e-9 if any(layer["type"] == "LayerNorm" for layer in layers) else 1e-13
        network = random_network(SEQUENCE_NETWORKS[name], dtype="float64")
        portable = portable_of(network)
        if any(layer == {"type": "GELU"} for layer in layers):
            from scratchnet.interop.onnx_export import float64_caveat

            assert float64_caveat(portable, 18) is not None and "Erf" in str(float64_caveat(portable, 18))
            assert "Gelu" in str(float64_caveat(portable, 20))
            continue
        assert largest_difference(network, to_onnx(portable)) <= tolerance, name


def test_a_gpt_like_stack_in_float32_over_many_batches() -> None:
    network = random_network(GPT_LIKE, seed=4)
    proto = to_onnx(portable_of(network))
    tokens = random_tokens(64, CONTEXT, seed=9)
    np.testing.assert_allclose(run_onnxruntime(proto, tokens), network.forward(tokens), rtol=0, atol=1e-5)
    # the causal mask: changing the last token changes no earlier position's scores
    changed = tokens.copy()
    changed[:, -1] = (changed[:, -1] + 1) % VOCABULARY
    before, after = run_onnxruntime(proto, tokens), run_onnxruntime(proto, changed)
    np.testing.assert_array_equal(before[:, :-1], after[:, :-1])
    assert np.abs(before[:, -1] - after[:, -1]).max() > 1e-3


# --- the graph --------------------------------------------------------------------------------------


def test_the_graph_takes_int64_tokens_of_any_length_in_standard_operators() -> None:
    proto = to_onnx(portable_of(random_network(GPT_LIKE)), 18)
    onnx.checker.check_model(proto, full_check=True)
    (source,) = proto.graph.input
    assert source.type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert [d.dim_param for d in source.type.tensor_type.shape.dim] == ["batch", "sequence"]
    dims = proto.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "sequence", VOCABULARY]
    assert {node.domain for node in proto.graph.node} == {""}
    ops = {node.op_type for node in proto.graph.node}
    assert {"Gather", "Slice", "LayerNormalization", "ReduceMean", "Sqrt", "Div", "Tanh"} <= ops
    assert {"MatMul", "Reshape", "Transpose", "Softmax", "Where", "Range", "Greater"} <= ops
    assert "Gemm" not in ops  # Dense on (N, T, C) is MatMul + Add
    erf = to_onnx(portable_of(random_network(SEQUENCE_NETWORKS["gelu"])), 18)
    assert "Erf" in {node.op_type for node in erf.graph.node}
    gelu = to_onnx(portable_of(random_network(SEQUENCE_NETWORKS["gelu tanh"])), 20)
    (node,) = [node for node in gelu.graph.node if node.op_type == "Gelu"]
    assert onnx.helper.get_attribute_value(node.attribute[0]) == b"tanh"
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["architecture"])["vocabulary"] == VOCABULARY
    # every array is an initializer under its scratchnet name, as it is
    initializers = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert initializers["3.in_proj_weight"].shape == (3 * WIDTH, WIDTH)
    assert initializers["1.weight"].shape == (CONTEXT, WIDTH)


def test_layer_norm_needs_opset_17_and_says_so() -> None:
    portable = portable_of(random_network(SEQUENCE_NETWORKS["layernorm"]))
    message = r"layer 1 \(LayerNorm\) exports as LayerNormalization, which needs --opset 17 or later"
    with pytest.raises(ConfigError, match=message):
        to_onnx(portable, 16)
    # the others export at the oldest opset scratchnet writes
    for name in ("rmsnorm", "attention", "gelu tanh", "positions"):
        network = random_network(SEQUENCE_NETWORKS[name])
        assert largest_difference(network, to_onnx(portable_of(network), 13)) <= 1e-5


# --- import: back unchanged, or refused ---------------------------------------------------------------


@pytest.mark.parametrize("opset", [17, 20])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_token_graph_comes_back_unchanged(opset: int, dtype: str) -> None:
    for name in NAMES:
        portable = portable_of(random_network(SEQUENCE_NETWORKS[name], dtype=dtype), {"dataset": "names"})
        back = from_onnx(to_onnx(portable, opset), "m.onnx")
        assert back.architecture == portable.architecture  # Dropout and init included: recorded
        assert back.dtype == dtype and list(back.arrays) == list(portable.arrays)
        assert all(back.arrays[k].tobytes() == v.tobytes() for k, v in portable.arrays.items()), name
        assert back.metadata == {"dataset": "names"}
        assert back.imported["format"] == "onnx" and back.imported["opset"] == opset


def test_an_imported_model_file_computes_the_same(tmp_path: Path) -> None:
    network = random_network(GPT_LIKE, dtype="float64")
    onnx_file = export_network(network, "onnx", tmp_path / "gpt.onnx", opset=18).paths[0]
    loaded = scratchnet.load_model(import_model(onnx_file, tmp_path / "back.json"))
    assert loaded.architecture == portable_of(network).architecture
    tokens = random_tokens(4, CONTEXT)
    np.testing.assert_array_equal(loaded.network.forward(tokens), network.forward(tokens))


def _edited(proto: Any, edit: Any) -> Any:
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    edit(copy)
    return copy


def _set_op(op: str, to: str) -> Any:
    def edit(proto: Any) -> None:
        next(node for node in proto.graph.node if node.op_type == op).op_type = to

    return edit


def _set_architecture(change: Any) -> Any:
    def edit(proto: Any) -> None:
        for prop in proto.metadata_props:
            if prop.key == "architecture":
                architecture = json.loads(prop.value)
                change(architecture)
                prop.value = json.dumps(architecture)

    return edit


def _scale(proto: Any) -> None:
    tensor = next(t for t in proto.graph.initializer if t.name.endswith(".sqrt_d"))
    tensor.CopyFrom(onnx.numpy_helper.from_array(np.asarray(1.0, np.float32), tensor.name))


def _heads(architecture: dict[str, Any]) -> None:
    architecture["layers"][3]["heads"] = 4


@pytest.mark.parametrize(
    "edit,message",
    [
        (_set_op("Greater", "GreaterOrEqual"), "node '3.CausalSelfAttention.future' (GreaterOrEqual) is not what"),
        (_set_op("Div", "Mul"), "node '3.CausalSelfAttention.scores' (Mul) is not what"),
        (_scale, "constant '3.sqrt_d' is not the one scratchnet exports"),
        (_set_architecture(_heads), "constant '3.heads_shape' is not the one scratchnet exports"),
        (lambda p: p.metadata_props.pop(), "the graph reads token ids; scratchnet imports a token network"),
        (_set_architecture(lambda a: a.pop("vocabulary")), "its metadata's architecture: "),
    ],
)
def test_an_edited_graph_is_refused_in_one_line(edit: Any, message: str) -> None:
    proto = to_onnx(portable_of(random_network(GPT_LIKE)))
    proto.metadata_props.sort(key=lambda p: p.key == "architecture")  # architecture last, for the pop
    with pytest.raises(InteropError) as refused:
        from_onnx(_edited(proto, edit), "bad.onnx")
    assert message in str(refused.value) and len(str(refused.value).splitlines()) == 1


def test_the_command_line_refuses_an_edited_graph_and_writes_nothing(tmp_path: Path) -> None:
    proto = to_onnx(portable_of(random_network(GPT_LIKE)))
    onnx.save(_edited(proto, _set_op("Greater", "Less")), str(tmp_path / "bad.onnx"))
    done = run_scratchnet("import", str(tmp_path / "bad.onnx"), "--out", str(tmp_path / "bad.json"))
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "node '3.CausalSelfAttention.future' (Less) is not what scratchnet exports" in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bad.onnx"]


def test_another_producers_attention_graph_is_refused_by_name() -> None:
    # self-attention as another producer writes it: x feeds the query, key and value projections
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.eye(4, dtype=np.float32), name) for name in ("wq", "wk", "wv")]
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"], name="q_proj"),
        helper.make_node("MatMul", ["x", "wk"], ["k"], name="k_proj"),
        helper.make_node("MatMul", ["x", "wv"], ["v"], name="v_proj"),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1], name="kt"),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
        helper.make_node("Softmax", ["s"], ["a"], axis=-1, name="weights"),
        helper.make_node("MatMul", ["a", "v"], ["y"], name="mix"),
    ]
    graph = helper.make_graph(
        nodes,
        "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 4])],
        weights,
    )
    with pytest.raises(
        InteropError, match="node 'scores' \\(MatMul\\) reads 2 computed tensors .* the graph merges branches"
    ):
        from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), "theirs.onnx")
    # a token graph that does not record a scratchnet architecture: refused by what it reads
    table = numpy_helper.from_array(np.eye(VOCABULARY, dtype=np.float32), "table")
    lookup = helper.make_node("Gather", ["table", "ids"], ["y"], axis=0, name="embed")
    graph = helper.make_graph(
        [lookup],
        "embedding",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "sequence", VOCABULARY])],
        [table],
    )
    with pytest.raises(InteropError, match="reads token ids; scratchnet imports a token network"):
        from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), "theirs.onnx")


# --- PyTorch and safetensors ----------------------------------------------------------------------------


def _script(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dtype,tolerance", [("float32", 1e-5), ("float64", 1e-10)])
def test_the_pytorch_script_builds_the_same_token_networks(dtype: str, tolerance: float, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    worst = 0.0
    for index, name in enumerate(NAMES):
        network = random_network(SEQUENCE_NETWORKS[name], dtype=dtype)
        files = export_network(network, "pytorch", tmp_path / f"net{index}.py").paths
        module = _script(files[1]).load()  # load_state_dict(strict=True): every tensor, by its name and shape
        for length in LENGTHS:
            tokens = random_tokens(3, length, seed=length)
            with torch.no_grad():
                theirs = module(torch.from_numpy(tokens)).numpy()
            assert theirs.dtype == np.dtype(dtype)
            worst = max(worst, float(np.abs(theirs - network.forward(tokens)).max()))
    print(f"{dtype}: largest PyTorch difference {worst:.3g}")
    assert worst <= tolerance


def test_the_gpt_like_script_names_pytorchs_modules_and_runs_alone(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    files = export_network(random_network(GPT_LIKE), "pytorch", tmp_path / "gpt.py").paths
    text = files[1].read_text()
    for module in (
        "nn.Embedding(7, 8)",
        "PositionEmbedding(6, 8)",
        "nn.LayerNorm(8, eps=1e-05, elementwise_affine=True, bias=True)",
        "CausalSelfAttention(8, 2, bias=True, dropout=0.0)",
        "nn.RMSNorm(8, eps=1e-05, elementwise_affine=True)",
        "nn.GELU(approximate='tanh')",
        "nn.GELU(approximate='none')",
        "CausalSelfAttention(8, 4, bias=False, dropout=0.0)",
        "nn.Softmax(dim=-1)",
    ):
        assert module in text
    assert text.count("class CausalSelfAttention(nn.MultiheadAttention)") == 1
    done = run_python(str(files[1]))  # the file alone, as a user runs it: it loads and prints the model
    assert done.returncode == 0, done.stderr
    assert "(3): CausalSelfAttention(" in done.stdout and "NonDynamicallyQuantizableLinear" in done.stdout


def test_token_models_go_through_safetensors_and_the_command_line(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    network = random_network(GPT_LIKE, dtype="float64")
    scratchnet.save(network, tmp_path / "gpt.json", metadata={"dataset": "names"})
    for to in ("safetensors", "onnx", "pytorch"):
        done = run_scratchnet("export", str(tmp_path / "gpt.json"), "--to", to, "--overwrite")
        assert done.returncode == 0 and done.stdout.startswith("wrote "), done.stderr
    back = scratchnet.load_model(import_model(tmp_path / "gpt.safetensors", tmp_path / "back.json"))
    before = scratchnet.load_model(tmp_path / "gpt.json")
    assert back.architecture == before.architecture
    assert {n: v.tobytes() for n, v in back.network.params().items()} == {
        n: v.tobytes() for n, v in before.network.params().items()
    }
    (note,) = export_model(tmp_path / "gpt.json", "onnx", tmp_path / "again.onnx").notes  # the exact GELU's Erf
    assert note.startswith("ONNX Runtime's CPU provider runs Erf in float32 only")


BLOCK_CLASS = """
class TestBlock(nn.Sequential):
    def forward(self, x):
        return x + super().forward(x)
"""


@pytest.fixture
def container(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A test-only container type, a residual block of fixed layers, y = x + tanh(x W^T + b), registered
    with its ONNX nodes and its PyTorch class for one test; and a model with random arrays around it."""
    from scratchnet.core.registry import LAYER_TYPES, LayerType, _same_shape
    from scratchnet.interop.onnx_export import EXPORTERS
    from scratchnet.interop.onnx_nodes import OUT, Composite
    from scratchnet.interop.portable import Portable
    from scratchnet.interop.torch_names import TORCH_CLASSES, TORCH_MODULES

    inner: list[dict[str, Any]] = [{"type": "Dense", "in_features": 3, "out_features": 3}, {"type": "Tanh"}]
    block = LayerType("TestBlock", (), _same_shape, "none", children=lambda options: inner)
    monkeypatch.setitem(LAYER_TYPES, "TestBlock", block)
    monkeypatch.setitem(
        EXPORTERS,
        "TestBlock",
        lambda o, s: Composite(lambda g: g.node("Add", [g.x, g.layers(g.site.children, g.x)], OUT)),
    )
    monkeypatch.setitem(TORCH_MODULES, "TestBlock", lambda o, s: "TestBlock")
    monkeypatch.setitem(TORCH_CLASSES, "TestBlock", BLOCK_CLASS)
    architecture = {
        "layers": [{"type": "Dense", "in_features": 2, "out_features": 3}, {"type": "TestBlock"}, {"type": "Identity"}],
        "loss": {"type": "MeanSquaredError"},
    }
    rng = np.random.default_rng(5)
    arrays = {"0.weight": rng.normal(0.0, 1.0, (3, 2)), "0.bias": rng.normal(0.0, 1.0, 3)}
    arrays |= {"1.0.weight": rng.normal(0.0, 1.0, (3, 3)), "1.0.bias": rng.normal(0.0, 1.0, 3)}
    return Portable(architecture, arrays, "float64", {})


def _block_outputs(arrays: dict[str, Any], x: Any) -> Any:
    h = x @ arrays["0.weight"].T + arrays["0.bias"]
    return h + np.tanh(h @ arrays["1.0.weight"].T + arrays["1.0.bias"])


def test_a_containers_layers_export_to_onnx_in_place(container: Any) -> None:
    # The export walks layers through scratchnet.core.walk: a container's layers export in place,
    # named by their paths ("1.0.weight", node "1.0.Dense"), and its own nodes around them.
    proto = to_onnx(container)
    assert [node.name for node in proto.graph.node] == [
        "0.Dense",
        "1.0.Dense",
        "1.1.Tanh",
        "1.TestBlock.out",
        "2.Identity",
    ]
    x = np.random.default_rng(6).normal(0.0, 1.0, (4, 2))
    np.testing.assert_allclose(run_onnxruntime(proto, x), _block_outputs(container.arrays, x), rtol=0, atol=1e-12)


def test_a_containers_layers_are_its_children_in_the_pytorch_script(container: Any, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from scratchnet.interop.pytorch_script import write_pytorch

    files = write_pytorch(container, tmp_path / "block.py")
    assert "        TestBlock(  # 1: TestBlock\n            nn.Linear(3, 3),  # 1.0: Dense\n" in files[1].read_text()
    module = _script(files[1]).load()  # strict: "1.0.weight" is the Linear inside the block
    x = np.random.default_rng(6).normal(0.0, 1.0, (4, 2))
    with torch.no_grad():
        theirs = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(theirs, _block_outputs(container.arrays, x), rtol=0, atol=1e-12)
