"""Dense(bias=false) and init="normal" with a chosen std (issue 27, item 5; spec/math.md eq. 10.12,
10.13): the registry and notation, both backends against each other, finite differences and PyTorch,
the model file, and every export (ONNX Runtime, the PyTorch script, safetensors) and back."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from interop_models import VOCABULARY, WIDTH, random_model_of, random_network, random_tokens, token_network

import scratchnet
from scratchnet import loops, vectorized
from scratchnet.builders import build_network
from scratchnet.checks.crosscheck import cross_check, full_check
from scratchnet.core import notation, rng
from scratchnet.core.architecture import plan
from scratchnet.core.errors import ConfigError

BACKENDS = ("loops", "vectorized")
MLP = "input(5), dense(4, bias=false), tanh, dense(3)"


def module_of(backend: str) -> Any:
    return loops if backend == "loops" else vectorized


# --- the registry, the notation and the arrays ----------------------------------------------------------


def test_the_notation_reads_and_writes_bias_false_and_the_plan_has_no_bias_array() -> None:
    architecture = notation.parse(MLP)
    assert architecture["layers"][0] == {"type": "Dense", "in_features": 5, "out_features": 4, "bias": False}
    assert [a.name for a in plan(architecture).arrays] == ["0.weight", "2.weight", "2.bias"]
    assert "dense(4, bias=false)" in notation.notation(architecture)
    for backend in BACKENDS:
        net = build_network(architecture, backend=backend)
        assert list(net.params()) == list(net.grads()) == ["0.weight", "2.weight", "2.bias"]
        assert net.describe()["layers"][0]["bias"] is False
        assert "bias" not in net.describe()["layers"][2]  # the default is not written: files stay as they were


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bias_free_layer_computes_w_x_by_hand(backend: str) -> None:
    layer = module_of(backend).Dense(2, 2, bias=False)
    layer.set_params({"weight": [[1.0, -2.0], [0.5, 3.0]]})
    out = layer.forward([[3.0, 1.0], [0.0, -1.0]] if backend == "loops" else np.array([[3.0, 1.0], [0.0, -1.0]]))
    np.testing.assert_array_equal(np.asarray(out), [[1.0, 4.5], [2.0, -3.0]])  # z = W x, no b (eq. 10.13)
    grad_x = layer.backward([[1.0, 0.0], [0.0, 1.0]] if backend == "loops" else np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_array_equal(np.asarray(layer.grads()["weight"]), [[3.0, 1.0], [0.0, -1.0]])  # sum_n d x^T
    np.testing.assert_array_equal(np.asarray(grad_x), [[1.0, -2.0], [0.5, 3.0]])  # W^T d
    assert list(layer.grads()) == ["weight"]


# --- both backends, finite differences, PyTorch ---------------------------------------------------------


SEQUENCE = token_network(
    {"type": "RMSNorm", "dim": WIDTH, "affine": False},
    {"type": "Dense", "in_features": WIDTH, "out_features": 12, "bias": False, "init": "normal", "std": 0.3},
    {"type": "ReLU"},
    {"type": "Dense", "in_features": 12, "out_features": WIDTH, "bias": False},
)


@pytest.mark.parametrize("architecture", [notation.parse(MLP), SEQUENCE], ids=["rows", "sequence"])
def test_both_backends_agree_and_match_finite_differences(architecture: dict[str, Any]) -> None:
    report = full_check(architecture, batch=3, max_per_tensor=0)
    failed = [c for c in report.cross + [c for g in report.gradients.values() for c in g] if not c.passed]
    assert not failed, failed
    names = {c.name for c in report.cross}
    assert "grad 0.weight" in names and not any(".bias" in name for name in names if "grad 1." in name)
    worst = max(c.max_rel for c in cross_check(architecture))
    assert worst <= 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_bias_free_dense_is_nn_linear_without_bias(backend: str) -> None:
    torch = pytest.importorskip("torch")
    rows = np.random.default_rng(3).normal(0.0, 1.0, (2, 3, 5))  # a batch of sequences (eq. 16.1)
    upstream = np.random.default_rng(4).normal(0.0, 1.0, (2, 3, 4))
    layer = module_of(backend).Dense(5, 4, bias=False, init="normal", std=0.5, seed=9)
    linear = torch.nn.Linear(5, 4, bias=False, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(np.asarray(layer.params()["weight"])))
    x = torch.tensor(rows, requires_grad=True)
    theirs = linear(x)
    theirs.backward(torch.tensor(upstream))
    ours = layer.forward(rows.tolist() if backend == "loops" else rows)
    grad_x = layer.backward(upstream.tolist() if backend == "loops" else upstream)
    assert linear.bias is None
    np.testing.assert_allclose(np.asarray(ours), theirs.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(grad_x), x.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(layer.grads()["weight"]), linear.weight.grad.numpy(), rtol=0, atol=1e-12)


# --- init="normal" with a chosen std --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_normal_init_is_std_times_the_seeded_normals(backend: str) -> None:
    layer = module_of(backend).Dense(6, 3, init="normal", std=0.08, seed=11)
    expected = [0.08 * n for n in rng.normals(11, 0, 18)]  # stream 0 of the layer's seed (eq. 10.3, 10.12)
    np.testing.assert_array_equal(np.asarray(layer.params()["weight"]).reshape(-1), expected)
    np.testing.assert_array_equal(np.asarray(layer.params()["bias"]), np.zeros(3))
    default = module_of(backend).Embedding(4, 5, init="normal", seed=2)  # no std: 0.02
    np.testing.assert_array_equal(
        np.asarray(default.params()["weight"]).reshape(-1), [0.02 * n for n in rng.normals(2, 0, 20)]
    )


def test_the_drawn_spread_is_the_std_asked_for() -> None:
    net = build_network(notation.parse("input(400), dense(300, init=normal, std=0.08)"), seed=5)
    assert abs(float(np.std(net.params()["0.weight"])) - 0.08) < 0.08 * 0.01  # 120,000 draws


@pytest.mark.parametrize("backend", BACKENDS)
def test_attention_takes_std_and_a_separate_out_proj_std(backend: str) -> None:
    layer = module_of(backend).CausalSelfAttention(8, 2, bias=False, init="normal", std=0.02, out_std=0.005, seed=7)
    params = {name: np.asarray(value) for name, value in layer.params().items()}
    np.testing.assert_array_equal(params["in_proj_weight"].reshape(-1), [0.02 * n for n in rng.normals(7, 0, 192)])
    np.testing.assert_array_equal(params["out_proj.weight"].reshape(-1), [0.005 * n for n in rng.normals(7, 2, 64)])
    assert layer.describe()["std"] == 0.02 and layer.describe()["out_std"] == 0.005
    only_std = module_of(backend).CausalSelfAttention(8, 2, init="normal", std=0.1, seed=7)
    np.testing.assert_array_equal(
        np.asarray(only_std.params()["out_proj.weight"]).reshape(-1), [0.1 * n for n in rng.normals(7, 2, 64)]
    )


def test_both_backends_draw_the_same_normal_weights_for_every_layer_type() -> None:
    architecture = token_network(
        {"type": "PositionEmbedding", "max_length": 6, "dim": WIDTH, "init": "normal", "std": 0.08},
        {"type": "CausalSelfAttention", "dim": WIDTH, "heads": 2, "init": "normal", "std": 0.08, "out_std": 0.01},
    )
    architecture["layers"][0].update(init="normal", std=0.08)
    a = build_network(architecture, backend="loops", seed=4).params()
    b = build_network(architecture, backend="vectorized", seed=4).params()
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(np.asarray(a[name]), b[name], err_msg=name)


@pytest.mark.parametrize(
    "text,message",
    [
        ("input(3), dense(2, std=0.1)", "std sets the spread of init 'normal', not of 'he_normal'"),
        ("input(3), dense(2, init=normal, std=0)", "std must be a finite number > 0"),
        ("input(3), dense(2, bias=maybe)", "'bias' must be true or false"),
    ],
)
def test_bad_options_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build_network(notation.parse(text))
    assert "\n" not in str(caught.value)


# --- the model file and the exports ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_save_and_load_keep_the_layer_without_bias(backend: str, tmp_path: Path) -> None:
    architecture = notation.parse("input(5), dense(4, bias=false, init=normal, std=0.08), relu, dense(3)")
    net = build_network(architecture, backend=backend, seed=1)
    scratchnet.save(net, tmp_path / "m.json")
    back = scratchnet.load(tmp_path / "m.json", backend=backend)
    assert back.describe() == net.describe()
    assert back.describe()["layers"][0] == {
        "type": "Dense", "in_features": 5, "out_features": 4, "bias": False, "init": "normal", "std": 0.08,
    }  # fmt: skip
    dtype = scratchnet.load_model(tmp_path / "m.json").dtype  # the backend's own: float64 for loops
    for name, value in net.params().items():
        np.testing.assert_array_equal(np.asarray(back.params()[name]), np.asarray(value, dtype=dtype))
    assert sorted(np.load(tmp_path / "m.npz").files) == ["0.weight", "2.bias", "2.weight"]


def test_onnx_runtime_runs_gemm_without_c_and_the_file_comes_back_as_written(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from scratchnet.interop import export_model, import_model

    model = random_model_of(tmp_path, notation.parse("input(6), dense(5, bias=false), tanh, dense(3, bias=false)"))
    path = export_model(model, "onnx", tmp_path / "m.onnx").paths[0]
    gemms = [node for node in onnx.load(str(path)).graph.node if node.op_type == "Gemm"]
    assert [len(node.input) for node in gemms] == [2, 2]  # A and B, no C
    inputs = np.random.default_rng(0).normal(0.0, 1.0, (7, 6)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        session.run(None, {"input": inputs})[0], scratchnet.load(model).forward(inputs), atol=1e-6
    )
    back = scratchnet.load_model(import_model(path, tmp_path / "back.json"))
    assert back.architecture["layers"] == scratchnet.load_model(model).architecture["layers"]
    assert list(back.network.params()) == ["0.weight", "2.weight"]


def test_a_token_network_without_biases_goes_through_onnx_runtime_and_pytorch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from scratchnet.interop import export_network
    from scratchnet.interop.onnx_export import to_onnx
    from scratchnet.interop.onnx_import import from_onnx
    from scratchnet.interop.portable import portable_of

    network = random_network(SEQUENCE, dtype="float32")
    proto = to_onnx(portable_of(network, {"dataset": "names"}), 17)
    assert "Add" not in {node.op_type for node in proto.graph.node if node.name.startswith(("2.", "4."))}
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    tokens = random_tokens(4, 5)
    theirs, ours = session.run(None, {"input": tokens})[0], network.forward(tokens)
    assert theirs.shape == (4, 5, VOCABULARY)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    back = from_onnx(proto, "m.onnx")
    assert back.architecture["layers"][2]["bias"] is False and "2.bias" not in back.arrays

    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    import importlib.util

    files = export_network(network, "pytorch", tmp_path / "net.py").paths
    assert "nn.Linear(8, 12, bias=False)" in files[1].read_text()
    spec = importlib.util.spec_from_file_location("exported_bias_free", files[1])
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    module = script.load()  # load_state_dict(strict=True): no bias tensor expected, none given
    with torch.no_grad():
        np.testing.assert_allclose(module(torch.from_numpy(tokens)).numpy(), ours, atol=1e-5)


def test_safetensors_round_trip_keeps_bias_false(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from scratchnet.interop import export_model, import_model

    model = random_model_of(tmp_path, notation.parse(MLP))
    back = scratchnet.load_model(import_model(export_model(model, "safetensors").paths[0], tmp_path / "b.json"))
    assert back.architecture == scratchnet.load_model(model).architecture
    assert list(back.network.params()) == ["0.weight", "2.weight", "2.bias"]


def test_nanogpt_residual_std_is_expressible() -> None:
    std = 0.02 / math.sqrt(2 * 4)
    text = f"input(8), dense(16, bias=false, init=normal, std={std!r})"
    architecture = notation.parse(text)
    assert architecture["layers"][0]["std"] == pytest.approx(std)
    assert notation.parse(notation.notation(architecture)) == architecture
