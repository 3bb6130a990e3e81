"""The loops backend: the reference implementation, explicit loops over Python floats, standard library only."""

from scratchnet.loops.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from scratchnet.loops.layers import Dense, Dropout
from scratchnet.loops.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.loops.network import Network
from scratchnet.loops.neuron import Neuron
from scratchnet.loops.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = [
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
    "SGD",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
