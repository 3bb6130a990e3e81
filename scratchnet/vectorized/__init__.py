"""The vectorized backend: the same classes as scratchnet.loops, on NumPy arrays of shape (batch, features)."""

from scratchnet.vectorized.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from scratchnet.vectorized.layers import Dense, Dropout
from scratchnet.vectorized.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.vectorized.network import Network
from scratchnet.vectorized.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop
from scratchnet.vectorized.tensor import check_dtype

# The classes the builder makes for each layer type, loss and optimizer the registry
# (scratchnet.core.registry) and the optimizer table (scratchnet.core.settings) name. A new layer
# type is one entry here.
LAYERS: dict[str, type] = {
    "Dense": Dense,
    "Dropout": Dropout,
    "ReLU": ReLU,
    "LeakyReLU": LeakyReLU,
    "Sigmoid": Sigmoid,
    "Tanh": Tanh,
    "Identity": Identity,
    "Softmax": Softmax,
}
LOSSES: dict[str, type] = {
    "CrossEntropy": CrossEntropy,
    "MeanSquaredError": MeanSquaredError,
    "BinaryCrossEntropy": BinaryCrossEntropy,
}
OPTIMIZERS: dict[str, type] = {"SGD": SGD, "Adagrad": Adagrad, "RMSprop": RMSprop, "Adam": Adam, "AdamW": AdamW}

__all__ = [
    "LAYERS",
    "LOSSES",
    "OPTIMIZERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Dense",
    "Dropout",
    "Identity",
    "LeakyReLU",
    "MeanSquaredError",
    "Network",
    "RMSprop",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "check_dtype",
]
