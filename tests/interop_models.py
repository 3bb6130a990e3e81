"""What the interop tests share: the models of tools/onnx_agreement.py, trained once per session on
the real MNIST, small models with random parameters, and running the command line."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from tool_modules import tool

import scratchnet
from scratchnet.builders import build_network
from scratchnet.cli import main
from scratchnet.core import notation
from scratchnet.core.architecture import plan

MLP, CNN = "MLP 784-64-10 with dropout", "CNN"


def agreement_tool() -> ModuleType:
    """tools/onnx_agreement.py, imported as a module."""
    if "onnx_agreement" not in sys.modules:
        tool("onnx_agreement")
    return sys.modules["onnx_agreement"]


_TRAINED: dict[str, Path] = {}


def trained(name: str, data_dir: Path, factory: pytest.TempPathFactory) -> Path:
    """The model ``name`` of tools/onnx_agreement.py's MODELS, trained on the real data (once per session)."""
    if name not in _TRAINED:
        from scratchnet.training.train import train

        out = factory.mktemp("trained") / "model.json"
        config = agreement_tool().MODELS[name]
        train(config, data_dir=data_dir, out=out, log=lambda line: None, progress=False, check=False)
        _TRAINED[name] = out
    return _TRAINED[name]


# Every layer type, with options away from their defaults: padding, a stride, a rectangular kernel,
# a pooling stride other than its kernel, BatchNorm on images and on rows, and each activation.
EVERY_LAYER = (
    "input(2x11x10), conv(4, 3, padding=1), batchnorm(momentum=0.2, eps=0.001), leaky_relu(0.1), maxpool(2), "
    "conv(3, 3x2, stride=2x1), tanh, avgpool(2, stride=1), flatten, dropout(0.3), dense(6), batchnorm, "
    "sigmoid, dense(5), identity, relu, dense(4)"
)


def random_model(
    folder: Path, text: str = EVERY_LAYER, *, dtype: str = "float32", seed: int = 0, loss: str = "cross_entropy"
) -> Path:
    """A model of ``text`` (the compact notation) saved in ``folder``, with random parameters:
    non-zero biases and running statistics too, so that every array matters to the outputs."""
    architecture = notation.parse(text, loss=loss)
    return random_model_of(folder, architecture, dtype=dtype, seed=seed)


def random_model_of(folder: Path, architecture: dict[str, Any], *, dtype: str = "float32", seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    net = build_network(architecture, backend="vectorized", dtype=dtype, seed=seed)
    params = {}
    for info in plan(architecture).arrays:
        value = rng.normal(0.0, 0.5, info.shape)
        params[info.name] = np.abs(value) + 0.5 if info.non_negative else value
    net.set_params(params)
    path = folder / "random.json"
    metadata = {"dataset": "mnist", "class_names": [f"c{k}" for k in range(plan(architecture).classes)]}
    scratchnet.save(net, path, metadata={**metadata, "input": {"scale": 255.0, "mean": 0.1, "std": 0.3}})
    return path


def random_inputs(model: Path, count: int = 7, seed: int = 1) -> npt.NDArray[Any]:
    """A batch of random inputs for ``model``, in its dtype."""
    loaded = scratchnet.load_model(model)
    shape = plan(loaded.architecture).input_shape
    return np.random.default_rng(seed).normal(0.0, 1.0, (count, *shape)).astype(loaded.dtype)


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``scratchnet argv...`` in this process: the exit status, standard output and standard error."""
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def files_in(folder: Path) -> list[str]:
    """Every file under ``folder`` (hidden temporary files too), relative, sorted."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


# --- token networks: each sequence layer type (options away from their defaults too), and a GPT-like stack

VOCABULARY, CONTEXT, WIDTH = 7, 6, 8


def token_network(*middle: dict[str, Any], width: int = WIDTH) -> dict[str, Any]:
    """A token network: Embedding, the layers ``middle`` (on ``width`` values per position), a Dense to
    the vocabulary's scores and a Softmax."""
    return {
        "vocabulary": VOCABULARY,
        "input_shape": [CONTEXT],
        "layers": [
            {"type": "Embedding", "num_embeddings": VOCABULARY, "embedding_dim": WIDTH},
            *middle,
            {"type": "Dense", "in_features": width, "out_features": VOCABULARY},
            {"type": "Softmax"},
        ],
        "loss": {"type": "CrossEntropy"},
    }


GPT_LIKE = token_network(
    {"type": "PositionEmbedding", "max_length": CONTEXT, "dim": WIDTH},
    {"type": "LayerNorm", "dim": WIDTH},
    {"type": "CausalSelfAttention", "dim": WIDTH, "heads": 2},
    {"type": "Dropout", "rate": 0.1},
    {"type": "RMSNorm", "dim": WIDTH},
    {"type": "Dense", "in_features": WIDTH, "out_features": 4 * WIDTH},
    {"type": "GELU", "approximate": "tanh"},
    {"type": "Dense", "in_features": 4 * WIDTH, "out_features": WIDTH},
    {"type": "LayerNorm", "dim": WIDTH},
    {"type": "CausalSelfAttention", "dim": WIDTH, "heads": 4, "bias": False},
    {"type": "GELU"},
)

# Two GPT blocks, each two residual lines (nanoGPT's Block): x + attn(ln(x)), then x + mlp(ln(x)).
GPT_BLOCKS = token_network(
    {"type": "PositionEmbedding", "max_length": CONTEXT, "dim": WIDTH},
    *(
        block
        for _ in range(2)
        for block in (
            {
                "type": "Residual",
                "layers": [
                    {"type": "LayerNorm", "dim": WIDTH},
                    {"type": "CausalSelfAttention", "dim": WIDTH, "heads": 2},
                ],
            },
            {
                "type": "Residual",
                "layers": [
                    {"type": "LayerNorm", "dim": WIDTH},
                    {"type": "Dense", "in_features": WIDTH, "out_features": 4 * WIDTH},
                    {"type": "GELU"},
                    {"type": "Dense", "in_features": 4 * WIDTH, "out_features": WIDTH},
                ],
            },
        )
    ),
    {"type": "LayerNorm", "dim": WIDTH},
)

SEQUENCE_NETWORKS: dict[str, dict[str, Any]] = {
    "embedding": token_network(),
    "positions": token_network({"type": "PositionEmbedding", "max_length": CONTEXT + 2, "dim": WIDTH}),
    "layernorm": token_network({"type": "LayerNorm", "dim": WIDTH, "eps": 0.001}),
    "layernorm without bias": token_network({"type": "LayerNorm", "dim": WIDTH, "bias": False}),
    "layernorm without affine": token_network({"type": "LayerNorm", "dim": WIDTH, "affine": False}),
    "rmsnorm": token_network({"type": "RMSNorm", "dim": WIDTH, "eps": 0.01}),
    "rmsnorm without affine": token_network({"type": "RMSNorm", "dim": WIDTH, "affine": False}),
    "gelu": token_network({"type": "GELU"}),
    "gelu tanh": token_network({"type": "GELU", "approximate": "tanh"}),
    "attention": token_network({"type": "CausalSelfAttention", "dim": WIDTH, "heads": 2}),
    "attention without bias": token_network({"type": "CausalSelfAttention", "dim": WIDTH, "heads": 4, "bias": False}),
    "dense on a sequence": token_network(
        {"type": "Dense", "in_features": WIDTH, "out_features": 5}, {"type": "Tanh"}, width=5
    ),
    "gpt-like": GPT_LIKE,
    "gpt blocks": GPT_BLOCKS,
}


def random_network(architecture: dict[str, Any], *, dtype: str = "float32", seed: int = 0) -> Any:
    """A vectorized network of ``architecture`` with random parameters (normal, deviation 0.5: every
    array matters to the outputs), not saved."""
    rng = np.random.default_rng(seed)
    net = build_network(architecture, backend="vectorized", dtype=dtype, seed=seed)
    net.set_params({info.name: rng.normal(0.0, 0.5, info.shape) for info in plan(architecture).arrays})
    return net


def random_tokens(count: int, length: int, seed: int = 1) -> npt.NDArray[Any]:
    """``count`` sequences of ``length`` random token ids, int64."""
    return np.random.default_rng(seed).integers(0, VOCABULARY, (count, length), dtype=np.int64)
