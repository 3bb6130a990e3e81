"""Gold tests: CrossEntropy's label_smoothing in both backends against
torch.nn.functional.cross_entropy(label_smoothing=eps, ignore_index=...), in float64, to 1e-12
(spec/math.md eq. 5.7, 5.8, 16.5): the loss and dL/dz for 2-D scores (N, K) and sequence scores
(N, T, K) with ignored targets, and a small language model's parameter gradients end to end.
Skipped where torch is not installed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from scratchnet import loops, vectorized
from scratchnet.builders import build_network
from scratchnet.loops.activations import softmax_and_log_sum_exp as loops_softmax
from scratchnet.vectorized.activations import softmax_and_log_sum_exp as vectorized_softmax

torch = pytest.importorskip("torch")

TOLERANCE = 1e-12
BACKENDS = ("loops", "vectorized")


def close(name: str, ours: Any, theirs: Any) -> None:
    """Ours equals PyTorch's within TOLERANCE relative to the larger of 1 and the largest magnitude."""
    a = np.asarray(ours, dtype=np.float64)
    b = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs, dtype=np.float64)
    assert a.shape == b.shape, (name, a.shape, b.shape)
    scale = max(float(np.abs(b).max(initial=0.0)), 1.0)
    difference = float(np.abs(a - b).max(initial=0.0))
    assert difference <= TOLERANCE * scale, f"{name}: difference {difference:.3e}\nours {a}\ntorch {b}"


def ours(backend: str, logits: np.ndarray, labels: np.ndarray, eps: float, ignore: int) -> tuple[float, Any]:
    """Our loss and dL/dz, from the softmax our backend computes (as a network's last layer would)."""
    loss: Any
    if backend == "loops":
        loss = loops.CrossEntropy(ignore_index=ignore, label_smoothing=eps)
        z, y = logits.tolist(), labels.tolist()
        p = [[loops_softmax(r)[0] for r in s] for s in z] if logits.ndim == 3 else [loops_softmax(r)[0] for r in z]
        return loss.value(z, y), loss.gradient(z, p, y)
    loss = vectorized.CrossEntropy(ignore_index=ignore, label_smoothing=eps)
    return loss.value(logits, labels), loss.gradient(logits, vectorized_softmax(logits)[0], labels)


def theirs(logits: np.ndarray, labels: np.ndarray, eps: float, ignore: int) -> tuple[Any, Any]:
    """PyTorch's mean loss over the counted targets and its gradient with respect to the logits."""
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    classes = logits.shape[-1]
    loss = torch.nn.functional.cross_entropy(
        z.reshape(-1, classes), torch.tensor(labels).reshape(-1), ignore_index=ignore, label_smoothing=eps
    )
    loss.backward()
    return loss, z.grad


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(7, 5), (3, 6, 4)], ids=["2-D", "sequence"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.37, 1.0])
@pytest.mark.parametrize("ignore", [-100, -1])
def test_cross_entropy_is_torch_s_with_ignored_targets(
    backend: str, shape: tuple[int, ...], eps: float, ignore: int
) -> None:
    rng = np.random.default_rng(11)
    logits = rng.normal(0.0, 3.0, shape)
    logits.reshape(-1, shape[-1])[0] *= 100.0  # one row of logits in the hundreds, far from 0
    labels = rng.integers(0, shape[-1], shape[:-1])
    flat = labels.reshape(-1)
    flat[[1, 4, 5]] = ignore  # ignored: neither their terms nor their count
    value, grad = ours(backend, logits, labels, eps, ignore)
    expected, expected_grad = theirs(logits, labels, eps, ignore)
    close("loss", value, expected)
    close("dL/dz", grad, expected_grad)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_target_counted_and_one_class_certain(backend: str) -> None:
    """No ignored target, and a row whose softmax is 1 in float64: the smoothing term still counts."""
    logits = np.array([[900.0, 0.0, -900.0], [0.5, 0.25, 0.0]])
    labels = np.array([0, 2])
    value, grad = ours(backend, logits, labels, 0.2, -100)
    expected, expected_grad = theirs(logits, labels, 0.2, -100)
    close("loss", value, expected)
    close("dL/dz", grad, expected_grad)


class TorchLanguageModel(torch.nn.Module):  # type: ignore[misc,name-defined]
    """Embedding, Dense, GELU, Dense: the scores our network computes before its Softmax."""

    def __init__(self, vocabulary: int, dim: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, dim)
        self.up, self.down = torch.nn.Linear(dim, 2 * dim), torch.nn.Linear(2 * dim, vocabulary)

    def forward(self, ids: Any) -> Any:
        return self.down(torch.nn.functional.gelu(self.up(self.embedding(ids))))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_language_model_s_gradients_are_torch_s(backend: str) -> None:
    """Network.loss and Network.backward with {"ignore_index": -1, "label_smoothing": 0.1}: the loss
    and every parameter gradient equal PyTorch's for the same weights and padded targets."""
    vocabulary, dim = 6, 4
    description = {
        "vocabulary": vocabulary,
        "input_shape": [5],
        "layers": [
            {"type": "Embedding", "num_embeddings": vocabulary, "embedding_dim": dim},
            {"type": "Dense", "in_features": dim, "out_features": 2 * dim},
            {"type": "GELU"},
            {"type": "Dense", "in_features": 2 * dim, "out_features": vocabulary},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy", "ignore_index": -1, "label_smoothing": 0.1},
    }
    net = build_network(description, backend=backend, dtype="float64", seed=4)
    model = TorchLanguageModel(vocabulary, dim).double()
    names = {"0.weight": "embedding.weight", "1.weight": "up.weight", "1.bias": "up.bias"}
    names.update({"3.weight": "down.weight", "3.bias": "down.bias"})
    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in net.params().items():
            parameters[names[name]].copy_(torch.tensor(np.asarray(value)))
    ids = [[0, 3, 5, 1, 2], [4, 4, 0, 2, 5]]
    targets = [[3, 5, 1, -1, -1], [4, 0, -1, 5, 1]]
    out = net.forward(ids, training=True)
    loss = net.loss(out, targets)
    net.backward()
    expected = torch.nn.functional.cross_entropy(
        model(torch.tensor(ids)).reshape(-1, vocabulary),
        torch.tensor(targets).reshape(-1),
        ignore_index=-1,
        label_smoothing=0.1,
    )
    expected.backward()
    close("network loss", loss, expected)
    for name, grad in net.grads().items():
        close(f"grad {name}", np.asarray(grad), parameters[names[name]].grad)
