"""The loops backend: the reference implementation, explicit loops over Python floats, standard library only."""

from collections.abc import Callable

from scratchnet.core.interface import Layer
from scratchnet.loops.activations import GELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from scratchnet.loops.attention import CausalSelfAttention
from scratchnet.loops.convolution import Conv2D
from scratchnet.loops.embedding import Embedding, PositionEmbedding
from scratchnet.loops.layers import Dense, Dropout
from scratchnet.loops.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.loops.network import Network
from scratchnet.loops.neuron import Neuron
from scratchnet.loops.normalization import BatchNorm, LayerNorm, RMSNorm
from scratchnet.loops.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from scratchnet.loops.pooling import AvgPool2D, MaxPool2D
from scratchnet.loops.reshape import Flatten
from scratchnet.loops.residual import Residual
from scratchnet.loops.tensor import Batch, Param

# The classes the builder makes for each layer type, loss and optimizer the registry
# (scratchnet.core.registry) and the optimizer table (scratchnet.core.settings) name. A new layer
# type is one entry here.
# Typed as makers of Layers, so that mypy proves every class satisfies the Layer Protocol.
LAYERS: dict[str, Callable[..., Layer[Batch, Param]]] = {
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
    "Neuron",
    "PositionEmbedding",
    "RMSNorm",
    "RMSprop",
    "ReLU",
    "Residual",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
