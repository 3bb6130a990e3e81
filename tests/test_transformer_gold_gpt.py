"""Gold test: a whole two-block GPT of both backends against the same GPT built from PyTorch's
modules, in float64, to 1e-10: the probabilities, the loss with ignored positions and every
gradient. The PyTorch GPT is an ``nn.Sequential`` of ``nn.Embedding``, a learned position table,
two blocks of two residual modules (``nn.LayerNorm`` or ``nn.RMSNorm(eps=1e-5)`` then
``nn.MultiheadAttention(batch_first=True)`` with a boolean causal ``attn_mask``; the norm then
Linear-GELU-Linear), a final norm and a Linear layer. A residual module is an ``nn.Sequential``
whose forward adds its input, so its ``state_dict`` names are scratchnet's array names exactly:
``2.1.in_proj_weight`` is ``2.1.in_proj_weight`` (docs/layers.md, "Residual"). Skipped where torch
is not installed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from strategies import residual_cnn
from test_transformer_gold import LARGEST_SEEN, causal_mask, close

from scratchnet.builders import build_network
from scratchnet.checks.crosscheck import random_tokens

torch = pytest.importorskip("torch")
nn = torch.nn

BACKENDS = ("loops", "vectorized")


class Residual(nn.Sequential):  # type: ignore[misc,name-defined]
    """y = x + f(x), f the modules it holds in order: an nn.Sequential whose output adds its input."""

    def forward(self, x: Any) -> Any:
        return x + super().forward(x)


class CausalSelfAttention(nn.MultiheadAttention):  # type: ignore[misc,name-defined]
    """nn.MultiheadAttention on one input, queries, keys and values alike, with a causal mask."""

    def forward(self, x: Any) -> Any:
        mask = causal_mask(x.shape[1])
        return super().forward(x, x, x, attn_mask=mask, need_weights=False)[0]


class Positions(nn.Module):  # type: ignore[misc,name-defined]
    """GPT-2's learned position vectors, added to the input: ``weight`` (max_length, dim)."""

    def __init__(self, max_length: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(max_length, dim))

    def forward(self, x: Any) -> Any:
        return x + self.weight[: x.shape[1]]


def torch_gpt(vocabulary: int, length: int, dim: int, heads: int, norm: str, approximate: str) -> Any:
    def make_norm() -> Any:
        return nn.LayerNorm(dim) if norm == "LayerNorm" else nn.RMSNorm(dim, eps=1e-5)

    modules: list[Any] = [nn.Embedding(vocabulary, dim), Positions(length, dim)]
    for _ in range(2):
        modules.append(Residual(make_norm(), CausalSelfAttention(dim, heads, batch_first=True)))
        mlp = (nn.Linear(dim, 4 * dim), nn.GELU(approximate=approximate), nn.Linear(4 * dim, dim))
        modules.append(Residual(make_norm(), *mlp))
    modules += [make_norm(), nn.Linear(dim, vocabulary)]
    return nn.Sequential(*modules).double()


def gpt(vocabulary: int, length: int, dim: int, heads: int, norm: str, approximate: str, ignore: int) -> dict[str, Any]:
    """The same GPT in the notation's terms, at GPT's N(0, 0.02) init."""
    block = [
        {
            "type": "Residual",
            "layers": [{"type": norm, "dim": dim}, {"type": "CausalSelfAttention", "dim": dim, "heads": heads}],
        },
        {
            "type": "Residual",
            "layers": [
                {"type": norm, "dim": dim},
                {"type": "Dense", "in_features": dim, "out_features": 4 * dim, "init": "gpt_normal"},
                {"type": "GELU", "approximate": approximate},
                {"type": "Dense", "in_features": 4 * dim, "out_features": dim, "init": "gpt_normal"},
            ],
        },
    ]
    return {
        "vocabulary": vocabulary,
        "input_shape": [length],
        "layers": [
            {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim},
            {"type": "PositionEmbedding", "max_length": length, "dim": dim},
            *block,
            *block,
            {"type": norm, "dim": dim},
            {"type": "Dense", "in_features": dim, "out_features": vocabulary, "init": "gpt_normal"},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy", "ignore_index": ignore},
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "norm,approximate,heads,ignore",
    [("LayerNorm", "none", 2, -100), ("RMSNorm", "tanh", 4, -1), ("LayerNorm", "tanh", 1, -1)],
)
def test_a_two_block_gpt_matches_pytorch_with_ignored_positions(
    backend: str, norm: str, approximate: str, heads: int, ignore: int
) -> None:
    vocabulary, length, dim = 7, 6, 8
    net = build_network(gpt(vocabulary, length, dim, heads, norm, approximate, ignore), backend=backend, seed=3)
    theirs = torch_gpt(vocabulary, length, dim, heads, norm, approximate)
    state = theirs.state_dict()
    assert list(state) == list(net.params())  # one to one, in order: the names are the same
    theirs.load_state_dict(
        {name: torch.tensor(np.asarray(value, dtype=np.float64)) for name, value in net.params().items()}, strict=True
    )
    ids, targets = random_tokens(length, vocabulary, vocabulary, 3, seed=5, ignore_index=ignore)
    assert any(y == ignore for row in targets for y in row)

    out = net.forward(ids, training=True)
    loss = net.loss(out, targets)
    net.backward()
    logits = theirs(torch.tensor(ids))
    expected = nn.functional.cross_entropy(
        logits.reshape(-1, vocabulary), torch.tensor(targets).reshape(-1), ignore_index=ignore
    )
    expected.backward()
    close("GPT probabilities", out, torch.softmax(logits, dim=-1))
    close("GPT loss with ignored positions", loss, expected)
    parameters = dict(theirs.named_parameters())
    grads = net.grads()
    assert set(grads) == set(parameters)
    for name, grad in grads.items():
        close(f"GPT grad {name}", grad, parameters[name].grad)
    assert max(value for key, value in LARGEST_SEEN.items() if key.startswith("GPT")) <= 1e-10


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_residual_cnn_matches_pytorch_and_its_safetensors_load_strictly(backend: str, tmp_path: Any) -> None:
    import scratchnet
    from scratchnet.cli import main

    net = build_network(residual_cnn(channels=2), backend=backend, seed=2)
    theirs = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        Residual(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU()),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(27, 4),
    ).double()
    inputs = np.random.default_rng(0).normal(size=(3, 2, 6, 6))
    labels = [0, 3, 1]
    out = net.forward(inputs.tolist() if backend == "loops" else inputs, training=True)
    loss = net.loss(out, labels)
    net.backward()
    scratchnet.save(net, tmp_path / "r")  # after one training pass: running statistics moved
    assert (
        main(["export", str(tmp_path / "r.json"), "--to", "safetensors", "--out", str(tmp_path / "r.safetensors")]) == 0
    )
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "r.safetensors"))
    assert "1.1.num_batches_tracked" in state and "1.1.running_var" in state
    theirs.load_state_dict(state, strict=True)  # the running statistics after our pass
    with torch.no_grad():
        theirs[1][1].running_mean.zero_()
        theirs[1][1].running_var.fill_(1.0)
    theirs.train()
    logits = theirs(torch.tensor(inputs))
    expected = nn.functional.cross_entropy(logits, torch.tensor(labels))
    expected.backward()
    close("residual CNN probabilities", out, torch.softmax(logits, dim=-1))
    close("residual CNN loss", loss, expected)
    close("residual CNN running_var", net.params()["1.1.running_var"], theirs[1][1].running_var)
    # The convolution's bias before a batch norm has a gradient of 0 (the norm subtracts the mean),
    # so each side's is rounding, 1e-17: gradients are compared relative to all of them together.
    parameters = dict(theirs.named_parameters())
    scale = max(float(parameters[name].grad.abs().max()) for name in net.grads())
    for name, grad in net.grads().items():
        difference = float(np.abs(np.asarray(grad, dtype=np.float64) - parameters[name].grad.numpy()).max())
        LARGEST_SEEN[f"residual CNN grad {name}"] = difference / scale
        assert difference <= 1e-10 * scale, (name, difference, scale)


def test_export_to_pytorch_writes_a_residual_module_that_loads_strictly(tmp_path: Any) -> None:
    import importlib.util

    import scratchnet
    from scratchnet.cli import main

    description = residual_cnn(channels=2)
    description["layers"][1]["layers"].append({"type": "Residual", "layers": [{"type": "Tanh"}]})  # nested
    net = build_network(description, backend="vectorized", seed=1)
    inputs = np.random.default_rng(1).normal(size=(4, 2, 6, 6))
    net.forward(inputs, training=True)  # running statistics move
    scratchnet.save(net, tmp_path / "r")
    assert main(["export", str(tmp_path / "r.json"), "--to", "pytorch", "--out", str(tmp_path / "r.py")]) == 0
    spec = importlib.util.spec_from_file_location("exported_residual", tmp_path / "r.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    model = script.load()  # load_state_dict(strict=True)
    assert type(model[1]).__name__ == "Residual" and type(model[1][3]).__name__ == "Residual"
    assert list(model.state_dict())[2:9] == [
        "1.0.weight", "1.0.bias", "1.1.weight", "1.1.bias", "1.1.running_mean", "1.1.running_var",
        "1.1.num_batches_tracked",
    ]  # fmt: skip
    with torch.no_grad():
        theirs = model(torch.tensor(inputs)).numpy()
    close("exported residual CNN probabilities", net.forward(inputs), theirs)
