"""microgpt's algorithm, written for this project as a plain-Python reference for the benchmark.

Karpathy's microgpt (Feb 2026) trains a GPT on names with a scalar autograd: every number is a node of a
graph and every multiply a new object. This file follows its published algorithm (its code is not copied):

* a :class:`Value` per scalar, each operation storing its local derivatives, and a backward pass over the
  graph in reverse topological order;
* a GPT of ``n_layer`` blocks (1), ``n_embd`` dimensions (16), ``n_head`` heads (4), context
  ``block_size`` (16); token and position embeddings summed, then an RMSNorm without gain; in each block
  an RMSNorm before the attention and before the MLP, each added back to the residual stream; no biases;
  a ReLU MLP 4x as wide; an untied output layer ``lm_head``; weights drawn from N(0, 0.08);
* one document per step, framed by the boundary token (BOS) on both sides, processed a position at a time
  with a cache of keys and values; the loss is the cross-entropy averaged over the document's positions;
* Adam with lr 0.01, betas (0.85, 0.99), eps 1e-8 (after the square root, bias-corrected), the learning
  rate decaying linearly to 0 over the steps.

The caller gives the initial weights (:func:`init_weights` draws microgpt's, or the benchmark passes
scratchnet's) and the documents in the order of the steps; :func:`train` returns the loss of every step.
Weights are ``{name: rows}`` in PyTorch's ``(out, in)`` layout: ``wte`` (vocab, d), ``wpe`` (context, d),
``lm_head`` (vocab, d), and per block ``l``: ``h{l}.wq``, ``h{l}.wk``, ``h{l}.wv``, ``h{l}.wo`` (d, d),
``h{l}.fc1`` (4d, d), ``h{l}.fc2`` (d, 4d).

    python tools/microgpt_reference.py --data names.txt --steps 1000

prints the time per step and the mean loss of the last 100 steps.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

RMS_EPS = 1e-5  # microgpt's RMSNorm epsilon
INIT_STD = 0.08
Weights = dict[str, list[list[float]]]


class Value:
    """One scalar of the graph: its value, its gradient, the values it was computed from and the
    derivative of it with respect to each of them."""

    __slots__ = ("data", "grad", "inputs", "local")

    def __init__(self, data: float, inputs: tuple[Value, ...] = (), local: tuple[float, ...] = ()) -> None:
        self.data, self.grad, self.inputs, self.local = data, 0.0, inputs, local

    def __add__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, power: float) -> Value:
        return Value(self.data**power, (self,), (power * self.data ** (power - 1),))

    def exp(self) -> Value:
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def log(self) -> Value:
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def relu(self) -> Value:
        return Value(max(self.data, 0.0), (self,), (1.0 if self.data > 0 else 0.0,))

    def __radd__(self, other: float) -> Value:
        return self + other

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __neg__(self) -> Value:
        return self * -1.0

    def __sub__(self, other: Value | float) -> Value:
        return self + (-other)

    def __truediv__(self, other: Value | float) -> Value:
        return self * other**-1.0

    def backward(self) -> None:
        """d self / d v into every v.grad: the chain rule from self back through the graph, each node once
        after all the nodes computed from it (reverse topological order, found without recursion)."""
        order: list[Value] = []
        seen: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((parent, False) for parent in node.inputs if id(parent) not in seen)
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in zip(node.inputs, node.local):
                parent.grad += local * node.grad


@dataclass(frozen=True)
class Config:
    vocab_size: int
    n_embd: int = 16
    n_head: int = 4
    n_layer: int = 1
    block_size: int = 16


def weight_shapes(config: Config) -> dict[str, tuple[int, int]]:
    """Every weight matrix's (rows, columns), in microgpt's order."""
    d, vocab = config.n_embd, config.vocab_size
    shapes = {"wte": (vocab, d), "wpe": (config.block_size, d), "lm_head": (vocab, d)}
    for layer in range(config.n_layer):
        for name in ("wq", "wk", "wv", "wo"):
            shapes[f"h{layer}.{name}"] = (d, d)
        shapes[f"h{layer}.fc1"] = (4 * d, d)
        shapes[f"h{layer}.fc2"] = (d, 4 * d)
    return shapes


def init_weights(config: Config, seed: int, std: float = INIT_STD) -> Weights:
    """Weights drawn from N(0, std) by Python's generator seeded with ``seed``."""
    draw = random.Random(seed)
    return {
        name: [[draw.gauss(0.0, std) for _ in range(cols)] for _ in range(rows)]
        for name, (rows, cols) in weight_shapes(config).items()
    }


def linear(x: Sequence[Value], w: Sequence[Sequence[Value]]) -> list[Value]:
    """y_o = sum_i w[o][i] x[i] (no bias)."""
    return [sum((w_oi * x_i for w_oi, x_i in zip(row, x)), Value(0.0)) for row in w]


def rmsnorm(x: Sequence[Value]) -> list[Value]:
    """x / sqrt(mean(x^2) + eps), without a gain."""
    mean_square = sum((x_i * x_i for x_i in x), Value(0.0)) * (1.0 / len(x))
    scale = (mean_square + RMS_EPS) ** -0.5
    return [x_i * scale for x_i in x]


def softmax(logits: Sequence[Value]) -> list[Value]:
    """exp(z - max z) / sum exp(z - max z); the max is a constant, so it does not enter the gradient."""
    top = max(z.data for z in logits)
    exps = [(z - top).exp() for z in logits]
    total = sum(exps, Value(0.0))
    return [e / total for e in exps]


Params = dict[str, list[list[Value]]]


def next_token_logits(
    params: Params, token: int, position: int, cache: list[tuple[list[list[Value]], list[list[Value]]]], config: Config
) -> list[Value]:
    """The logits after ``token`` at ``position``; each block appends this position's key and value to its
    part of ``cache``, and attends over every position cached so far (causal by construction)."""
    head_dim = config.n_embd // config.n_head
    x = [t + p for t, p in zip(params["wte"][token], params["wpe"][position])]
    x = rmsnorm(x)
    for layer, (keys, values) in enumerate(cache):
        w = {name: params[f"h{layer}.{name}"] for name in ("wq", "wk", "wv", "wo", "fc1", "fc2")}
        residual, x = x, rmsnorm(x)
        q, k, v = linear(x, w["wq"]), linear(x, w["wk"]), linear(x, w["wv"])
        keys.append(k)
        values.append(v)
        heads: list[Value] = []
        for h in range(0, config.n_embd, head_dim):
            scores = [
                sum((q[h + j] * key[h + j] for j in range(head_dim)), Value(0.0)) * (1.0 / math.sqrt(head_dim))
                for key in keys
            ]
            weights = softmax(scores)
            heads += [sum((a * value[h + j] for a, value in zip(weights, values)), Value(0.0)) for j in range(head_dim)]
        x = [a + r for a, r in zip(linear(heads, w["wo"]), residual)]
        residual, x = x, rmsnorm(x)
        hidden = [u.relu() for u in linear(x, w["fc1"])]
        x = [m + r for m, r in zip(linear(hidden, w["fc2"]), residual)]
    return linear(x, params["lm_head"])


def document_logits(params: Params, tokens: Sequence[int], config: Config) -> list[list[Value]]:
    """The logits at each position of a framed document ``BOS c1 .. cn BOS`` (the last token is only a
    target), at most ``block_size`` positions, as microgpt cuts a long document."""
    cache: list[tuple[list[list[Value]], list[list[Value]]]] = [([], []) for _ in range(config.n_layer)]
    count = min(config.block_size, len(tokens) - 1)
    return [next_token_logits(params, tokens[p], p, cache, config) for p in range(count)]


def document_loss(params: Params, tokens: Sequence[int], config: Config) -> Value:
    """The cross-entropy -log softmax(z)[next token], averaged over the document's positions."""
    losses = [-(softmax(z)[target].log()) for z, target in zip(document_logits(params, tokens, config), tokens[1:])]
    return sum(losses, Value(0.0)) * (1.0 / len(losses))


def as_params(weights: Weights) -> Params:
    return {name: [[Value(w) for w in row] for row in rows] for name, rows in weights.items()}


def train(
    weights: Weights,
    documents: Sequence[Sequence[int]],
    boundary: int,
    steps: int,
    config: Config,
    *,
    lr: float = 0.01,
    betas: tuple[float, float] = (0.85, 0.99),
    eps: float = 1e-8,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Train from ``weights`` (left unchanged) for ``steps`` steps, step ``s`` on ``documents[s % len]`` (its
    characters' ids) framed by ``boundary``; the loss of every step."""
    params = as_params(weights)
    flat = [p for rows in params.values() for row in rows for p in row]
    m, v = [0.0] * len(flat), [0.0] * len(flat)
    beta1, beta2 = betas
    losses = []
    for step in range(steps):
        tokens = [boundary, *documents[step % len(documents)], boundary]
        loss = document_loss(params, tokens, config)
        loss.backward()
        lr_t = lr * (1.0 - step / steps)  # linear decay to 0
        for i, p in enumerate(flat):
            m[i] = beta1 * m[i] + (1.0 - beta1) * p.grad
            v[i] = beta2 * v[i] + (1.0 - beta2) * p.grad * p.grad
            m_hat, v_hat = m[i] / (1.0 - beta1 ** (step + 1)), v[i] / (1.0 - beta2 ** (step + 1))
            p.data -= lr_t * m_hat / (math.sqrt(v_hat) + eps)
            p.grad = 0.0
        losses.append(loss.data)
        if on_step is not None:
            on_step(step, loss.data)
    return losses


def read_documents(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 file, stripped (makemore's reading of names.txt)."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="microgpt's algorithm (scalar autograd), for the benchmark")
    parser.add_argument("--data", required=True, help="a text file of documents, one per line (names.txt)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42, help="the order of the documents and the initial weights")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be positive")
    try:
        documents = read_documents(args.data)
    except (OSError, UnicodeDecodeError) as error:
        print(f"microgpt_reference: {args.data}: {error}", file=sys.stderr)
        return 1
    if not documents:
        print(f"microgpt_reference: {args.data}: no documents", file=sys.stderr)
        return 1
    random.Random(args.seed).shuffle(documents)
    characters = sorted(set("".join(documents)))
    index = {c: i for i, c in enumerate(characters)}
    config = Config(vocab_size=len(characters) + 1)
    weights = init_weights(config, args.seed)
    ids = [[index[c] for c in document] for document in documents]

    def progress(step: int, loss: float) -> None:
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            print(f"step {step + 1}/{args.steps}: loss {loss:.4f}", file=sys.stderr, flush=True)

    start, cpu = time.perf_counter(), time.process_time()
    losses = train(weights, ids, len(characters), args.steps, config, on_step=progress)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    last = losses[-100:]
    print(
        f"{args.steps} steps in {seconds:.1f} s: {1000 * seconds / args.steps:.1f} ms a step "
        f"({1000 * cpu / args.steps:.1f} ms of CPU time)"
    )
    print(f"mean loss of the last {len(last)} steps: {sum(last) / len(last):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
