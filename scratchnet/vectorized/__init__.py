"""The vectorized backend: the same classes as scratchnet.loops, on NumPy arrays of any rank, batch
first: ``(batch, features)`` for flat samples, ``(batch, channels, height, width)`` for images."""

from collections.abc import Callable

from scratchnet.core.interface import Layer
from scratchnet.vectorized.activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from scratchnet.vectorized.attention import CausalSelfAttention
from scratchnet.vectorized.convolution import Conv2D
from scratchnet.vectorized.embedding import Embedding, PositionEmbedding
from scratchnet.vectorized.layers import Dense, Dropout
from scratchnet.vectorized.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.vectorized.network import Network
from scratchnet.vectorized.normalization import BatchNorm, LayerNorm, RMSNorm
from scratchnet.vectorized.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from scratchnet.vectorized.pooling import AvgPool2D, MaxPool2D
from scratchnet.vectorized.reshape import Flatten
from scratchnet.vectorized.residual import Residual
from scratchnet.vectorized.tensor import Array, check_dtype

# The classes the builder makes for each layer type, loss and optimizer the registry
# (scratchnet.core.registry) and the optimizer table (scratchnet.core.settings) name. A new layer
# type is one entry here.
# Typed as makers of Layers, so that mypy proves every class satisfies the Layer Protocol.
LAYERS: dict[str, Callable[..., Layer[Array, Array]]] = {
    "Dense": Dense,
    "Dropout": Dropout,
    "ReLU": ReLU,
    "LeakyReLU": LeakyReLU,
    "Sigmoid": Sigmoid,
    "Tanh": Tanh,
    "Identity": Identity,
    "Softmax": Softmax,
    "Conv2D": Conv2D,
    "MaxPool2D": MaxPool2D,
    "AvgPool2D": AvgPool2D,
    "Flatten": Flatten,
    "BatchNorm": BatchNorm,
    "Embedding": Embedding,
    "PositionEmbedding": PositionEmbedding,
    "LayerNorm": LayerNorm,
    "RMSNorm": RMSNorm,
    "GELU": GELU,
    "CausalSelfAttention": CausalSelfAttention,
    "Residual": Residual,
}
LOSSES: dict[str, type] = {
    "CrossEntropy": CrossEntropy,
    "MeanSquaredError": MeanSquaredError,
    "BinaryCrossEntropy": BinaryCrossEntropy,
}
OPTIMIZERS: dict[str, type] = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW}

__all__ = [
    "GELU",
    "LAYERS",
    "LOSSES",
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "AvgPool2D",
    "BatchNorm",
    "BinaryCrossEntropy",
    "CausalSelfAttention",
    "Conv2D",
    "CrossEntropy",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "MaxPool2D",
    "MeanSquaredError",
    "Network",
    "PositionEmbedding",
    "RMSNorm",
    "RMSprop",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "check_dtype",
]
