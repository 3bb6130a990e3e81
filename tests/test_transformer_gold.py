"""Gold tests: each sequence layer of both backends against its PyTorch module, in float64, to 1e-10
(spec/math.md, sections 16-20). PyTorch is the outside reference: two backends written from one
reading of the spec could share a wrong formula that finite differences would miss (a mask on the
wrong side, a missing 1/sqrt(d), the wrong eps). Skipped where torch is not installed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scratchnet import loops, vectorized
from scratchnet.builders import build_network
from scratchnet.checks.crosscheck import random_tokens

torch = pytest.importorskip("torch")

TOLERANCE = 1e-10
BACKENDS = ("loops", "vectorized")
LARGEST_SEEN: dict[str, float] = {}  # the largest relative difference from PyTorch, per check (for a report)


def module_of(backend: str) -> Any:
    return loops if backend == "loops" else vectorized


def close(name: str, ours: Any, theirs: Any) -> None:
    """Ours equals PyTorch's within TOLERANCE relative to the tensor's largest magnitude."""
    a = np.asarray(ours.tolist() if hasattr(ours, "tolist") else ours, dtype=np.float64)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs, dtype=np.float64)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
    relative = float(np.abs(a - b).max(initial=0.0)) / scale
    LARGEST_SEEN[name] = max(LARGEST_SEEN.get(name, 0.0), relative)
    assert relative <= TOLERANCE, f"{name}: relative difference {relative:.3e}\nours {a}\ntorch {b}"


def random(shape: tuple[int, ...], seed: int, scale: float = 1.0) -> Any:
    return np.random.default_rng(seed).normal(0.0, scale, shape)


def run_layer(layer: Any, backend: str, inputs: Any, grad: Any) -> tuple[Any, Any]:
    """Our layer's output and dL/dx for the upstream gradient ``grad``."""
    x = inputs.tolist() if backend == "loops" else inputs
    g = grad.tolist() if backend == "loops" else grad
    out = layer.forward(x, training=True)
    return out, layer.backward(g)


def torch_run(module: Any, inputs: Any, grad: Any) -> tuple[Any, Any]:
    x = torch.tensor(inputs, dtype=torch.float64, requires_grad=True)
    out = module(x)
    out.backward(torch.tensor(grad))
    return out, x.grad


@pytest.mark.parametrize("backend", BACKENDS)
def test_embedding_is_nn_embedding(backend: str) -> None:
    ids = [[0, 3, 3, 1], [2, 0, 4, 3]]
    theirs = torch.nn.Embedding(5, 3).double()
    ours = module_of(backend).Embedding(5, 3)
    ours.set_params({"weight": theirs.weight.detach().numpy()})
    grad = random((2, 4, 3), 1)
    out = ours.forward(ids)
    ours.backward(grad.tolist() if backend == "loops" else grad)
    expected = theirs(torch.tensor(ids))
    expected.backward(torch.tensor(grad))
    close("Embedding forward", out, expected)
    close("Embedding weight grad", ours.grads()["weight"], theirs.weight.grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("affine,bias", [(True, True), (True, False), (False, False)])
def test_layer_norm_is_nn_layer_norm(backend: str, affine: bool, bias: bool) -> None:
    theirs = torch.nn.LayerNorm(6, eps=1e-5, elementwise_affine=affine, bias=bias).double()
    with torch.no_grad():
        for parameter in theirs.parameters():
            parameter.copy_(torch.tensor(random(tuple(parameter.shape), 7)))
    ours = module_of(backend).LayerNorm(6, affine=affine, bias=bias)
    ours.set_params({name: value.detach().numpy() for name, value in theirs.named_parameters()})
    inputs, grad = random((3, 4, 6), 2, 3.0) + 1.0, random((3, 4, 6), 3)
    out, grad_x = run_layer(ours, backend, inputs, grad)
    expected, expected_grad = torch_run(theirs, inputs, grad)
    close("LayerNorm forward", out, expected)
    close("LayerNorm input grad", grad_x, expected_grad)
    for name, value in theirs.named_parameters():
        close(f"LayerNorm {name} grad", ours.grads()[name], value.grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_is_nn_rms_norm_with_eps_1e_5(backend: str, affine: bool) -> None:
    theirs = torch.nn.RMSNorm(5, eps=1e-5, elementwise_affine=affine).double()
    if affine:
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(random((5,), 8)))
    ours = module_of(backend).RMSNorm(5, affine=affine)
    ours.set_params({name: value.detach().numpy() for name, value in theirs.named_parameters()})
    inputs, grad = random((2, 3, 5), 4, 0.1), random((2, 3, 5), 5)  # small inputs: eps matters
    out, grad_x = run_layer(ours, backend, inputs, grad)
    expected, expected_grad = torch_run(theirs, inputs, grad)
    close("RMSNorm forward", out, expected)
    close("RMSNorm input grad", grad_x, expected_grad)
    if affine:
        close("RMSNorm weight grad", ours.grads()["weight"], theirs.weight.grad)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_is_nn_gelu(backend: str, approximate: str) -> None:
    inputs = np.concatenate([np.linspace(-9.0, 9.0, 181), random((40,), 6, 3.0), [0.0, 0.46875, 4.0, 6.0]])
    inputs = inputs.reshape(-1, 5)
    grad = random(inputs.shape, 9)
    out, grad_x = run_layer(module_of(backend).GELU(approximate), backend, inputs, grad)
    expected, expected_grad = torch_run(torch.nn.GELU(approximate=approximate), inputs, grad)
    close(f"GELU {approximate} forward", out, expected)
    close(f"GELU {approximate} input grad", grad_x, expected_grad)


def causal_mask(length: int) -> Any:
    """PyTorch's boolean attn_mask: True where position t may NOT attend to s (s > t)."""
    return torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dim,heads,length,bias", [(4, 2, 5, True), (6, 3, 1, True), (2, 1, 2, False), (8, 4, 6, True)])
def test_attention_is_nn_multihead_attention_with_a_causal_mask(
    backend: str, dim: int, heads: int, length: int, bias: bool
) -> None:
    theirs = torch.nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True).double()
    with torch.no_grad():
        for index, parameter in enumerate(theirs.parameters()):
            parameter.copy_(torch.tensor(random(tuple(parameter.shape), 20 + index, 0.5)))
    ours = module_of(backend).CausalSelfAttention(dim, heads, bias=bias)
    ours.set_params({name: value.detach().numpy() for name, value in theirs.state_dict().items()})
    inputs, grad = random((3, length, dim), 10), random((3, length, dim), 11)
    out, grad_x = run_layer(ours, backend, inputs, grad)
    x = torch.tensor(inputs, requires_grad=True)
    expected, weights = theirs(x, x, x, attn_mask=causal_mask(length), need_weights=True, average_attn_weights=False)
    expected.backward(torch.tensor(grad))
    close("attention forward", out, expected)
    close("attention weights", ours.attention_weights, weights)
    close("attention input grad", grad_x, x.grad)
    for name, value in theirs.named_parameters():
        close(f"attention {name} grad", ours.grads()[name], value.grad)


def gpt(vocabulary: int, length: int, dim: int, heads: int, norm: str, approximate: str) -> dict[str, Any]:
    """Embedding, positions, a norm, attention, a norm, dense-GELU-dense, and a dense layer to the
    vocabulary: a transformer block's layers without the residual connections."""
    norm_layer = {"type": norm, "dim": dim}
    return {
        "vocabulary": vocabulary,
        "input_shape": [length],
        "layers": [
            {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim, "init": "he_normal"},
            {"type": "PositionEmbedding", "max_length": length + 1, "dim": dim, "init": "he_normal"},
            norm_layer,
            {"type": "CausalSelfAttention", "dim": dim, "heads": heads, "init": "glorot_uniform"},
            norm_layer,
            {"type": "Dense", "in_features": dim, "out_features": 2 * dim},
            {"type": "GELU", "approximate": approximate},
            {"type": "Dense", "in_features": 2 * dim, "out_features": vocabulary},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


class TorchStack(torch.nn.Module):  # type: ignore[misc,name-defined]
    """The same stack in PyTorch, its parameters loaded from ours."""

    def __init__(self, vocabulary: int, length: int, dim: int, heads: int, norm: str, approximate: str) -> None:
        super().__init__()

        def make_norm() -> Any:
            return torch.nn.LayerNorm(dim) if norm == "LayerNorm" else torch.nn.RMSNorm(dim, eps=1e-5)

        self.embedding = torch.nn.Embedding(vocabulary, dim)
        self.positions = torch.nn.Parameter(torch.zeros(length + 1, dim))
        self.norm1, self.norm2 = make_norm(), make_norm()
        self.attention = torch.nn.MultiheadAttention(dim, heads, batch_first=True)
        self.up, self.down = torch.nn.Linear(dim, 2 * dim), torch.nn.Linear(2 * dim, vocabulary)
        self.gelu = torch.nn.GELU(approximate=approximate)

    def forward(self, ids: Any) -> Any:
        length = ids.shape[1]
        x = self.norm1(self.embedding(ids) + self.positions[:length])
        x, _ = self.attention(x, x, x, attn_mask=causal_mask(length), need_weights=False)
        return self.down(self.gelu(self.up(self.norm2(x))))

    def ours_to_theirs(self) -> dict[str, str]:
        """Our parameter names -> this module's."""
        names = {"0.weight": "embedding.weight", "1.weight": "positions"}
        for ours, theirs in (("2", "norm1"), ("4", "norm2"), ("5", "up"), ("7", "down")):
            names.update({f"{ours}.weight": f"{theirs}.weight", f"{ours}.bias": f"{theirs}.bias"})
        for name in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"):
            names[f"3.{name}"] = f"attention.{name}"
        return names


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("norm,approximate", [("LayerNorm", "none"), ("RMSNorm", "tanh")])
def test_a_whole_stack_matches_pytorch_with_ignored_positions(backend: str, norm: str, approximate: str) -> None:
    vocabulary, length, dim, heads = 7, 5, 4, 2
    net = build_network(gpt(vocabulary, length, dim, heads, norm, approximate), backend=backend, seed=3)
    theirs = TorchStack(vocabulary, length, dim, heads, norm, approximate).double()
    names = theirs.ours_to_theirs()
    state = theirs.state_dict()
    for name, value in net.params().items():
        state[names[name]] = torch.tensor(np.asarray(value, dtype=np.float64))
    theirs.load_state_dict(state, strict=True)
    ids, targets = random_tokens(length, vocabulary, vocabulary, 3, seed=5)
    assert any(y == -100 for row in targets for y in row)

    out = net.forward(ids, training=True)
    loss = net.loss(out, targets)
    net.backward()
    logits = theirs(torch.tensor(ids))
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, vocabulary), torch.tensor(targets).reshape(-1))
    expected.backward()
    close("stack probabilities", out, torch.softmax(logits, dim=-1))
    close("stack loss with ignored positions", loss, expected)
    parameters = dict(theirs.named_parameters())
    for name, grad in net.grads().items():
        close(f"stack grad {name}", grad, parameters[names[name]].grad)
