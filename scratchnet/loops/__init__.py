"""The loops backend: the reference implementation, explicit loops over Python floats, standard library only."""

from scratchnet.loops.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from scratchnet.loops.layers import Dense, Dropout
from scratchnet.loops.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.loops.network import Network
from scratchnet.loops.neuron import Neuron
from scratchnet.loops.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

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
    "Neuron",
    "RMSprop",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
